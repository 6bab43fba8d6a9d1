#!/usr/bin/python3
"""Runs `gsrmt-cli bench` and its PyTorch counterpart (bench/pytorch_bench.py) on the same configs and
prints the ratio gsrmt / PyTorch of the time per step (below 1.0: gsrmt is faster).

The two are interleaved (go, py, go, py, ... for --rounds rounds, the order alternating each round) so
that a slow phase of a shared machine hits both; each round reports the median of --steps steps, and
the table shows the median over the rounds and the ratio of those medians. The "paired" columns are
the median over rounds of each round's own ratio (its gsrmt run against the PyTorch run beside it in
time): a shared host's calm and busy phases last minutes, so the two runs of a round mostly share one,
where the ratio of medians can set a busy gsrmt round against a calm PyTorch one. --csv writes every
round, with each round's fastest step.

Usage (from the repository root, after `make build`):
  /usr/bin/python3 bench/compare.py [--threads 2] [--rounds 3] [--steps 10] [--warmup 3]
      [--configs nano:32:64,tiny:32:64,nano:224:8] [--variants swat,retention,rmt] [--csv out.csv]
      [--py-env KEY=VALUE ...] [--go-env KEY=VALUE ...]
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def run(cmd, env=None):
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit("%s failed (exit %d):\n%s" % (" ".join(cmd), p.returncode, p.stderr[-2000:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--configs", default="nano:32:64,tiny:32:64,nano:224:8", help="preset:img-size:batch,...")
    ap.add_argument("--variants", default="swat,retention,rmt")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", action="store_true")
    ap.add_argument("--cli", default=os.environ.get("CLI", "bin/gsrmt-cli"))
    ap.add_argument("--python", default=os.environ.get("PYTHON", sys.executable))
    ap.add_argument("--csv", help="write every round to this CSV file")
    ap.add_argument("--py-env", action="append", default=[], metavar="KEY=VALUE",
                    help="environment for the PyTorch runs only, e.g. GLIBC_TUNABLES=... to give PyTorch the malloc "
                         "settings gsrmt-cli uses (see README.md)")
    ap.add_argument("--go-env", action="append", default=[], metavar="KEY=VALUE",
                    help="environment for the gsrmt-cli runs only, e.g. GSRMT_SYSMON=normal or GSRMT_MALLOC=system "
                         "to measure what those settings gain")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(ROOT, a.cli)) and not os.path.isabs(a.cli):
        sys.exit("%s not found: run `make build` first (or pass --cli)" % a.cli)

    def env_with(pairs):
        env = dict(os.environ)
        for kv in pairs:
            k, sep, v = kv.partition("=")
            if not sep:
                sys.exit("--py-env/--go-env %r: want KEY=VALUE" % kv)
            env[k] = v
        return env

    py_env, go_env = env_with(a.py_env), env_with(a.go_env)
    rows = []
    writer = None
    if a.csv:
        f = open(a.csv, "w", newline="")
        writer = csv.writer(f)
        writer.writerow(["impl", "variant", "preset", "img_size", "batch_size", "threads", "device", "amp", "round",
                         "train_ms_per_step", "eval_ms_per_step", "train_ms_min", "eval_ms_min",
                         "peak_rss_mb", "peak_device_mb"])
    hdr = "%-10s %-6s %4s %5s | %9s %9s %6s %6s | %9s %9s %6s %6s" % (
        "variant", "preset", "px", "batch", "go train", "py train", "ratio", "paired", "go eval", "py eval", "ratio", "paired")
    print(hdr)
    print("-" * len(hdr))
    sys.stdout.flush()
    for spec in a.configs.split(","):
        preset, px, batch = spec.split(":")
        for v in a.variants.split(","):
            common = ["--variant", v, "--preset", preset, "--img-size", px, "--batch-size", batch,
                      "--threads", str(a.threads), "--steps", str(a.steps), "--warmup", str(a.warmup),
                      "--device", a.device] + (["--amp"] if a.amp else [])
            res = {"go": [], "py": []}
            for r in range(a.rounds):
                order = ["go", "py"] if r % 2 == 0 else ["py", "go"]
                for impl in order:
                    if impl == "go":
                        out = run([a.cli, "bench", "--json"] + common, env=go_env)
                    else:
                        out = run([a.python, "bench/pytorch_bench.py"] + common, env=py_env)
                    res[impl].append(out)
                    if writer:
                        writer.writerow([impl, v, preset, px, batch, a.threads, a.device, a.amp, r,
                                         "%.2f" % out["train_ms_per_step"], "%.2f" % out["eval_ms_per_step"],
                                         "%.2f" % out["train_ms_min"], "%.2f" % out["eval_ms_min"],
                                         "%.1f" % out["peak_rss_mb"], "%.1f" % out.get("peak_device_mb", 0)])
                        f.flush()
            med = {impl: (statistics.median(o["train_ms_per_step"] for o in res[impl]),
                          statistics.median(o["eval_ms_per_step"] for o in res[impl])) for impl in res}
            # Each round's go and py runs are neighbours in time: the median of their ratios.
            paired = tuple(statistics.median(g[k] / p[k] for g, p in zip(res["go"], res["py"]))
                           for k in ("train_ms_per_step", "eval_ms_per_step"))
            rows.append((v, preset, px, batch, med, paired))
            print("%-10s %-6s %4s %5s | %7.1fms %7.1fms %6.3f %6.3f | %7.1fms %7.1fms %6.3f %6.3f" % (
                v, preset, px, batch, med["go"][0], med["py"][0], med["go"][0] / med["py"][0],
                paired[0], med["go"][1], med["py"][1], med["go"][1] / med["py"][1], paired[1]))
            sys.stdout.flush()
    if writer:
        f.close()
    tr = [m["go"][0] / m["py"][0] for *_, m, _ in rows]
    ev = [m["go"][1] / m["py"][1] for *_, m, _ in rows]
    ptr = [pr[0] for *_, pr in rows]
    pev = [pr[1] for *_, pr in rows]
    if rows:
        print("-" * len(hdr))
        print("geometric mean of the ratios: train %.3f, eval %.3f; worst: train %.3f, eval %.3f" % (
            statistics.geometric_mean(tr), statistics.geometric_mean(ev), max(tr), max(ev)))
        print("paired ratios (median over rounds): geometric mean train %.3f, eval %.3f; worst: train %.3f, eval %.3f" % (
            statistics.geometric_mean(ptr), statistics.geometric_mean(pev), max(ptr), max(pev)))


if __name__ == "__main__":
    main()
