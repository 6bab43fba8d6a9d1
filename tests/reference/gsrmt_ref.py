"""PyTorch reference implementation of the Gated-SwinRMT models.

This file follows /work/shared/spec/MODEL.md (referred to below as "the spec") to the letter. Every
function names the spec section it implements. It is a *reference*: it favours clarity over speed and is
used to produce parity bundles (make_parity.py) and to check the spec's behaviours (test_reference.py).

Compatible with PyTorch 1.13 (Debian's python3-torch). Run with /usr/bin/python3.

Numerical conventions (not fixed by the spec, chosen as the most exact reading and relied upon by the
parity bundles):
  * Every computed table (RoPE angles and their sin/cos, gamma, log(gamma), the decay terms
    |delta| * log(gamma) and gamma^|delta|, ALiBi slopes) is computed in float64 from integer
    positions and only then rounded to float32. (RMT's code computes them in float32, which loses
    ~1e-4 absolute in sin/cos at large positions l = row * w + col.)
  * All model computation is float32.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "PRESETS",
    "VARIANTS",
    "GatedSwinRMT",
    "Block",
    "Attention",
    "decay_gammas",
    "alibi_slopes",
    "rope_tables",
    "rotate_every_two",
    "region_ids",
    "windowed_decomposed",
    "build_model",
    "count_params",
]

VARIANTS = ("swat", "retention", "rmt")
GATES = ("elementwise", "headwise", "none")
SWAT_NORMS = ("row", "none")
PAD_ID = -1  # section 5.4: the id of padded positions, "matches nothing"

# Section 3: presets. layerscale is per stage.
PRESETS = {
    "nano": dict(dims=(32, 64, 128, 256), depths=(1, 1, 1, 1), heads=(2, 2, 4, 8),
                 mlp_ratios=(2, 2, 2, 2), drop_path=0.0, layerscale=(False, False, False, False)),
    "tiny": dict(dims=(64, 128, 256, 512), depths=(2, 2, 8, 2), heads=(4, 4, 8, 16),
                 mlp_ratios=(3, 3, 3, 3), drop_path=0.1, layerscale=(False, False, False, False)),
    "small": dict(dims=(64, 128, 256, 512), depths=(3, 4, 18, 4), heads=(4, 4, 8, 16),
                  mlp_ratios=(4, 4, 3, 3), drop_path=0.15, layerscale=(False, False, False, False)),
    "paper": dict(dims=(112, 224, 448, 640), depths=(4, 4, 18, 4), heads=(7, 7, 14, 20),
                  mlp_ratios=(4, 4, 4, 4), drop_path=0.3, layerscale=(False, False, True, True)),
}

# Section 3: per-stage decay constants (RMT's init_values and heads_ranges).
DECAY_A = (2.0, 2.0, 2.0, 2.0)
DECAY_R = (4.0, 4.0, 6.0, 6.0)


# ----------------------------------------------------------------------------------------------------
# Computed tables (section 4, section 7.2). Never stored in the state_dict.
# ----------------------------------------------------------------------------------------------------

def decay_gammas(heads, a, r):
    """Section 4: gamma_j = 1 - 2^(-a - r * j / H), j = 0..H-1, in float64."""
    j = torch.arange(heads, dtype=torch.float64)
    return 1.0 - torch.pow(torch.tensor(2.0, dtype=torch.float64), -a - r * j / heads)


def alibi_slopes(heads):
    """Section 7.2: balanced ALiBi slopes, float64.

    m_j = -2^-(j+1) for j = 0..ceil(H/2)-1, then +2^-(k+1) for the remaining heads, k = 0, 1, ...
    """
    n_neg = (heads + 1) // 2  # ceil(H / 2)
    neg = [-(2.0 ** -(j + 1)) for j in range(n_neg)]
    pos = [2.0 ** -(k + 1) for k in range(heads - n_neg)]
    return torch.tensor(neg + pos, dtype=torch.float64)


def rope_tables(h, w, d):
    """Section 4 (RoPE, RMT's theta_shift): sin and cos tables of shape (h, w, 1, d), float32.

    angle = 1 / 10000^linspace(0, 1, d/2), each value repeated twice -> length d;
    position l = row * w + col over the whole (unwindowed) map; tables = sin/cos(l * angle).
    Computed in float64 and rounded to float32 once.
    """
    angle = 1.0 / torch.pow(torch.tensor(10000.0, dtype=torch.float64),
                            torch.linspace(0, 1, d // 2, dtype=torch.float64))
    angle = angle.repeat_interleave(2)  # (a0, a0, a1, a1, ...)
    pos = torch.arange(h * w, dtype=torch.float64)  # l = row * w + col (row-major)
    theta = pos[:, None] * angle[None, :]
    sin = torch.sin(theta).to(torch.float32).reshape(h, w, 1, d)
    cos = torch.cos(theta).to(torch.float32).reshape(h, w, 1, d)
    return sin, cos


def rotate_every_two(x):
    """Section 4: rot(x) maps each pair (x0, x1) -> (-x1, x0) along the last dimension."""
    x0 = x[..., 0::2]
    x1 = x[..., 1::2]
    return torch.stack((-x1, x0), dim=-1).flatten(-2)


def apply_rope(x, sin, cos):
    """Section 4: x <- x * cos(l * angle) + rot(x) * sin(l * angle). x: (B, h, w, H, d)."""
    return x * cos + rotate_every_two(x) * sin


# ----------------------------------------------------------------------------------------------------
# Variant weights (section 7). S has shape (N, H, X, L, L) (X = independent rows/columns of the 1-D
# pass, L = sequence length of the pass); delta is the (L, L) integer matrix i - j; allowed is None
# (nothing masked) or a bool tensor broadcastable to S (True = the pair may attend).
# ----------------------------------------------------------------------------------------------------

def _per_head(t):
    """(H, L, L) -> (1, H, 1, L, L) for broadcasting against S."""
    return t[None, :, None]


def softmax_decay_weight(S, delta, log_gamma, allowed):
    """Sections 7.1 and 7.3: weight = softmax_j(S + |delta| * log_gamma_head); masked pairs -> -inf.

    A padded query (section 5.4) is allowed only its own position, so its row becomes one-hot on
    itself (all other logits are -inf); its output is then its own (zero) value.
    """
    bias = (delta.abs().to(torch.float64)[None] * log_gamma[:, None, None]).to(torch.float32)
    logits = S + _per_head(bias)
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    return torch.softmax(logits, dim=-1)


def swat_weight(S, delta, slopes, gamma, allowed, norm):
    """Section 7.2: SWAT weight.

    S' = S + m_head * delta (signed delta = i - j); P = sigmoid(S') * gamma_head^|delta|;
    masked pairs get P = 0; with norm == "row": weight = P / (sum_j P + 1e-6), else weight = P.

    A padded query (section 5.4) keeps only its diagonal entry P_ii = sigmoid(q_i . k_i) * gamma^0
    (= sigmoid(0) = 0.5 since padded q and k are zero), which the row normalisation turns into
    0.5 / (0.5 + 1e-6); its output is that times its own (zero) value, i.e. zero, and is dropped anyway.
    """
    alibi = (slopes[:, None, None] * delta.to(torch.float64)[None]).to(torch.float32)
    decay = torch.pow(gamma[:, None, None], delta.abs().to(torch.float64)[None]).to(torch.float32)
    P = torch.sigmoid(S + _per_head(alibi)) * _per_head(decay)
    if allowed is not None:
        P = P.masked_fill(~allowed, 0.0)
    if norm == "row":
        P = P / (P.sum(dim=-1, keepdim=True) + 1e-6)
    return P


# ----------------------------------------------------------------------------------------------------
# Section 6: decomposed (width-then-height) retention inside a window.
# ----------------------------------------------------------------------------------------------------

def decomposed_passes(q, k, v, weight_fn, allowed_w=None, allowed_h=None):
    """Section 6: width pass then height pass, per window and head.

    q, k, v: (N, H, R, K, d) -- N windows (or batch items when global), R rows, K columns.
    allowed_w: None or bool (N, 1, R, K, K) -- width-pass mask (pairs in the same row).
    allowed_h: None or bool (N, 1, K, R, R) -- height-pass mask (pairs in the same column).
    Returns y: (N, H, R, K, d).
    """
    R, K = q.shape[2], q.shape[3]
    # Width pass: S_w[r, i, j] = q[r, i] . k[r, j]; u[r, i] = sum_j A_w[r, i, j] v[r, j].
    cols = torch.arange(K)
    delta_w = cols[:, None] - cols[None, :]  # delta = i - j
    S_w = q @ k.transpose(-1, -2)  # (N, H, R, K, K)
    A_w = weight_fn(S_w, delta_w, allowed_w)
    u = A_w @ v  # (N, H, R, K, d)
    # Height pass: same q, k; values u. S_h[c, i, j] = q[i, c] . k[j, c]; y[i, c] = sum_j A_h u[j, c].
    rows = torch.arange(R)
    delta_h = rows[:, None] - rows[None, :]
    qt, kt, ut = q.transpose(2, 3), k.transpose(2, 3), u.transpose(2, 3)  # (N, H, K, R, d)
    S_h = qt @ kt.transpose(-1, -2)  # (N, H, K, R, R)
    A_h = weight_fn(S_h, delta_h, allowed_h)
    y = A_h @ ut  # (N, H, K, R, d)
    return y.transpose(2, 3)


def full_2d_pass(q, k, v, log_gamma):
    """Section 7.3 (rmt, stage 3): softmax(q k^T + (|dy| + |dx|) * log_gamma) over all h*w tokens.

    q, k, v: (B, h, w, H, d). Returns (B, h, w, H, d).
    """
    B, h, w, H, d = q.shape
    qf = q.reshape(B, h * w, H, d).transpose(1, 2)  # (B, H, hw, d), token l = row * w + col
    kf = k.reshape(B, h * w, H, d).transpose(1, 2)
    vf = v.reshape(B, h * w, H, d).transpose(1, 2)
    rr, cc = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    rr, cc = rr.reshape(-1), cc.reshape(-1)
    dist = (rr[:, None] - rr[None, :]).abs() + (cc[:, None] - cc[None, :]).abs()  # Manhattan
    bias = (dist.to(torch.float64)[None] * log_gamma[:, None, None]).to(torch.float32)  # (H, hw, hw)
    A = torch.softmax(qf @ kf.transpose(-1, -2) + bias[None], dim=-1)
    y = A @ vf  # (B, H, hw, d)
    return y.transpose(1, 2).reshape(B, h, w, H, d)


# ----------------------------------------------------------------------------------------------------
# Section 5: windows.
# ----------------------------------------------------------------------------------------------------

def is_global(h, w, window):
    """Section 5.1: adaptive collapse. window <= 0 (or None) means windows are not requested."""
    return window is None or window <= 0 or h < 2 * window or w < 2 * window


def region_ids(h, w, M, s):
    """Sections 5.2-5.4: region ids on the padded, shifted map, shape (Hp, Wp), int64.

    Swin's 3x3 region ids (slices [0, -M), [-M, -s), [-s, end) per axis) when s > 0, all zeros
    otherwise; they are laid out in shifted coordinates (as in Swin). Padded positions are marked in
    unshifted coordinates (row >= h or col >= w), rolled with the map by (-s, -s), and given PAD_ID.
    """
    Hp = int(math.ceil(h / M)) * M
    Wp = int(math.ceil(w / M)) * M
    ids = torch.zeros(Hp, Wp, dtype=torch.int64)
    if s > 0:
        cnt = 0
        for hs in (slice(0, -M), slice(-M, -s), slice(-s, None)):
            for ws in (slice(0, -M), slice(-M, -s), slice(-s, None)):
                ids[hs, ws] = cnt
                cnt += 1
    pad = torch.zeros(Hp, Wp, dtype=torch.bool)
    pad[h:, :] = True
    pad[:, w:] = True
    pad = torch.roll(pad, shifts=(-s, -s), dims=(0, 1))
    ids[pad] = PAD_ID
    return ids


def pass_mask(ids):
    """Section 5.4 inside a 1-D pass: ids (..., L) -> allowed (..., L, L).

    Two tokens may attend to each other only when their ids are equal and not PAD_ID (padded ids match
    nothing, not even each other); a padded query attends to itself only (the diagonal is always
    allowed -- for non-padded tokens the diagonal already has equal ids).
    """
    L = ids.shape[-1]
    same = ids[..., :, None] == ids[..., None, :]
    real = (ids != PAD_ID)[..., :, None]
    eye = torch.eye(L, dtype=torch.bool)
    return (same & real) | eye


def window_partition(x, M):
    """Section 5.5: (B, Hp, Wp, H, d) -> (B * nW, H, M, M, d), windows row-major, batch-major."""
    B, Hp, Wp, H, d = x.shape
    x = x.reshape(B, Hp // M, M, Wp // M, M, H, d)
    x = x.permute(0, 1, 3, 5, 2, 4, 6)  # (B, nWh, nWw, H, M, M, d)
    return x.reshape(B * (Hp // M) * (Wp // M), H, M, M, d)


def window_reverse(x, B, Hp, Wp, M):
    """Inverse of window_partition: (B * nW, H, M, M, d) -> (B, Hp, Wp, H, d)."""
    H, d = x.shape[1], x.shape[-1]
    x = x.reshape(B, Hp // M, Wp // M, H, M, M, d)
    x = x.permute(0, 1, 4, 2, 5, 3, 6)  # (B, nWh, M, nWw, M, H, d)
    return x.reshape(B, Hp, Wp, H, d)


def windowed_decomposed(q, k, v, weight_fn, window, shift):
    """Sections 5 and 6: decomposed retention within (shifted) windows, or globally on collapse.

    q, k, v: (B, h, w, H, d), RoPE already applied on the whole map. shift: s for this block
    (M // 2 on odd blocks, 0 on even ones). Returns y: (B, h, w, H, d).
    """
    B, h, w, H, d = q.shape
    if is_global(h, w, window):
        # 5.1: the whole map is one window, no shift, no mask (nothing is padded).
        to_heads = lambda t: t.permute(0, 3, 1, 2, 4)  # (B, H, h, w, d)
        y = decomposed_passes(to_heads(q), to_heads(k), to_heads(v), weight_fn)
        return y.permute(0, 2, 3, 1, 4)
    M, s = window, shift
    Hp = int(math.ceil(h / M)) * M
    Wp = int(math.ceil(w / M)) * M
    # 5.2: zero padding at the bottom and right.
    pad = lambda t: F.pad(t, (0, 0, 0, 0, 0, Wp - w, 0, Hp - h))
    q, k, v = pad(q), pad(k), pad(v)
    # 5.3: cyclic shift roll(-s, -s) over (rows, cols).
    if s > 0:
        q, k, v = (torch.roll(t, shifts=(-s, -s), dims=(1, 2)) for t in (q, k, v))
    # 5.4: region ids (shifted frame), partitioned exactly like the map.
    ids = region_ids(h, w, M, s)
    nW = (Hp // M) * (Wp // M)
    ids_win = ids.reshape(Hp // M, M, Wp // M, M).permute(0, 2, 1, 3).reshape(nW, M, M)  # (nW, R, K)
    allowed_w = pass_mask(ids_win)  # (nW, R, K, K): pairs in the same row
    allowed_h = pass_mask(ids_win.transpose(1, 2))  # (nW, K, R, R): pairs in the same column
    allowed_w = allowed_w.repeat(B, 1, 1, 1).unsqueeze(1)  # (B * nW, 1, ...), batch-major
    allowed_h = allowed_h.repeat(B, 1, 1, 1).unsqueeze(1)
    # 5.5 + 6: partition, decomposed passes, reverse.
    y = decomposed_passes(window_partition(q, M), window_partition(k, M), window_partition(v, M),
                          weight_fn, allowed_w, allowed_h)
    y = window_reverse(y, B, Hp, Wp, M)
    if s > 0:
        y = torch.roll(y, shifts=(s, s), dims=(1, 2))
    # 5.2: padded outputs dropped.
    return y[:, :h, :w].contiguous()


# ----------------------------------------------------------------------------------------------------
# Modules.
# ----------------------------------------------------------------------------------------------------

def _dw_conv_cl(conv, x):
    """Apply a (depthwise) Conv2d to a channels-last map (B, h, w, C)."""
    return conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class Attention(nn.Module):
    """Sections 4, 5, 6, 7: the attention of one block. Input X = LN1(x), (B, h, w, C).

    Attribute names give the state_dict keys of section 9: q, k, v, o, lce, vgate (swat), gate
    (retention unless gate == "none").
    """

    def __init__(self, dim, heads, variant, window=7, shift=0, rope=True, gate="elementwise",
                 swat_norm="row", decay_a=2.0, decay_r=4.0, full_2d=False):
        super().__init__()
        assert variant in VARIANTS and gate in GATES and swat_norm in SWAT_NORMS
        assert dim % heads == 0 and (dim // heads) % 2 == 0
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.variant, self.window, self.shift = variant, window, shift
        self.rope, self.gate_mode, self.swat_norm = rope, gate, swat_norm
        self.full_2d = full_2d  # rmt stage 3 only
        self.scale = self.head_dim ** -0.5
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.lce = nn.Conv2d(dim, dim, 5, padding=2, groups=dim, bias=True)  # 4: LCE
        if variant == "swat":
            self.vgate = nn.Linear(dim, dim)  # 7.2: SwiGLU value gate
        if variant == "retention" and gate != "none":
            self.gate = nn.Linear(dim, dim if gate == "elementwise" else heads)  # 7.1: G1 gate
        # Computed constants (float64, section 4 / 7.2); plain attributes, not buffers -> never stored.
        gam = decay_gammas(heads, decay_a, decay_r)
        self.gamma_f64 = gam
        self.log_gamma_f64 = torch.log(gam)
        self.slopes_f64 = alibi_slopes(heads)

    def weight_fn(self):
        """Section 7: the variant's weight(S, delta) with the mask argument."""
        if self.variant == "swat":
            return lambda S, delta, allowed: swat_weight(
                S, delta, self.slopes_f64, self.gamma_f64, allowed, self.swat_norm)
        return lambda S, delta, allowed: softmax_decay_weight(S, delta, self.log_gamma_f64, allowed)

    def forward(self, X):
        B, h, w, C = X.shape
        H, d = self.heads, self.head_dim
        # Section 4: projections; k scaled by d^-0.5 after its bias.
        q = self.q(X)
        k = self.k(X) * self.scale
        v = self.v(X)
        if self.variant == "swat":
            v = v * F.silu(self.vgate(X))  # 7.2: v = (X Wv + bv) * SiLU(X Wvg + bvg)
        # Section 4: LCE on the full, unshifted value map (after the SwiGLU gate in SWAT).
        lce = _dw_conv_cl(self.lce, v)
        q, k, v = (t.reshape(B, h, w, H, d) for t in (q, k, v))
        # Section 4: RoPE on the whole unwindowed map, before padding / shift / partition.
        if self.rope:
            sin, cos = rope_tables(h, w, d)
            q, k = apply_rope(q, sin, cos), apply_rope(k, sin, cos)
        if self.variant == "rmt":
            # 7.3: no windows, no shift.
            if self.full_2d:
                y = full_2d_pass(q, k, v, self.log_gamma_f64)
            else:
                y = windowed_decomposed(q, k, v, self.weight_fn(), window=0, shift=0)
        else:
            y = windowed_decomposed(q, k, v, self.weight_fn(), self.window, self.shift)
        y = y.reshape(B, h, w, C) + lce  # 4: LCE added to the attention output
        if self.variant == "retention" and self.gate_mode != "none":
            g = torch.sigmoid(self.gate(X))  # 7.1: G1 gate from the block input X = LN1(x)
            if self.gate_mode == "headwise":
                g = g.repeat_interleave(d, dim=-1)  # one value per head, broadcast over its d channels
            y = g * y
        return self.o(y)  # 4: out = Wo y + bo


class FFN(nn.Module):
    """Section 2: h = GELU(fc1(x)); h = h + DWConv3x3(h); fc2(h). Channels-last."""

    def __init__(self, dim, ratio):
        super().__init__()
        hidden = int(ratio * dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=True)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        h = F.gelu(self.fc1(x))  # exact (erf) GELU
        h = h + _dw_conv_cl(self.dwconv, h)
        return self.fc2(h)


class DropPath(nn.Module):
    """Section 2: per-sample stochastic depth (rate p); identity in eval mode or when p == 0."""

    def __init__(self, p=0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x):
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device)
        mask = torch.floor(mask + keep)  # 1 with probability keep
        return x / keep * mask


