#!/usr/bin/python3
"""torchvision counterpart of datasets' BenchmarkTrainLoader224.

Runs the 224 px training pipeline of torchvision on an ImageFolder tree:
ImageFolder (PIL decode, convert("RGB")) + Compose([RandomResizedCrop(224),
RandomHorizontalFlip(), ToTensor(), Normalize(ImageNet mean/std)]) through
a DataLoader with batch 64, shuffle, drop_last, and prints the images per
second for each worker count.

Worker counts: num_workers=N>0 runs N single-threaded worker processes that
decode, augment and collate, and a main process that only receives the
batches (what gsrmt's Loader does with N worker goroutines and GOMAXPROCS=N);
num_workers=0 does everything in the main process (one process in all).

Timing: one untimed warm-up epoch (worker start-up, page cache), then whole
epochs until --min-time seconds have passed and at least --min-epochs ran.
Besides wall-clock images/s it reports images per CPU second (user+system
time of the main process and of the workers), which does not depend on other
load of the machine as much as wall-clock time does.

Usage: /usr/bin/python3 bench/torchvision_pipeline.py DIR/train [--workers 0,1,2]
Output: one line per worker count, "workers=N images/s=R images/cpu-s=C ...",
and with --json a JSON object per line instead.
"""

import argparse
import json
import os
import resource
import sys
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms
import torchvision

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def pid_cpu_seconds(pid):
    """user+system CPU seconds of a live process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def self_cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def worker_init(_):
    torch.set_num_threads(1)


def run(root, workers, batch, min_time, min_epochs, seed):
    torch.manual_seed(seed)
    tf = transforms.Compose([
        transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    ds = datasets.ImageFolder(root, tf)
    loader = DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True,
                        num_workers=workers, persistent_workers=workers > 0,
                        worker_init_fn=worker_init if workers > 0 else None)

    def epoch():
        n = 0
        for x, y in loader:
            n += x.shape[0]
        return n

    epoch()  # warm-up: starts the workers, fills the page cache
    pids = [w.pid for w in loader._iterator._workers] if workers > 0 else []

    def cpu():
        return self_cpu_seconds() + sum(pid_cpu_seconds(p) for p in pids)

    c0, t0 = cpu(), time.perf_counter()
    images = epochs = 0
    while True:
        images += epoch()
        epochs += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time and epochs >= min_epochs:
            break
    cpu_s = cpu() - c0
    return {
        "workers": workers,
        "processes": max(workers, 1),
        "images": images,
        "seconds": elapsed,
        "images_per_s": images / elapsed,
        "images_per_s_per_core": images / elapsed / max(workers, 1),
        "cpu_seconds": cpu_s,
        "images_per_cpu_s": images / cpu_s,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("root", help="ImageFolder train split (DIR/train)")
    p.add_argument("--workers", default="0,1,2", help="comma-separated num_workers values")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--min-time", type=float, default=10.0, help="seconds of timed epochs (at least)")
    p.add_argument("--min-epochs", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON lines")
    a = p.parse_args()
    torch.set_num_threads(1)
    if not a.json:
        print(f"# torch {torch.__version__} torchvision {torchvision.__version__} "
              f"PIL {__import__('PIL').__version__}, {a.root}", flush=True)
    for w in [int(s) for s in a.workers.split(",") if s.strip()]:
        r = run(a.root, w, a.batch, a.min_time, a.min_epochs, a.seed)
        if a.json:
            print(json.dumps(r), flush=True)
        else:
            print(f"workers={w} images/s={r['images_per_s']:.1f} "
                  f"images/s/core={r['images_per_s_per_core']:.1f} "
                  f"images/cpu-s={r['images_per_cpu_s']:.1f} "
                  f"({r['images']} images in {r['seconds']:.1f} s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
