#!/usr/bin/env bash
# device-check.sh: the GPU check of gsrmt, for a machine with an NVIDIA GPU and a CUDA PyTorch but
# possibly no Go toolchain and no network. It
#   1. takes Go, the Go modules and gotch's source from the bundle that scripts/make-device-bundle.sh
#      wrote (dist/gsrmt-device-bundle.tar.xz) when the machine has no Go 1.25+;
#   2. builds gsrmt against that PyTorch's libtorch (LIBTORCH_USE_PYTORCH=1 ./setup-libtorch.sh);
#   3. runs the unit tests that use CUDA (GSRMT_CUDA_TESTS=1: the shim's CUDA functions, the model's
#      forward and gradients on CUDA against the CPU, a CUDA training step with and without bf16
#      autocast, AdamW's foreach form);
#   4. prints the training and evaluation throughput of `paper` at 224 px, batch 64, for gsrmt and for
#      the PyTorch counterpart (bench/pytorch_bench.py) on the same GPU: fp32 with TF32 off, fp32 with
#      TF32, and bf16 autocast; one traced PyTorch bf16 step per variant; torch.compile of the
#      reference in TF32 and bf16, its compile time apart.
# Everything it prints also goes to $OUT/device-check.log (OUT defaults to ./device-check-out), with
# the benchmark rows in $OUT/device-bench.csv, the traces in $OUT/trace-VARIANT-bf16.json.gz and their
# summaries in $OUT/trace-summary.jsonl.
#
# Usage: scripts/device-check.sh [--bundle FILE] [--variants swat,retention,rmt] [--steps N] [--skip-tests]
#                                [--deadline SECONDS]  (start no further benchmark after that many seconds)
#        scripts/device-check.sh --cpu-dry-run   (rehearsal on a machine without a GPU: the default
#        libtorch of setup-libtorch.sh, CUDA tests skipped, nano at 32 px on the CPU in fp32 with
#        --tf32=false and --tf32 (no effect there), the trace in fp32, torch.compile only where that
#        PyTorch has it)
# Environment: PYTHON (default python3) is the Python with the CUDA PyTorch; CXX (default g++);
# COMPILE_NEED (default 240): the seconds before --deadline a torch.compile run needs to start.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
BUNDLE=$REPO/dist/gsrmt-device-bundle.tar.xz
VARIANTS=swat
STEPS=20
SKIP_TESTS=""
DRY=""
DEADLINE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --bundle) BUNDLE=$2; shift 2 ;;
        --variants) VARIANTS=$2; shift 2 ;;
        --steps) STEPS=$2; shift 2 ;;
        --skip-tests) SKIP_TESTS=1; shift ;;
        --deadline) DEADLINE=$2; shift 2 ;;
        --cpu-dry-run) DRY=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "device-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for n in "--steps:$STEPS" "--deadline:$DEADLINE"; do
    case "${n#*:}" in ''|*[!0-9]*) echo "device-check: ${n%%:*} ${n#*:}: want a whole number" >&2; exit 2 ;; esac
done
OUT=${OUT:-$REPO/device-check-out}
mkdir -p "$OUT"
LOG=$OUT/device-check.log
exec > >(tee -a "$LOG") 2>&1
T0=$(date +%s)
PY=${PYTHON:-python3}
WORK=${GSRMT_DEVICE_WORK:-$HOME/.cache/gsrmt-device}
mkdir -p "$WORK"
say() { printf '[device-check %4ds] %s\n' $(( $(date +%s) - T0 )) "$*"; }
die() { say "error: $*"; exit 1; }

# 0. The machine.
say "machine: $(uname -srm), $(nproc) CPUs"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/  GPU: /'
"$PY" -c 'import torch, sys; print("  PyTorch", torch.__version__, "CUDA", torch.version.cuda, "available:", torch.cuda.is_available()); sys.exit(0 if torch.cuda.is_available() or sys.argv[1] else 3)' "$DRY" ||
    die "'$PY' has no CUDA PyTorch with a visible GPU (set PYTHON=/path/to/python)"
command -v "${CXX:-g++}" >/dev/null || die "no C++ compiler '${CXX:-g++}': cgo and gotch need one (set CXX)"
say "C++ compiler: $("${CXX:-g++}" --version | head -1)"