class Block(nn.Module):
    """Section 2: x = x + CPE(x); x = x + DropPath(ls1 * Attn(LN1(x))); x = x + DropPath(ls2 * FFN(LN2(x)))."""

    def __init__(self, dim, heads, mlp_ratio, variant, index_in_stage, window=7, rope=True,
                 gate="elementwise", swat_norm="row", decay_a=2.0, decay_r=4.0, full_2d=False,
                 drop_path=0.0, layerscale=False):
        super().__init__()
        shift = (window // 2) if (window and window > 0 and index_in_stage % 2 == 1) else 0  # 5.3
        self.cpe = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=True)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, variant, window=window, shift=shift, rope=rope, gate=gate,
                              swat_norm=swat_norm, decay_a=decay_a, decay_r=decay_r, full_2d=full_2d)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.ffn = FFN(dim, mlp_ratio)
        self.drop_path = DropPath(drop_path)
        self.layerscale = layerscale
        if layerscale:
            self.ls1 = nn.Parameter(1e-6 * torch.ones(dim))
            self.ls2 = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x):  # x: (B, h, w, C)
        x = x + _dw_conv_cl(self.cpe, x)
        a = self.attn(self.norm1(x))
        if self.layerscale:
            a = self.ls1 * a
        x = x + self.drop_path(a)
        f = self.ffn(self.norm2(x))
        if self.layerscale:
            f = self.ls2 * f
        return x + self.drop_path(f)


