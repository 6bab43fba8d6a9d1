#!/usr/bin/python3
"""PyTorch counterpart of `gsrmt-cli bench`: the same model (tests/reference/gsrmt_ref.py), config,
batch, image size, threads and optimizer, in eager PyTorch (or torch.compile). Prints one JSON object
with the same keys, as its last line.

Usage (Debian's /usr/bin/python3, which has torch):
  /usr/bin/python3 bench/pytorch_bench.py --variant swat --preset nano --img-size 32 --batch-size 64 \
      --threads 2 [--steps 20] [--warmup 3] [--classes 100] [--device cpu|cuda] [--amp]
      [--tf32[=false]] [--cudnn-benchmark[=false]] [--compile] [--trace FILE] [--profile FILE]

--tf32 and --cudnn-benchmark are gsrmt-cli's flags: on by default with CUDA (as timm's train.py sets
torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 and
torch.backends.cudnn.benchmark), off and untouched on the CPU; the JSON reports them as "tf32" and
"cudnn_benchmark".

--compile wraps the model in torch.compile (PyTorch 2.0+; an older torch exits 2). The first training
step and the first evaluation forward, which compile, are timed apart: "compile_s" is their time
beyond a steady step's (the medians), and the warm-up and timed steps follow them.

--trace FILE records one more training step and evaluation forward with torch.profiler (CPU activity,
and CUDA on a GPU), writes its Chrome trace to FILE and prints, before the result line, one summary
line {"trace_summary": {...}} with per step: the wall time, the CPU time to enqueue the step (the
step's call without the final synchronize: under the profiler, which adds to it), the device's busy
time (the sum of its kernels and copies), the kernel and aten op counts, and the top 15 kernels by
device time (on the CPU: ops by self CPU time).
"""
import argparse
import contextlib
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

TRACE_MARK = "gsrmt_bench:"  # the record_function name of each traced step
TOP_N = 15
CPU = torch._C._autograd.DeviceType.CPU  # a profiler event's device_type for CPU-side events


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


def on_off(s):
    """A flag's optional value, as gsrmt-cli's boolean flags take it (--tf32=false)."""
    v = s.strip().lower()
    if v in ("1", "t", "true", "on", "yes"):
        return True
    if v in ("0", "f", "false", "off", "no"):
        return False
    raise argparse.ArgumentTypeError("%r: want true or false" % s)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    ap.add_argument("--tf32", type=on_off, nargs="?", const=True, default=None,
                    help="CUDA: allow TF32 in float32 matmuls and cuDNN (default on with CUDA; --tf32=false: full "
                         "float32); no effect on the CPU")
    ap.add_argument("--cudnn-benchmark", type=on_off, nargs="?", const=True, default=None,
                    help="CUDA: cuDNN's autotuner (default on with CUDA); no effect on the CPU")
    ap.add_argument("--compile", action="store_true", help="wrap the model in torch.compile; compile time apart")
    ap.add_argument("--trace", metavar="FILE",
                    help="torch.profiler trace of one more training step and evaluation forward, and a summary line")
    ap.add_argument("--profile", help="write a Chrome trace of one more training step and evaluation forward")
    ap.add_argument("--no-cache-tables", action="store_true", help="run the reference exactly as written")
    a = ap.parse_args()
    if a.compile and not hasattr(torch, "compile"):
        print("pytorch_bench.py: --compile needs torch.compile (PyTorch 2.0 or later); this is torch %s"
              % torch.__version__, file=sys.stderr)
        sys.exit(2)
    return a


def cuda_speed(a, dev):
    """Sets TF32 and cuDNN's autotuner as gsrmt-cli does: the flags (default on) with CUDA, nothing on
    the CPU. Returns the values in effect."""
    if dev.type != "cuda":
        return False, False
    tf32, bench = a.tf32 is not False, a.cudnn_benchmark is not False
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = bench
    return tf32, bench


class Bench:
    """The model, its AdamW, a fixed random batch, and timed steps."""

    def __init__(self, a, dev):
        self.a, self.dev = a, dev
        torch.manual_seed(0)
        self.model = GatedSwinRMT(variant=a.variant, preset=a.preset, num_classes=a.classes).to(dev)
        self.forward = torch.compile(self.model) if a.compile else self.model
        # AdamW as gsrmt's: no weight decay on biases, norms and LayerScale.
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            (no_decay if p.ndim <= 1 or name.endswith(".ls1") or name.endswith(".ls2") else decay).append(p)
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                                     lr=1e-4, foreach=dev.type == "cuda")  # gsrmt's: single-tensor on the CPU, foreach on CUDA
        self.x = torch.randn(a.batch_size, 3, a.img_size, a.img_size, device=dev)
        self.y = torch.arange(a.batch_size, device=dev) % a.classes
        self.peak_device = 0

    def sync(self):
        if self.dev.type == "cuda":
            torch.cuda.synchronize()

    def autocast(self):
        if self.a.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self):
        self.opt.zero_grad(set_to_none=False)
        with self.autocast():
            logits = self.forward(self.x)
        loss = F.cross_entropy(logits.float(), self.y)
        loss.backward()
        self.opt.step()

    def eval_step(self):
        with torch.no_grad(), self.autocast():
            self.forward(self.x)

    def mode(self, f):
        """Puts the model in the mode of the step f (outside the timed region, as gsrmt-cli bench)."""
        self.model.train(f == self.train_step)

    def timed(self, f, n):
        self.mode(f)
        out = []
        for _ in range(n):
            self.sync()
            t = time.perf_counter()
            f()
            self.sync()
            out.append((time.perf_counter() - t) * 1000)
            if self.dev.type == "cuda":
                # The same measure as gsrmt-cli bench: device memory in use (total - free) after a step.
                free, total = torch.cuda.mem_get_info(self.dev)
                self.peak_device = max(self.peak_device, total - free)
        return out