# 1. Go, the modules and gotch: the machine's own Go when new enough, else the bundle.
need_minor=$(sed -n 's/^go 1\.\([0-9]*\).*/\1/p' go.mod)
have_go=""
if command -v go >/dev/null; then
    minor=$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
    [ -n "$minor" ] && [ "$minor" -ge "$need_minor" ] && have_go=1
fi
offline_modules=""
if [ -f "$BUNDLE" ]; then
    say "unpacking $BUNDLE ($(du -m "$BUNDLE" | cut -f1) MB) into $WORK"
    rm -rf "$WORK/bundle" && mkdir -p "$WORK/bundle"
    if command -v xz >/dev/null; then
        xz -dc "$BUNDLE" | tar -C "$WORK/bundle" -xf -
    else # no xz-utils: Python's lzma and tarfile
        "$PY" -c 'import sys, tarfile
t = tarfile.open(sys.argv[1], "r:xz")
kw = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
t.extractall(sys.argv[2], **kw)' "$BUNDLE" "$WORK/bundle" || die "cannot unpack $BUNDLE"
    fi
    offline_modules=1
elif [ -z "$have_go" ]; then
    die "no Go 1.$need_minor+ here and no bundle at $BUNDLE (make one with scripts/make-device-bundle.sh)"
fi
if [ -z "$have_go" ]; then
    export GOROOT=$WORK/bundle/go
    export PATH=$GOROOT/bin:$PATH
fi
export GOTOOLCHAIN=local GOCACHE=$WORK/gocache GOPATH=$WORK/gopath
if [ -n "$offline_modules" ]; then
    # The bundle's vendored packages, no network: build outside workspace mode with -mod=vendor.
    rm -rf vendor && cp -r "$WORK/bundle/vendor" vendor
    export GOFLAGS=-mod=vendor GOPROXY=off GOWORK=off GOTCH_SRC
    GOTCH_SRC=$(ls -d "$WORK"/bundle/gotch-v* | head -1)
fi
modsrc="the module proxy"; [ -n "${GOFLAGS:-}" ] && modsrc="vendor/ from the bundle"
say "Go: $(go env GOVERSION) ($(go env GOROOT)); modules: $modsrc"

# 2. Build against PyTorch's libtorch. A pip-installed CUDA PyTorch loads the CUDA libraries from
#    the nvidia-* wheels through its RUNPATH; the linker needs their folders as -rpath-link.
if [ -z "$DRY" ]; then
    nvlibs=$("$PY" - <<'PY'
import os
try:
    import nvidia
except ImportError:
    raise SystemExit(0)
dirs = set()
for base in nvidia.__path__:
    for root, _, files in os.walk(base):
        if any(".so" in f for f in files):
            dirs.add(root)
print(":".join(sorted(dirs)))
PY
)
    if [ -n "$nvlibs" ]; then
        export CGO_LDFLAGS="${CGO_LDFLAGS:--O2 -g} -Wl,-rpath-link,$nvlibs"
        say "CUDA libraries of the nvidia-* wheels: $(tr ':' '\n' <<<"$nvlibs" | wc -l) folders, given to the linker as -rpath-link"
    fi
fi
use_pytorch=1; [ -n "$DRY" ] && use_pytorch=""
say "setup-libtorch.sh${use_pytorch:+ with LIBTORCH_USE_PYTORCH=1} (compiles gotch's C++: a few minutes)"
LIBTORCH_USE_PYTORCH=$use_pytorch PYTHON=$PY GSRMT_CACHE=$WORK/cache GSRMT_SKIP_WARM=${offline_modules:+1} ./setup-libtorch.sh
if [ -n "$offline_modules" ]; then
    # setup-libtorch.sh pointed go.work at the prepared gotch; in vendor mode it takes gotch's place.
    prepared=$(sed -n 's/^replace github.com\/sugarme\/gotch [^ ]* => //p' go.work)
    [ -d "$prepared" ] || die "no prepared gotch found in go.work"
    rm -rf vendor/github.com/sugarme/gotch
    mkdir -p vendor/github.com/sugarme && cp -r "$prepared" vendor/github.com/sugarme/gotch