class Stem(nn.Module):
    """Section 2: stride-4 conv stem (conv1..conv4 with bias, bn1..bn4, GELU after the first three)."""

    def __init__(self, in_chans, dim):
        super().__init__()
        half = dim // 2
        self.conv1 = nn.Conv2d(in_chans, half, 3, stride=2, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, half, 3, stride=1, padding=1, bias=True)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = nn.Conv2d(half, dim, 3, stride=2, padding=1, bias=True)
        self.bn3 = nn.BatchNorm2d(dim)
        self.conv4 = nn.Conv2d(dim, dim, 3, stride=1, padding=1, bias=True)
        self.bn4 = nn.BatchNorm2d(dim)

    def forward(self, x):  # (B, in_chans, H, W) -> (B, C0, H', W')
        x = F.gelu(self.bn1(self.conv1(x)))
        x = F.gelu(self.bn2(self.conv2(x)))
        x = F.gelu(self.bn3(self.conv3(x)))
        return self.bn4(self.conv4(x))


class Downsample(nn.Module):
    """Section 2: conv 3x3 s2 p1 (C_s -> C_{s+1}, bias) then BatchNorm2d; channels-last in and out."""

    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.conv = nn.Conv2d(dim_in, dim_out, 3, stride=2, padding=1, bias=True)
        self.bn = nn.BatchNorm2d(dim_out)

    def forward(self, x):
        x = self.bn(self.conv(x.permute(0, 3, 1, 2)))
        return x.permute(0, 2, 3, 1)


