"""Tests of the PyTorch reference (gsrmt_ref.py) against MODEL.md.

Run from the repository root with Debian's Python (which has torch):
  /usr/bin/python3 -m unittest discover -s tests/reference
"""

import contextlib
import copy
import os
import sys
import tempfile
import unittest

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gsrmt_ref as ref  # noqa: E402
from bundle import read_bundle, write_bundle  # noqa: E402

torch.set_num_threads(2)

# Section 3's table (100 classes): swat / retention / rmt.
EXPECTED_PARAMS = {
    "nano": (1588980, 1588980, 1501460),
    "tiny": (14504708, 14504708, 13411716),
    "small": (28358148, 28358148, 26044740),
    "paper": (77298140, 77298140, 71784220),
}
TEN_CLASS_DELTA = 92250


@contextlib.contextmanager
def no_init():
    """Skip weight initialisation (only shapes matter for counting); keeps the paper preset cheap."""
    saved = (nn.Linear.reset_parameters, nn.modules.conv._ConvNd.reset_parameters,
             ref.GatedSwinRMT.__dict__["_init_weights"])
    nn.Linear.reset_parameters = lambda self: None
    nn.modules.conv._ConvNd.reset_parameters = lambda self: None
    ref.GatedSwinRMT._init_weights = staticmethod(lambda m: None)
    try:
        yield
    finally:
        nn.Linear.reset_parameters, nn.modules.conv._ConvNd.reset_parameters = saved[:2]
        ref.GatedSwinRMT._init_weights = saved[2]


def expected_keys(variant, preset, gate="elementwise"):
    """Section 9's key list, expanded for one configuration."""
    p = ref.PRESETS[preset]
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    wb = ("weight", "bias")
    keys = set()
    for i in range(1, 5):
        keys |= {"stem.conv%d.%s" % (i, t) for t in wb}
        keys |= {"stem.bn%d.%s" % (i, t) for t in bn}
    for s in range(4):
        for i in range(p["depths"][s]):
            pre = "stages.%d.blocks.%d." % (s, i)
            mods = ["cpe", "norm1", "attn.q", "attn.k", "attn.v", "attn.o", "attn.lce", "norm2",
                    "ffn.fc1", "ffn.dwconv", "ffn.fc2"]
            if variant == "swat":
                mods.append("attn.vgate")
            if variant == "retention" and gate != "none":
                mods.append("attn.gate")
            keys |= {pre + m + "." + t for m in mods for t in wb}
            if p["layerscale"][s]:
                keys |= {pre + "ls1", pre + "ls2"}
        if s < 3:
            keys |= {"stages.%d.downsample.conv.%s" % (s, t) for t in wb}
            keys |= {"stages.%d.downsample.bn.%s" % (s, t) for t in bn}
    keys |= {"head.proj.%s" % t for t in wb} | {"head.fc.%s" % t for t in wb}
    keys |= {"head.bn.%s" % t for t in bn}
    return keys


