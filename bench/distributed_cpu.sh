#!/usr/bin/env bash
# Data-parallel training on the CPU: 2 ranks x 1 thread (gsrmt-cli train --nproc 2) against one process
# x 2 threads, on the same data, interleaved in rounds (the host is shared and noisy), nano at 32 px.
# Prints each round's seconds per epoch (the training steps, from metrics.csv), the paired ratio, and
# the share of rank 0's step time spent in collectives.
#
# Usage: bench/distributed_cpu.sh [DATA_DIR] [ROUNDS] [IMAGES]
#   DATA_DIR  an ImageFolder with train/ and test/ (default ../shared/data/cifar10, CIFAR-10's JPEGs)
#   ROUNDS    interleaved rounds (default 3); IMAGES: training images per epoch (default 4096)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/cifar10}
ROUNDS=${2:-3}
IMAGES=${3:-4096}
[ -d "$DATA/train" ] || { echo "distributed_cpu.sh: $DATA has no train/ folder (an ImageFolder)" >&2; exit 2; }
go build -o bin/gsrmt-cli ./cli/
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(train --dataset imagefolder --data-dir "$DATA" --img-size 32 --variant swat --preset nano --epochs 1
    --batch-size 64 --lr 1e-3 --warmup-epochs 0 --mixup 0 --cutmix 0 --limit-train "$IMAGES" --limit-eval 512
    --workers 1)
epoch_seconds() { awk -F, 'NR==2 {print $9}' "$1/metrics.csv"; }
printf '%-6s %-22s %-22s %-8s %s\n' round "1 proc x 2 threads (s)" "2 ranks x 1 thread (s)" ratio "collectives (rank 0)"
for r in $(seq 1 "$ROUNDS"); do
    bin/gsrmt-cli "${common[@]}" --threads 2 --out "$work/single-$r" >/dev/null 2>&1
    bin/gsrmt-cli "${common[@]}" --nproc 2 --out "$work/dist-$r" >/dev/null 2>"$work/dist-$r.log"
    a=$(epoch_seconds "$work/single-$r") b=$(epoch_seconds "$work/dist-$r")
    share=$(grep -o 'in collectives ([0-9]* %)' "$work/dist-$r.log" | head -1 | grep -o '[0-9]* %' || echo "?")
    printf '%-6s %-22s %-22s %-8s %s\n' "$r" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b/a}')" "$share"
done