class Stage(nn.Module):
    """Section 2: depth[s] blocks, then (s < 3) the downsample."""

    def __init__(self, blocks, downsample=None):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        if downsample is not None:
            self.downsample = downsample
        else:
            self.downsample = None

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


class Head(nn.Module):
    """Section 2: proj Linear(C3 -> 1024); BatchNorm2d(1024); SiLU; global average pool; fc."""

    def __init__(self, dim, num_classes, hidden=1024):
        super().__init__()
        self.proj = nn.Linear(dim, hidden)
        self.bn = nn.BatchNorm2d(hidden)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x):  # (B, h, w, C3)
        x = self.proj(x).permute(0, 3, 1, 2)  # (B, 1024, h, w)
        x = F.silu(self.bn(x))
        x = x.mean(dim=(2, 3))  # global average pool over h, w
        return self.fc(x)


class GatedSwinRMT(nn.Module):
    """The whole model (sections 2-7). Parameter names follow section 9 exactly."""

    def __init__(self, variant="swat", preset="nano", num_classes=100, in_chans=3, window=7,
                 rope=True, gate="elementwise", swat_norm="row", drop_path=None, layerscale=None,
                 decay_a=DECAY_A, decay_r=DECAY_R):
        super().__init__()
        assert variant in VARIANTS, variant
        assert gate in GATES, gate
        assert swat_norm in SWAT_NORMS, swat_norm
        p = PRESETS[preset]
        dims, depths, heads, ratios = p["dims"], p["depths"], p["heads"], p["mlp_ratios"]
        drop_path = p["drop_path"] if drop_path is None else float(drop_path)
        layerscale = p["layerscale"] if layerscale is None else tuple(layerscale)
        self.variant, self.preset, self.num_classes = variant, preset, num_classes
        self.window, self.rope, self.gate, self.swat_norm = window, rope, gate, swat_norm
        total = sum(depths)
        # Section 2: DropPath rate rising linearly from 0 (first block) to drop_path (last block).
        rates = [drop_path * i / (total - 1) if total > 1 else 0.0 for i in range(total)]
        self.stem = Stem(in_chans, dims[0])
        stages, n = [], 0
        for s in range(4):
            blocks = []
            for i in range(depths[s]):
                blocks.append(Block(dims[s], heads[s], ratios[s], variant, i, window=window, rope=rope,
                                    gate=gate, swat_norm=swat_norm, decay_a=decay_a[s],
                                    decay_r=decay_r[s], full_2d=(variant == "rmt" and s == 3),
                                    drop_path=rates[n], layerscale=layerscale[s]))
                n += 1
            ds = Downsample(dims[s], dims[s + 1]) if s < 3 else None
            stages.append(Stage(blocks, ds))
        self.stages = nn.ModuleList(stages)
        self.head = Head(dims[3], num_classes)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        """Section 2: Linear trunc-normal std 0.02 (torch's default bounds a=-2, b=2), bias 0;
        LayerNorm 1 / 0; conv and BatchNorm keep PyTorch's defaults; LayerScale 1e-6 (set in Block)."""
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward_features(self, x):
        x = self.stem(x).permute(0, 2, 3, 1)  # channels-last (B, h, w, C0)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x):
        return self.head(self.forward_features(x))


def build_model(variant="swat", preset="nano", num_classes=100, **kw):
    """Convenience constructor."""
    return GatedSwinRMT(variant=variant, preset=preset, num_classes=num_classes, **kw)


def count_params(model):
    """Number of trainable parameters (buffers such as BN running stats excluded)."""
    return sum(p.numel() for p in model.parameters())
