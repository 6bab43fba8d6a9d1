#!/usr/bin/env bash
# Runs `gsrmt-cli bench` and its PyTorch counterpart (bench/pytorch_bench.py) on the same configs,
# one after the other, and prints a table with the ratio gsrmt / PyTorch (time per step: lower is
# better, so a ratio below 1.0 means gsrmt is faster).
#
# Usage: bench/compare.sh [THREADS] [STEPS]      (from the repository root, after make build)
# Configs: the issue's CPU targets: nano and tiny at 32 px batch 64, nano at 224 px batch 8, each variant.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-2}
STEPS=${2:-10}
PY=${PYTHON:-/usr/bin/python3}
CLI=${CLI:-bin/gsrmt-cli}
[ -x "$CLI" ] || { echo "build first: make build" >&2; exit 1; }
printf '%-10s %-6s %5s %5s | %10s %10s %6s | %10s %10s %6s\n' variant preset px batch "go train" "py train" ratio "go eval" "py eval" ratio
for cfg in "nano 32 64" "tiny 32 64" "nano 224 8"; do
  set -- $cfg
  for v in swat retention rmt; do
    g=$("$CLI" bench --variant "$v" --preset "$1" --img-size "$2" --batch-size "$3" --threads "$THREADS" --steps "$STEPS" --device cpu --json)
    p=$("$PY" bench/pytorch_bench.py --variant "$v" --preset "$1" --img-size "$2" --batch-size "$3" --threads "$THREADS" --steps "$STEPS")
    "$PY" - "$v" "$1" "$2" "$3" "$g" "$p" <<'PY'
import json, sys
v, preset, px, b, g, p = sys.argv[1:]
g, p = json.loads(g), json.loads(p)
print("%-10s %-6s %5s %5s | %8.1fms %8.1fms %6.3f | %8.1fms %8.1fms %6.3f" % (
    v, preset, px, b, g["train_ms_per_step"], p["train_ms_per_step"], g["train_ms_per_step"] / p["train_ms_per_step"],
    g["eval_ms_per_step"], p["eval_ms_per_step"], g["eval_ms_per_step"] / p["eval_ms_per_step"]))
PY
  done
done
