#!/usr/bin/python3
"""Compares two Chrome traces of libtorch ops: `gsrmt-cli bench --profile go.json` and
`bench/pytorch_bench.py --profile py.json` on the same config. For each op name it sums the calls and
the self time (the op's duration less that of the ops it called) and prints the ops whose self time
differs most, so that the extra work on either side shows up by name.

Usage: /usr/bin/python3 bench/profile_diff.py go.json py.json [--top 30]

Read the call counts first and the self times of large ops only: libtorch 1.13's legacy profiler costs
far more per recorded op in the Go process than in Python's. Measured on nano swat 32 px, batch 64,
2 threads: one profiled training step and evaluation forward hold 1026 ms of self time in gsrmt
against 174 ms in PyTorch (about 107 ms unprofiled in both), nearly all of it in the 74,000
aten::select / as_strided calls that CPU bmm makes per batch element (6.7 us a select in gsrmt, 0.04
in PyTorch), while the same bmm unprofiled, (3584, 7, 16) @ (3584, 16, 7), takes 3.1 ms in gsrmt and
3.2-5.4 ms in PyTorch. Large ops (convolutions, mm, softmax) profile alike in both.
"""
import argparse
import collections
import json


def load(path):
    with open(path) as f:
        events = json.load(f)
    events = [e for e in events if e.get("ph") == "X"]
    by_tid = collections.defaultdict(list)
    for e in events:
        by_tid[e.get("tid")].append(e)
    calls = collections.Counter()
    self_us = collections.Counter()
    top_calls = collections.Counter()
    for evs in by_tid.values():
        evs.sort(key=lambda e: (float(e["ts"]), -float(e["dur"])))
        stack = []  # (end, name, child time)
        for e in evs:
            ts, dur = float(e["ts"]), float(e["dur"])
            while stack and stack[-1][0] <= ts:
                end, name, child, d = stack.pop()
                self_us[name] += d - child
            if stack:
                stack[-1][2] += dur
            else:
                top_calls[e["name"]] += 1
            calls[e["name"]] += 1
            stack.append([ts + dur, e["name"], 0.0, dur])
        while stack:
            end, name, child, d = stack.pop()
            self_us[name] += d - child
    return calls, self_us, top_calls


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("go")
    ap.add_argument("py")
    ap.add_argument("--top", type=int, default=30)
    a = ap.parse_args()
    gc, gs, gt = load(a.go)
    pc, ps, pt = load(a.py)
    names = set(gc) | set(pc)
    print("ops recorded: gsrmt %d (%d top-level), PyTorch %d (%d top-level); self time %.1f ms vs %.1f ms" % (
        sum(gc.values()), sum(gt.values()), sum(pc.values()), sum(pt.values()),
        sum(gs.values()) / 1000, sum(ps.values()) / 1000))
    print("%-48s %8s %8s %10s %10s %9s" % ("op", "go calls", "py calls", "go self ms", "py self ms", "diff ms"))
    for n in sorted(names, key=lambda n: -abs(gs[n] - ps[n]))[:a.top]:
        print("%-48s %8d %8d %10.2f %10.2f %+9.2f" % (n[:48], gc[n], pc[n], gs[n] / 1000, ps[n] / 1000, (gs[n] - ps[n]) / 1000))


if __name__ == "__main__":
    main()
