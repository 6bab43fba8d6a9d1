#!/usr/bin/python3
"""PyTorch counterpart of `gsrmt-cli bench`: the same model (tests/reference/gsrmt_ref.py), config,
batch, image size, threads and optimizer, in eager PyTorch. Prints one JSON object with the same keys.

Usage (Debian's /usr/bin/python3, which has torch):
  /usr/bin/python3 bench/pytorch_bench.py --variant swat --preset nano --img-size 32 --batch-size 64 \
      --threads 2 [--steps 20] [--warmup 3] [--classes 100] [--device cpu|cuda] [--amp]
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import gsrmt_ref  # noqa: E402
from gsrmt_ref import GatedSwinRMT  # noqa: E402


def cache_tables():
    """The reference rebuilds its RoPE tables and window region ids on every forward; gsrmt builds
    them once per map size. Memoize them here so that the comparison measures the model, not the
    reference's table building (the per-pass decay terms are still computed per call)."""
    import functools
    gsrmt_ref.rope_tables = functools.lru_cache(maxsize=None)(gsrmt_ref.rope_tables)
    gsrmt_ref.region_ids = functools.lru_cache(maxsize=None)(gsrmt_ref.region_ids)


def rss_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def blas_library():
    """The BLAS library this process loaded, as gsrmt-cli bench reports it."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            base = os.path.basename(path)
            if base.startswith(("libblas.so", "libopenblas", "libmkl_rt", "libflexiblas", "libblis")):
                return path
    return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", default="swat")
    ap.add_argument("--preset", default="nano")
    ap.add_argument("--img-size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", action="store_true")
    ap.add_argument("--profile", help="write a Chrome trace of one more training step and evaluation forward")
    ap.add_argument("--no-cache-tables", action="store_true", help="run the reference exactly as written")
    a = ap.parse_args()
    if not a.no_cache_tables:
        cache_tables()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        # The reference builds its RoPE and decay tables with torch.arange and friends in
        # forward; on CUDA they must be created there, as gsrmt's are.
        torch.set_default_device(dev)
    torch.manual_seed(0)
    model = GatedSwinRMT(variant=a.variant, preset=a.preset, num_classes=a.classes).to(dev)
    # AdamW as gsrmt's: no weight decay on biases, norms and LayerScale.
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or name.endswith(".ls1") or name.endswith(".ls2") else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, foreach=dev.type == "cuda")  # gsrmt's AdamW: single-tensor on the CPU, foreach on CUDA
    x = torch.randn(a.batch_size, 3, a.img_size, a.img_size, device=dev)
    y = torch.arange(a.batch_size, device=dev) % a.classes

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    import contextlib

    def autocast():
        if a.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step():
        opt.zero_grad(set_to_none=False)
        with autocast():
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        opt.step()

    def eval_step():
        with torch.no_grad(), autocast():
            model(x)

    peak_device = [0]

    def timed(f, n):
        out = []
        for _ in range(n):
            sync()
            t = time.perf_counter()
            f()
            sync()
            out.append((time.perf_counter() - t) * 1000)
            if dev.type == "cuda":
                # The same measure as gsrmt-cli bench: device memory in use (total - free) after a step.
                free, total = torch.cuda.mem_get_info(dev)
                peak_device[0] = max(peak_device[0], total - free)
        return out

    model.train()
    timed(train_step, a.warmup)
    model.eval()
    timed(eval_step, a.warmup)
    rss_warm = rss_mb("VmRSS")
    model.train()
    trs = timed(train_step, a.steps)
    tr = statistics.median(trs)
    model.eval()
    evs = timed(eval_step, a.steps)
    ev = statistics.median(evs)
    if a.profile:
        # The legacy profiler, as gsrmt-cli bench --profile uses, so that both carry the same overhead.
        with torch.autograd.profiler.profile(use_kineto=False) as prof:
            model.train()
            timed(train_step, 1)
            model.eval()
            timed(eval_step, 1)
        prof.export_chrome_trace(a.profile)
    res = {
        "variant": a.variant, "preset": a.preset, "img_size": a.img_size, "batch_size": a.batch_size,
        "threads": torch.get_num_threads(), "device": a.device, "amp": a.amp, "steps": a.steps,
        "train_ms_per_step": tr, "eval_ms_per_step": ev, "train_ms_min": min(trs), "eval_ms_min": min(evs),
        "train_images_per_s": a.batch_size / tr * 1000, "eval_images_per_s": a.batch_size / ev * 1000,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_after_warmup_mb": rss_warm, "rss_end_mb": rss_mb("VmRSS"), "torch": torch.__version__,
        "blas": blas_library(),
    }
    if dev.type == "cuda":
        res["peak_device_mb"] = peak_device[0] / 2**20
        res["peak_allocated_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    print(json.dumps(res))


if __name__ == "__main__":
    main()