fi
go build -o bin/gsrmt-cli ./cli/...
bin/gsrmt-cli env

# 3. The tests that use CUDA.
if [ -z "$SKIP_TESTS" ]; then
    say "CUDA tests (log: $OUT/cuda-tests.log)"
    cuda_tests=1; [ -n "$DRY" ] && cuda_tests=""
    if GSRMT_CUDA_TESTS=$cuda_tests GSRMT_PYTHON=$PY go test -count=1 -v -run 'CUDA|Autocast|AdamW' ./internal/torch ./train ./tests \
        > "$OUT/cuda-tests.log" 2>&1; then
        grep -E '^(--- |ok|FAIL)' "$OUT/cuda-tests.log"
        say "CUDA tests passed"
    else
        grep -E '^(--- |ok|FAIL|panic)|_test.go:' "$OUT/cuda-tests.log" | head -60
        say "CUDA tests FAILED (see $OUT/cuda-tests.log)"
    fi
fi

# 3b. Data-parallel training on NCCL (issue 13): one rank, then one rank per GPU (at most 8), on a
#     small ImageFolder of PNGs written here (the device has no data set), nano at 32 px for the check
#     and paper at 224 px for images/s per GPU; the shim's CUDA path is what this exercises.
if bin/gsrmt-cli env --json | grep -q '"nccl"'; then
    ngpu=$("$PY" -c 'import torch; print(min(8, torch.cuda.device_count()))')
    data=$OUT/dist-data
    "$PY" - "$data" <<'PYDATA'
import os, struct, sys, zlib, random
def png(path, rgb):
    raw = b"".join(b"\x00" + bytes(rgb) * 224 for _ in range(224))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 224, 224, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))
random.seed(0)
for split, n in (("train", 256), ("test", 64)):
    for c, base in enumerate(((200, 40, 40), (40, 200, 40), (40, 40, 200))):
        d = os.path.join(sys.argv[1], split, "c%d" % c)
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            png(os.path.join(d, "%d.png" % i), [min(255, v + random.randint(0, 40)) for v in base])
PYDATA
    for n in 1 "$ngpu"; do
        nproc=(); [ "$n" -gt 1 ] && nproc=(--nproc "$n")
        for cfg in "nano 32 64" "paper 224 $((64 * n))"; do
            set -- $cfg
            say "NCCL: $n rank(s), $1 at $2 px, global batch $3"
            bin/gsrmt-cli train "${nproc[@]}" --device cuda --amp --dataset imagefolder --data-dir "$data" \
                --preset "$1" --img-size "$2" --batch-size "$3" --epochs 1 --mixup 0 --cutmix 0 \
                --out "$OUT/dist-$n-$1" --overwrite --json 2>>"$OUT/dist.log" | tee -a "$OUT/dist.jsonl" ||
                say "NCCL run failed (see $OUT/dist.log)"
        done
        [ "$ngpu" -gt 1 ] || break
    done
else
    say "distributed: this build has no NCCL backend (gsrmt-cli env); skipping the NCCL runs"
fi

