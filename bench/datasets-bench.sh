#!/usr/bin/env bash
# Images per second of the 224 px training pipeline, gsrmt (datasets'
# BenchmarkTrainLoader224) against torchvision (bench/torchvision_pipeline.py),
# on the same folder of real-size JPEGs and the same number of worker
# processes / cores, side by side, interleaved over several rounds.
#
#   bench/datasets-bench.sh
#
# Environment (all optional):
#   GSRMT_BENCH_JPEG_DIR  folder of the generated JPEGs (default
#                         ${TMPDIR:-/tmp}/gsrmt-bench-jpegs; reused when up to date)
#   WORKERS               worker counts (default "1 2")
#   ROUNDS                rounds of every measurement (default 3); the tables
#                         show the median and the best of the rounds
#   GO_BATCHES            timed batches of 64 per Go run (default 45, 3 epochs)
#   PY_MIN_TIME           seconds of timed epochs per Python run (default 8)
#   PYTHON                Python with torch/torchvision (default /usr/bin/python3)
#   OUT                   file that receives the raw results as JSON lines
#                         (default a temporary file, named at the end)
#
# Worker counts: gsrmt runs N worker goroutines with GOMAXPROCS=N; torchvision
# runs DataLoader(num_workers=N), N single-threaded worker processes (plus the
# main process, which only receives batches). For N=1 torchvision's
# num_workers=0 (everything in the one main process) is measured as well.
# "Per core" divides images/s by N. images/cpu-s divides by the CPU time the
# run used (all threads, and for torchvision the main process and its
# workers), which depends less on other load of the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-/usr/bin/python3}
WORKERS=${WORKERS:-1 2}
ROUNDS=${ROUNDS:-3}
GO_BATCHES=${GO_BATCHES:-45}
PY_MIN_TIME=${PY_MIN_TIME:-8}
export GSRMT_BENCH_JPEG_DIR=${GSRMT_BENCH_JPEG_DIR:-${TMPDIR:-/tmp}/gsrmt-bench-jpegs}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
OUT=${OUT:-$(mktemp "${TMPDIR:-/tmp}/datasets-bench.XXXXXX.jsonl")}
: >"$OUT"

echo "# generating / checking $GSRMT_BENCH_JPEG_DIR"
train=$(go run ./datasets/internal/benchjpeg/gen -out "$GSRMT_BENCH_JPEG_DIR")
echo "# building the datasets test binary"
go test -c -o "$tmp/datasets.test" ./datasets

for round in $(seq 1 "$ROUNDS"); do
	for w in $WORKERS; do
		load=$(cut -d' ' -f1 /proc/loadavg)
		line=$(GSRMT_BENCH_WORKERS=$w "$tmp/datasets.test" -test.run '^$' \
			-test.bench '^BenchmarkTrainLoader224$' -test.benchtime "${GO_BATCHES}x" -test.cpu 1 |
			grep '^BenchmarkTrainLoader224/')
		echo "round $round gsrmt       workers=$w: $line (load $load)"
		"$PYTHON" - "$round" "$w" "$load" "$line" >>"$OUT" <<'PY'
import json, sys
round_, w, load, line = sys.argv[1:]
f = line.split()
m = {f[i + 1]: float(f[i]) for i in range(2, len(f) - 1, 2)}
print(json.dumps({"side": "gsrmt", "round": int(round_), "workers": int(w), "load": float(load),
                  "images_per_s": m["images/s"], "images_per_cpu_s": m["images/cpu-s"]}))
PY
		pyws=$w
		if [ "$w" = 1 ]; then pyws="0,1"; fi
		load=$(cut -d' ' -f1 /proc/loadavg)
		"$PYTHON" bench/torchvision_pipeline.py "$train" --workers "$pyws" --min-time "$PY_MIN_TIME" \
			--min-epochs 2 --json >"$tmp/py.jsonl"
		"$PYTHON" - "$round" "$load" "$tmp/py.jsonl" >>"$OUT" <<'PY'
import json, sys
for l in open(sys.argv[3]):
    r = json.loads(l)
    r.update(side="torchvision", round=int(sys.argv[1]), load=float(sys.argv[2]))
    print(json.dumps(r))
    print("round %d torchvision workers=%d: %.1f images/s, %.1f images/cpu-s (load %s)"
          % (r["round"], r["workers"], r["images_per_s"], r["images_per_cpu_s"], sys.argv[2]), file=sys.stderr)
PY
	done
done

echo
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores;" \
	"$(go version | cut -d' ' -f3); $("$PYTHON" -c 'import torch, torchvision, PIL; print("torch", torch.__version__, "torchvision", torchvision.__version__, "Pillow", PIL.__version__)')"
echo "# raw results: $OUT"
"$PYTHON" - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ws = sorted({r["workers"] for r in rows if r["side"] == "gsrmt"})
nrounds = len({r["round"] for r in rows})
for title, stat in [("median", statistics.median), ("best", max)]:
    def get(side, w, key):
        v = [r[key] for r in rows if r["side"] == side and r["workers"] == w]
        return stat(v) if v else float("nan")
    print(f"\n{title} of {nrounds} rounds:\n")
    print("| workers | gsrmt images/s | torchvision images/s | gsrmt images/s/core | torchvision images/s/core | ratio per core | gsrmt images/cpu-s | torchvision images/cpu-s | ratio per CPU-s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in ws:
        pairs = [(str(w), w)]
        if w == 1:
            pairs.append(("1 vs num_workers=0", 0))
        for label, tw in pairs:
            g, t = get("gsrmt", w, "images_per_s"), get("torchvision", tw, "images_per_s")
            gc, tc = get("gsrmt", w, "images_per_cpu_s"), get("torchvision", tw, "images_per_cpu_s")
            cores = max(tw, 1)
            print(f"| {label} | {g:.0f} | {t:.0f} | {g / w:.0f} | {t / cores:.0f} | {(g / w) / (t / cores):.2f} | {gc:.0f} | {tc:.0f} | {gc / tc:.2f} |")
PY