def trace(b, path):
    """Profiles one training step and one evaluation forward (torch.profiler), writes the Chrome trace
    to path and returns the summary of each step."""
    from torch.profiler import ProfilerActivity, profile, record_function
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if b.dev.type == "cuda" else [])
    times = {}
    with profile(activities=acts) as prof:
        for name, f in (("train", b.train_step), ("eval", b.eval_step)):
            b.mode(f)
            b.sync()
            with record_function(TRACE_MARK + name):
                t = time.perf_counter()
                f()
                enqueued = time.perf_counter()
                b.sync()
                times[name] = ((enqueued - t) * 1000, (time.perf_counter() - t) * 1000)
    prof.export_chrome_trace(path)
    events = list(prof.events())
    # Each step's window is its CPU-side mark (on CUDA the profiler adds a GPU-side copy of each mark);
    # the synchronize at its end keeps the step's kernels inside it.
    marks = [e for e in events if e.name.startswith(TRACE_MARK) and e.device_type == CPU]
    events = [e for e in events if not e.name.startswith(TRACE_MARK)]
    steps = {}
    for mark in marks:
        name = mark.name[len(TRACE_MARK):]
        inside = [e for e in events if mark.time_range.start <= e.time_range.start <= mark.time_range.end]
        steps[name] = step_summary(inside, *times[name])
    return {"trace": path, "device": str(b.dev), "torch": torch.__version__, "steps": steps}


def step_summary(events, enqueue_ms, wall_ms):
    """One traced step: wall and enqueue times, the device's busy time (the sum of its kernels and
    copies), the kernel count and the aten op calls (at any depth), and the top kernels by device time
    (on the CPU: the top ops by self CPU time)."""
    device = [e for e in events if e.device_type != CPU]
    s = {"wall_ms": round(wall_ms, 3), "cpu_enqueue_ms": round(enqueue_ms, 3),
         "aten_ops": sum(1 for e in events if e.device_type == CPU and e.name.startswith("aten::"))}
    totals = {}
    if device:
        device_ms = sum(e.time_range.elapsed_us() for e in device) / 1000
        s.update(device_ms=round(device_ms, 3), device_busy_pct=round(100 * device_ms / wall_ms, 1),
                 kernels=sum(1 for e in device if not e.name.startswith(("Memcpy", "Memset"))),
                 top_by="device time (kernels and copies)")
        timed = ((e.name, e.time_range.elapsed_us()) for e in device)
    else:
        s.update(device_ms=None, device_busy_pct=None, kernels=None, top_by="self CPU time (ops)")
        timed = ((e.name, e.self_cpu_time_total) for e in events)
    for name, us in timed:
        t = totals.setdefault(name, [0.0, 0])
        t[0] += us
        t[1] += 1
    top = sorted(totals.items(), key=lambda kv: -kv[1][0])[:TOP_N]
    s["top"] = [{"name": n[:160], "ms": round(us / 1000, 3), "calls": c} for n, (us, c) in top]
    return s


def main():
    a = parse_args()
    if not a.no_cache_tables:
        cache_tables()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        # The reference builds its RoPE and decay tables with torch.arange and friends in
        # forward; on CUDA they must be created there, as gsrmt's are.
        torch.set_default_device(dev)
    tf32, cudnn_benchmark = cuda_speed(a, dev)
    b = Bench(a, dev)
    first = None
    if a.compile:
        first = (b.timed(b.train_step, 1)[0], b.timed(b.eval_step, 1)[0])
    b.timed(b.train_step, a.warmup)
    b.timed(b.eval_step, a.warmup)
    rss_warm = rss_mb("VmRSS")
    trs = b.timed(b.train_step, a.steps)
    tr = statistics.median(trs)
    evs = b.timed(b.eval_step, a.steps)
    ev = statistics.median(evs)
    if a.profile:
        # The legacy profiler, as gsrmt-cli bench --profile uses, so that both carry the same overhead.
        with torch.autograd.profiler.profile(use_kineto=False) as prof:
            b.timed(b.train_step, 1)
            b.timed(b.eval_step, 1)
        prof.export_chrome_trace(a.profile)
    if a.trace:
        print(json.dumps({"trace_summary": trace(b, a.trace)}))
    res = {
        "variant": a.variant, "preset": a.preset, "img_size": a.img_size, "batch_size": a.batch_size,
        "threads": torch.get_num_threads(), "device": a.device, "amp": a.amp, "steps": a.steps,
        "train_ms_per_step": tr, "eval_ms_per_step": ev, "train_ms_min": min(trs), "eval_ms_min": min(evs),
        "train_images_per_s": a.batch_size / tr * 1000, "eval_images_per_s": a.batch_size / ev * 1000,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_after_warmup_mb": rss_warm, "rss_end_mb": rss_mb("VmRSS"), "torch": torch.__version__,
        "blas": blas_library(), "tf32": tf32, "cudnn_benchmark": cudnn_benchmark, "compile": a.compile,
    }
    if first:
        res["first_train_ms"], res["first_eval_ms"] = first
        res["compile_s"] = ((first[0] - tr) + (first[1] - ev)) / 1000
    if dev.type == "cuda":
        res["peak_device_mb"] = b.peak_device / 2**20
        res["peak_allocated_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    print(json.dumps(res))


if __name__ == "__main__":
    main()