# 4. Throughput: paper, 224 px, batch 64, gsrmt against PyTorch (bench/pytorch_bench.py) on the same GPU,
#    in three precisions: fp32 with TF32 off (--tf32=false), fp32 with TF32 (--tf32, timm's default on
#    CUDA) and bf16 autocast (--amp). Each gsrmt run is followed at once by its PyTorch run, so each
#    go/py ratio is a paired one. Then, per variant, one traced PyTorch bf16 step (--trace: the Chrome
#    trace gzipped and the summary line in $OUT), and torch.compile of the reference in tf32 and bf16
#    against the same gsrmt runs, with the compile time apart. With --deadline, no run starts past it
#    and a running one is stopped 60 s after it; a compile run starts only with COMPILE_NEED seconds
#    (default 240) left.
preset=paper px=224 batch=64 device=cuda precisions=(fp32 tf32 bf16) traced=bf16 compiled=(tf32 bf16)
[ -n "$DRY" ] && preset=nano px=32 batch=16 device=cpu precisions=(fp32 tf32) traced=fp32  # no autocast on the CPU
COMPILE_NEED=${COMPILE_NEED:-240}
prec_args() { case $1 in fp32) echo --tf32=false ;; tf32) echo --tf32 ;; bf16) echo --amp ;; esac; }
left() { echo $(( DEADLINE - ( $(date +%s) - T0 ) )); }   # seconds to the deadline
past_deadline() { [ "$DEADLINE" -gt 0 ] && [ "$(left)" -le 0 ]; }
limited() {   # runs "$@", stopped 60 s past the deadline when there is one
    if [ "$DEADLINE" -gt 0 ]; then timeout -k 10 $(( $(left) + 60 )) "$@"; else "$@"; fi
}
ROW_PY=$(cat <<'PY'
import json, math, sys
kind, v, prec, csv = sys.argv[1:5]
rows = [json.loads(r.strip().splitlines()[-1]) if r.strip() else {} for r in sys.argv[5:]]
nan = float("nan")
val = lambda r, k: r.get(k, nan)
div = lambda a, b: a / b if b == b and b else nan
fmt = lambda x: "%8.1fms" % x if x == x else "%10s" % "-"
if kind == "eager":  # gsrmt, pytorch
    g, p = rows
    print("%-10s %-5s | %s %s %6.3f | %s %s %6.3f | %7.0f %7.0f" % (
        v, prec, fmt(val(g, "train_ms_per_step")), fmt(val(p, "train_ms_per_step")),
        div(val(g, "train_ms_per_step"), val(p, "train_ms_per_step")),
        fmt(val(g, "eval_ms_per_step")), fmt(val(p, "eval_ms_per_step")),
        div(val(g, "eval_ms_per_step"), val(p, "eval_ms_per_step")),
        g.get("peak_device_mb", 0), p.get("peak_device_mb", nan)))
    impls = (("gsrmt", g), ("pytorch", p))
else:  # gsrmt, pytorch eager, pytorch compiled
    g, p, c = rows
    print("%-10s %-5s | %s %s %6.3f %6.3f | %s %s %6.3f %6.3f | %8.1f" % (
        v, prec, fmt(val(g, "train_ms_per_step")), fmt(val(c, "train_ms_per_step")),
        div(val(g, "train_ms_per_step"), val(c, "train_ms_per_step")),
        div(val(p, "train_ms_per_step"), val(c, "train_ms_per_step")),
        fmt(val(g, "eval_ms_per_step")), fmt(val(c, "eval_ms_per_step")),
        div(val(g, "eval_ms_per_step"), val(c, "eval_ms_per_step")),
        div(val(p, "eval_ms_per_step"), val(c, "eval_ms_per_step")), val(c, "compile_s")))
    impls = (("pytorch-compile", c),)
with open(csv, "a") as f:
    for impl, r in impls:
        if r:
            f.write("%s,%s,%s,%.2f,%.1f,%.2f,%.1f,%.0f,%s,%s,%s\n" % (impl, v, prec, r["train_ms_per_step"],
                    r["train_images_per_s"], r["eval_ms_per_step"], r["eval_images_per_s"], r.get("peak_device_mb", 0),
                    "%.1f" % r["compile_s"] if "compile_s" in r else "", r.get("tf32", ""), r.get("cudnn_benchmark", "")))
PY
)
say "benchmarks: $preset $px px batch $batch on $device, $STEPS steps after 5 warm-up; precisions ${precisions[*]}"
printf 'impl,variant,precision,train_ms_per_step,train_images_per_s,eval_ms_per_step,eval_images_per_s,peak_device_mb,compile_s,tf32,cudnn_benchmark\n' > "$OUT/device-bench.csv"
declare -A GO PYE   # "variant:precision" -> the run's JSON line
printf '%-10s %-5s | %10s %10s %6s | %10s %10s %6s | %7s %7s\n' variant prec "go train" "py train" go/py "go eval" "py eval" go/py "go MB" "py MB"
for v in ${VARIANTS//,/ }; do
    for prec in "${precisions[@]}"; do
        if past_deadline; then say "skipping $v $prec: past --deadline $DEADLINE s"; continue; fi
        args=(--variant "$v" --preset "$preset" --img-size "$px" --batch-size "$batch" --steps "$STEPS" --warmup 5 --device "$device" $(prec_args "$prec"))
        g=$(limited bin/gsrmt-cli bench "${args[@]}" --json) || { say "gsrmt bench $v $prec failed"; continue; }
        p=$(limited "$PY" bench/pytorch_bench.py "${args[@]}") || { say "PyTorch bench $v $prec failed"; p=''; }
        GO[$v:$prec]=$g PYE[$v:$prec]=$p
        "$PY" -c "$ROW_PY" eager "$v" "$prec" "$OUT/device-bench.csv" "$g" "$p" || say "gsrmt/PyTorch $v $prec: unreadable results"
    done
done
# One traced PyTorch step per variant: where the time of a step goes on the device.
for v in ${VARIANTS//,/ }; do
    if past_deadline; then say "skipping the trace of $v: past --deadline $DEADLINE s"; continue; fi
    tr=$OUT/trace-$v-$traced.json
    out=$(limited "$PY" bench/pytorch_bench.py --variant "$v" --preset "$preset" --img-size "$px" --batch-size "$batch" \
        --steps 1 --warmup 5 --device "$device" $(prec_args "$traced") --trace "$tr") || { say "PyTorch trace $v failed"; continue; }
    summary=$(grep '^{"trace_summary"' <<<"$out" || true)
    [ -n "$summary" ] && [ -f "$tr" ] || { say "PyTorch trace $v: no trace or summary line"; continue; }
    printf '%s\n' "$summary" >> "$OUT/trace-summary.jsonl"
    gzip -f "$tr"
    say "trace of PyTorch $v $traced: $tr.gz (chrome://tracing, ui.perfetto.dev); summary in $OUT/trace-summary.jsonl"
    "$PY" -c 'import json, sys
s = json.loads(sys.argv[1])["trace_summary"]
for name, t in s["steps"].items():
    dev = "device %.1f ms (%.0f %% busy), %d kernels" % (t["device_ms"], t["device_busy_pct"], t["kernels"]) if t["device_ms"] is not None else "no device"
    print("  %-5s wall %.1f ms, CPU enqueue %.1f ms, %s, %d aten ops; top: %s" % (name, t["wall_ms"], t["cpu_enqueue_ms"], dev,
          t["aten_ops"], "; ".join("%s %.2f ms x%d" % (k["name"][:48], k["ms"], k["calls"]) for k in t["top"][:3])))' \
        "$summary" || say "PyTorch trace $v: unreadable summary line"
done
# torch.compile of the reference, against the same gsrmt runs (go/comp) and eager PyTorch (eager/comp).
if ! "$PY" -c 'import sys, torch; sys.exit(0 if hasattr(torch, "compile") else 1)'; then
    say "torch.compile: PyTorch $("$PY" -c 'import torch; print(torch.__version__)') has none; skipping the compiled rows"
    compiled=()
fi
[ "${#compiled[@]}" -gt 0 ] &&
    printf '%-10s %-5s | %10s %10s %6s %6s | %10s %10s %6s %6s | %8s\n' variant prec "go train" "comp train" go/comp eager/comp "go eval" "comp eval" go/comp eager/comp "compile s"
for v in ${VARIANTS//,/ }; do
    for prec in ${compiled[@]+"${compiled[@]}"}; do
        if [ "$DEADLINE" -gt 0 ] && [ "$(left)" -lt "$COMPILE_NEED" ]; then
            say "skipping torch.compile $v $prec: fewer than COMPILE_NEED=$COMPILE_NEED s left before --deadline $DEADLINE s"; continue
        fi
        [ -n "${GO[$v:$prec]:-}" ] || { say "skipping torch.compile $v $prec: no gsrmt run to compare with"; continue; }
        c=$(limited "$PY" bench/pytorch_bench.py --variant "$v" --preset "$preset" --img-size "$px" --batch-size "$batch" \
            --steps "$STEPS" --warmup 5 --device "$device" $(prec_args "$prec") --compile) || { say "torch.compile bench $v $prec failed"; continue; }
        "$PY" -c "$ROW_PY" compile "$v" "$prec" "$OUT/device-bench.csv" "${GO[$v:$prec]}" "${PYE[$v:$prec]:-}" "$c" ||
            say "torch.compile $v $prec: unreadable results"
    done
done
say "done; log in $LOG, table in $OUT/device-bench.csv"