def randomize_(model, seed=0):
    """Give BN/LN/bias non-trivial values (eval-mode BN otherwise is nearly the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if isinstance(m, (nn.Linear, nn.LayerNorm)):
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.02)
    return model


class TestParameterCounts(unittest.TestCase):
    def test_table(self):
        for preset, counts in EXPECTED_PARAMS.items():
            for variant, expected in zip(ref.VARIANTS, counts):
                with self.subTest(preset=preset, variant=variant):
                    with no_init():
                        n100 = ref.count_params(ref.build_model(variant, preset, 100))
                        n10 = ref.count_params(ref.build_model(variant, preset, 10))
                    self.assertEqual(n100, expected)
                    self.assertEqual(n10, expected - TEN_CLASS_DELTA)

    def test_headwise_gate_count(self):
        # headwise: gate is Linear(C -> H): per block C*H + H instead of C*C + C.
        m = ref.build_model("retention", "nano", 100, gate="headwise")
        p = ref.PRESETS["nano"]
        diff = sum(d * d + d - (d * h + h) for d, h in zip(p["dims"], p["heads"]))
        self.assertEqual(ref.count_params(m), EXPECTED_PARAMS["nano"][1] - diff)
        m = ref.build_model("retention", "nano", 100, gate="none")
        self.assertEqual(ref.count_params(m), EXPECTED_PARAMS["nano"][2])


class TestStateDictKeys(unittest.TestCase):
    def check(self, variant, preset, gate="elementwise"):
        with no_init():
            m = ref.build_model(variant, preset, 100, gate=gate)
        sd = m.state_dict()
        self.assertEqual(set(sd.keys()), expected_keys(variant, preset, gate))
        # Only parameters and BN buffers are stored (no decay / RoPE / mask tables).
        bufs = {k for k in sd if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
        self.assertEqual(set(sd.keys()) - bufs, {k for k, _ in m.named_parameters()})
        for k, v in sd.items():
            want = torch.int64 if k.endswith("num_batches_tracked") else torch.float32
            self.assertEqual(v.dtype, want, k)
        return m, sd

    def test_keys_all_variants(self):
        for preset in ("nano", "tiny"):
            for variant in ref.VARIANTS:
                with self.subTest(preset=preset, variant=variant):
                    self.check(variant, preset)

    def test_keys_paper_layerscale(self):
        m, sd = self.check("swat", "paper")
        ls = sorted(k for k in sd if k.endswith((".ls1", ".ls2")))
        self.assertEqual(len(ls), 2 * (18 + 4))
        self.assertTrue(all(k.startswith(("stages.2.", "stages.3.")) for k in ls))
        self.assertEqual(tuple(sd["stages.3.blocks.0.ls1"].shape), (640,))

    def test_gate_modes(self):
        _, sd = self.check("retention", "nano", gate="headwise")
        self.assertEqual(tuple(sd["stages.3.blocks.0.attn.gate.weight"].shape), (8, 256))
        self.assertEqual(tuple(sd["stages.3.blocks.0.attn.gate.bias"].shape), (8,))
        _, sd = self.check("retention", "nano", gate="elementwise")
        self.assertEqual(tuple(sd["stages.3.blocks.0.attn.gate.weight"].shape), (256, 256))
        self.check("retention", "nano", gate="none")

    def test_shapes(self):
        _, sd = self.check("swat", "nano")
        self.assertEqual(tuple(sd["stages.1.blocks.0.cpe.weight"].shape), (64, 1, 3, 3))
        self.assertEqual(tuple(sd["stages.1.blocks.0.attn.lce.weight"].shape), (64, 1, 5, 5))
        self.assertEqual(tuple(sd["stages.1.blocks.0.ffn.dwconv.weight"].shape), (128, 1, 3, 3))
        self.assertEqual(tuple(sd["stages.1.blocks.0.attn.q.weight"].shape), (64, 64))
        self.assertEqual(tuple(sd["stages.1.blocks.0.ffn.fc1.weight"].shape), (128, 64))
        self.assertEqual(tuple(sd["stages.0.downsample.conv.weight"].shape), (64, 32, 3, 3))
        self.assertEqual(tuple(sd["stem.conv1.weight"].shape), (16, 3, 3, 3))
        self.assertEqual(tuple(sd["head.proj.weight"].shape), (1024, 256))
        self.assertEqual(tuple(sd["head.fc.weight"].shape), (100, 1024))


class TestTables(unittest.TestCase):
    def test_gamma_h4(self):
        g = ref.decay_gammas(4, 2.0, 4.0)
        self.assertEqual(g.tolist(), [0.75, 0.875, 0.9375, 0.96875])

    def test_alibi_h8(self):
        self.assertEqual(ref.alibi_slopes(8).tolist(),
                         [-1 / 2, -1 / 4, -1 / 8, -1 / 16, 1 / 2, 1 / 4, 1 / 8, 1 / 16])
        self.assertEqual(ref.alibi_slopes(7).tolist(), [-1 / 2, -1 / 4, -1 / 8, -1 / 16, 1 / 2, 1 / 4, 1 / 8])
        self.assertEqual(ref.alibi_slopes(2).tolist(), [-1 / 2, 1 / 2])

    def test_rope(self):
        x = torch.arange(6.0)
        self.assertEqual(ref.rotate_every_two(x).tolist(), [-1.0, 0.0, -3.0, 2.0, -5.0, 4.0])
        sin, cos = ref.rope_tables(2, 3, 4)
        # angle = (1, 1, 1e-4, 1e-4); position of (row 1, col 2) is l = 1 * 3 + 2 = 5.
        self.assertAlmostEqual(sin[1, 2, 0, 0].item(), np.sin(5.0), places=6)
        self.assertAlmostEqual(sin[1, 2, 0, 3].item(), np.sin(5e-4), places=6)
        self.assertEqual(cos[0, 0, 0].tolist(), [1.0] * 4)

    def test_region_ids(self):
        ids = ref.region_ids(14, 14, 7, 3)
        self.assertEqual(ids[0, 0].item(), 0)
        self.assertEqual(ids[13, 13].item(), 8)
        self.assertEqual(ids[7, 11].item(), 5)
        # padded (15 x 15 -> 21 x 21): row 15.. in unshifted coordinates, rolled by -3 -> rows 12..17
        ids = ref.region_ids(15, 15, 7, 3)
        self.assertTrue(bool((ids[12:18] == ref.PAD_ID).all()))
        self.assertTrue(bool((ids[:, 12:18] == ref.PAD_ID).all()))
        self.assertFalse(bool((ids[:12, :12] == ref.PAD_ID).any()))
        self.assertFalse(bool((ids[18:, 18:] == ref.PAD_ID).any()))

    def test_drop_path_rates(self):
        with no_init():
            m = ref.build_model("swat", "tiny", 10)
        rates = [b.drop_path.p for st in m.stages for b in st.blocks]
        self.assertEqual(len(rates), 14)
        self.assertEqual(rates[0], 0.0)
        self.assertAlmostEqual(rates[-1], 0.1)
        np.testing.assert_allclose(np.diff(rates), 0.1 / 13)


def _weight_fns(heads):
    gam = ref.decay_gammas(heads, 2.0, 4.0)
    return {
        "softmax": lambda S, d, a: ref.softmax_decay_weight(S, d, torch.log(gam), a),
        "swat": lambda S, d, a: ref.swat_weight(S, d, ref.alibi_slopes(heads), gam, a, "row"),
        "swat_nonorm": lambda S, d, a: ref.swat_weight(S, d, ref.alibi_slopes(heads), gam, a, "none"),
    }


class TestWindows(unittest.TestCase):
    """Sections 5 and 6, checked against global attention on crops of the map."""

    def qkv(self, h, w, H=2, d=4, B=2, seed=0):
        g = torch.Generator().manual_seed(seed)
        return [torch.randn(B, h, w, H, d, generator=g) for _ in range(3)]

    def glob(self, fn, q, k, v, rs, cs):
        return ref.windowed_decomposed(q[:, rs, cs], k[:, rs, cs], v[:, rs, cs], fn, 0, 0)

    def test_unshifted_windows_and_padding(self):
        q, k, v = self.qkv(15, 16)
        for name, fn in _weight_fns(2).items():
            with self.subTest(weight=name):
                y = ref.windowed_decomposed(q, k, v, fn, 7, 0)
                self.assertEqual(tuple(y.shape), tuple(q.shape))
                crops = [(slice(0, 7), slice(0, 7)), (slice(7, 14), slice(7, 14)),
                         (slice(0, 7), slice(14, 16)), (slice(14, 15), slice(0, 7)),
                         (slice(14, 15), slice(14, 16))]
                for rs, cs in crops:
                    torch.testing.assert_close(y[:, rs, cs], self.glob(fn, q, k, v, rs, cs))

    def test_shifted_windows(self):
        q, k, v = self.qkv(14, 14)
        for name, fn in _weight_fns(2).items():
            with self.subTest(weight=name):
                y = ref.windowed_decomposed(q, k, v, fn, 7, 3)
                # shifted window (0,0) = original rows/cols 3..9 (one region); the wrapped window (1,1)
                # holds regions original [10:14, 10:14], [10:14, 0:3], [0:3, 10:14], [0:3, 0:3].
                crops = [(slice(3, 10), slice(3, 10)), (slice(10, 14), slice(10, 14)),
                         (slice(10, 14), slice(0, 3)), (slice(0, 3), slice(10, 14)),
                         (slice(0, 3), slice(0, 3)), (slice(3, 10), slice(10, 14))]
                for rs, cs in crops:
                    torch.testing.assert_close(y[:, rs, cs], self.glob(fn, q, k, v, rs, cs))

    def test_shifted_padded_windows(self):
        q, k, v = self.qkv(15, 15)
        fn = _weight_fns(2)["swat"]
        y = ref.windowed_decomposed(q, k, v, fn, 7, 3)
        # padded map 21x21, shift 3: shifted rows 0..6 = original 3..9; shifted 7..11 = original 10..14
        # (rows 15..17 are padding); shifted 18..20 = original 0..2 (region [-s, end)).
        for rs, cs in [(slice(3, 10), slice(3, 10)), (slice(10, 15), slice(10, 15)),
                       (slice(0, 3), slice(0, 3)), (slice(10, 15), slice(0, 3))]:
            torch.testing.assert_close(y[:, rs, cs], self.glob(fn, q, k, v, rs, cs))

    def test_padded_query_attends_to_itself(self):
        ids = torch.tensor([[0, 0, ref.PAD_ID, ref.PAD_ID]])
        allowed = ref.pass_mask(ids)[0]
        self.assertEqual(allowed.int().tolist(), [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])


def make_block(variant, window, index, dim=32, heads=2, seed=0, **kw):
    torch.manual_seed(seed)
    blk = ref.Block(dim, heads, 2, variant, index, window=window, **kw)
    randomize_(blk, seed)
    return blk.eval()


class TestBehaviours(unittest.TestCase):
    """Section 10."""

    def changed_positions(self, fn, x, r, c):
        x2 = x.clone()
        x2[:, r, c] += torch.randn(x.shape[-1], generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            d = (fn(x2) - fn(x)).abs().amax(dim=(0, 3))
        return d > 1e-6

    def test_locality(self):
        x = torch.randn(1, 14, 14, 32, generator=torch.Generator().manual_seed(1))
        for variant in ("swat", "retention"):
            for level in ("attn", "block"):
                for index in (0, 1):
                    with self.subTest(variant=variant, level=level, index=index):
                        blk = make_block(variant, 7, index)
                        with torch.no_grad():
                            blk.attn.lce.weight.zero_()
                            if level == "block":
                                # CPE and the FFN's DWConv also mix neighbours; zero them too.
                                blk.cpe.weight.zero_()
                                blk.ffn.dwconv.weight.zero_()
                        fn = blk.attn if level == "attn" else blk
                        if index == 0:
                            ch = self.changed_positions(fn, x, 2, 4)
                            allowed = torch.zeros(14, 14, dtype=torch.bool)
                            allowed[0:7, 0:7] = True
                            self.assertTrue(bool(ch[allowed].all()))
                            self.assertFalse(bool(ch[~allowed].any()))
                        else:
                            # (5, 5): shifted window = original rows/cols 3..9, one region.
                            ch = self.changed_positions(fn, x, 5, 5)
                            allowed = torch.zeros(14, 14, dtype=torch.bool)
                            allowed[3:10, 3:10] = True
                            self.assertTrue(bool(ch[allowed].all()))
                            self.assertFalse(bool(ch[~allowed].any()))
                            # (0, 0): wrapped shifted window, region original rows/cols 0..2.
                            ch = self.changed_positions(fn, x, 0, 0)
                            allowed = torch.zeros(14, 14, dtype=torch.bool)
                            allowed[0:3, 0:3] = True
                            self.assertTrue(bool(ch[allowed].all()))
                            self.assertFalse(bool(ch[~allowed].any()))

    def test_collapse_equivalence(self):
        # h < 2M (13 < 14) or w < 2M: windows requested (M = 7) or not (window = 0) give the same output.
        for variant in ("swat", "retention"):
            for index in (0, 1):
                for hw in ((13, 13), (13, 20), (20, 9)):
                    with self.subTest(variant=variant, index=index, hw=hw):
                        x = torch.randn(2, hw[0], hw[1], 32, generator=torch.Generator().manual_seed(2))
                        a = make_block(variant, 7, index)
                        b = make_block(variant, 0, index)
                        b.load_state_dict(a.state_dict())
                        with torch.no_grad():
                            self.assertTrue(torch.equal(a(x), b(x)))
        # And the whole nano model at 32 px (maps 8, 4, 2, 1).
        x = torch.randn(1, 3, 32, 32)
        a = randomize_(ref.build_model("swat", "nano", 10, window=7)).eval()
        b = ref.build_model("swat", "nano", 10, window=0).eval()
        b.load_state_dict(a.state_dict())
        with torch.no_grad():
            self.assertTrue(torch.equal(a(x), b(x)))

    def test_windowed_differs_from_global(self):
        # Sanity: at 14 x 14 (= 2M) the windowed block is not global.
        x = torch.randn(1, 14, 14, 32)
        a = make_block("retention", 7, 0)
        b = make_block("retention", 0, 0)
        b.load_state_dict(a.state_dict())
        with torch.no_grad():
            self.assertFalse(torch.allclose(a(x), b(x)))

    def test_rmt_stage3_full_2d(self):
        # rmt stage 3 is one 2-D pass; compare against a direct per-pair computation.
        torch.manual_seed(0)
        attn = ref.Attention(32, 4, "rmt", full_2d=True, decay_a=2.0, decay_r=6.0)
        randomize_(attn)
        X = torch.randn(1, 3, 4, 32)
        with torch.no_grad():
            out = attn(X)
            q = attn.q(X).reshape(1, 3, 4, 4, 8)
            k = (attn.k(X) * 8 ** -0.5).reshape(1, 3, 4, 4, 8)
            v = attn.v(X)
            sin, cos = ref.rope_tables(3, 4, 8)
            q, k = ref.apply_rope(q, sin, cos), ref.apply_rope(k, sin, cos)
            lg = torch.log(ref.decay_gammas(4, 2.0, 6.0))
            y = torch.zeros(1, 3, 4, 4, 8)
            for hh in range(4):
                for i in range(12):
                    ri, ci = divmod(i, 4)
                    logits = []
                    for j in range(12):
                        rj, cj = divmod(j, 4)
                        logits.append(float(q[0, ri, ci, hh] @ k[0, rj, cj, hh])
                                      + (abs(ri - rj) + abs(ci - cj)) * float(lg[hh]))
                    p = torch.softmax(torch.tensor(logits), 0)
                    vv = v.reshape(1, 12, 4, 8)[0, :, hh]
                    y[0, ri, ci, hh] = p @ vv
            y = y.reshape(1, 3, 4, 32) + ref._dw_conv_cl(attn.lce, v)
            torch.testing.assert_close(out, attn.o(y), rtol=1e-4, atol=1e-5)


class TestForward(unittest.TestCase):
    def test_sizes(self):
        for variant in ref.VARIANTS:
            m = randomize_(ref.build_model(variant, "nano", 10)).eval()
            for size in (32, 40, 100):
                with self.subTest(variant=variant, size=size):
                    with torch.no_grad():
                        y = m(torch.randn(1, 3, size, size))
                    self.assertEqual(tuple(y.shape), (1, 10))
                    self.assertTrue(bool(torch.isfinite(y).all()))

    def test_224(self):
        for variant in ref.VARIANTS:
            with self.subTest(variant=variant):
                m = ref.build_model(variant, "nano", 100).eval()
                with torch.no_grad():
                    y = m(torch.randn(1, 3, 224, 224))
                self.assertEqual(tuple(y.shape), (1, 100))
                self.assertTrue(bool(torch.isfinite(y).all()))

    def test_shifted_odd_size(self):
        # tiny has depth 2 in stage 0: its second block is shifted; 68 px -> stage-0 map 17 x 17
        # (windowed, padded to 21 x 21), later maps 9, 5, 3 (global).
        m = ref.build_model("retention", "tiny", 10, gate="headwise").eval()
        with torch.no_grad():
            y = m(torch.randn(1, 3, 68, 68))
        self.assertTrue(bool(torch.isfinite(y).all()))


class TestGradients(unittest.TestCase):
    def check(self, variant, size=112, **kw):
        torch.manual_seed(0)
        m = ref.build_model(variant, "nano", 10, **kw).train()
        x = torch.randn(2, 3, size, size)
        labels = torch.tensor([1, 7])
        F.cross_entropy(m(x), labels).backward()
        for name, p in m.named_parameters():
            self.assertIsNotNone(p.grad, name)
            self.assertTrue(bool(torch.isfinite(p.grad).all()), name)
            self.assertGreater(p.grad.abs().sum().item(), 0.0, name)

    def test_grads(self):
        # 112 px: maps 28 and 14 are windowed (with M = 7), 7 and 4 global.
        for variant in ref.VARIANTS:
            with self.subTest(variant=variant):
                self.check(variant)

    def test_grads_switches(self):
        for kw in (dict(gate="headwise"), dict(gate="none", rope=False)):
            with self.subTest(**kw):
                self.check("retention", size=64, **kw)
        self.check("swat", size=64, swat_norm="none")


class TestBundle(unittest.TestCase):
    def test_roundtrip(self):
        t = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array(7, dtype=np.int64),
             "c": np.zeros((0, 2), dtype=np.float32)}
        with tempfile.TemporaryDirectory() as d:
            write_bundle(d, t, {"x": 1})
            back, meta = read_bundle(d)
        self.assertEqual(meta, {"x": 1})
        self.assertEqual(list(back), ["a", "b", "c"])
        for k in t:
            self.assertEqual(back[k].dtype, t[k].dtype)
            np.testing.assert_array_equal(back[k], t[k])

    def test_make_parity(self):
        import make_parity
        with tempfile.TemporaryDirectory() as d:
            make_parity.main(["--variant", "retention", "--preset", "nano", "--classes", "10",
                              "--img-size", "40", "--batch", "2", "--seed", "3", "--out", d])
            t, meta = read_bundle(d)
        self.assertEqual(meta["variant"], "retention")
        m = ref.build_model("retention", "nano", 10)
        sd = m.state_dict()
        self.assertEqual({k[6:] for k in t if k.startswith("param/")}, set(sd))
        self.assertEqual({k[5:] for k in t if k.startswith("grad/")}, {k for k, _ in m.named_parameters()})
        self.assertEqual(t["loss_train"].shape, ())
        self.assertEqual(t["labels"].dtype, np.int64)
        # Reload the weights and reproduce the eval logits and the train loss.
        m.load_state_dict({k: torch.from_numpy(t["param/" + k]) for k in sd})
        m.eval()
        with torch.no_grad():
            y = m(torch.from_numpy(t["input"]))
        np.testing.assert_allclose(y.numpy(), t["logits_eval"], rtol=1e-5, atol=1e-5)
        m.train()
        y = m(torch.from_numpy(t["input"]))
        loss = F.cross_entropy(y, torch.from_numpy(t["labels"]))
        np.testing.assert_allclose(loss.item(), t["loss_train"], rtol=1e-5)
        np.testing.assert_allclose(m.head.bn.running_mean.numpy(), t["after_train/head.bn.running_mean"],
                                   rtol=1e-5, atol=1e-6)
        self.assertEqual(int(t["after_train/head.bn.num_batches_tracked"]),
                         int(t["param/head.bn.num_batches_tracked"]) + 1)


if __name__ == "__main__":
    unittest.main()
