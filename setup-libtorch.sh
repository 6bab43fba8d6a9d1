#!/usr/bin/env bash
# setup-libtorch.sh: prepare libtorch and gotch so that `go build ./...`, `go test ./...`
# and bin/gsrmt-cli work in this repository with nothing exported by hand.
#
# Safe to re-run: a second run with nothing changed only checks and finishes in seconds.
#
# Which libtorch (the first that applies):
#   LIBTORCH=DIR              an unpacked official libtorch, or a PyTorch install's torch/ folder
#   LIBTORCH_USE_PYTORCH=1    the libtorch inside `python3 -c "import torch"` (PYTHON=... to pick one)
#   CUDA_VER=cpu|11.8|12.1    the official libtorch 2.1.0 zip for that CUDA version, when reachable
#   otherwise                 Debian's libtorch-dev (CPU), installed with apt-get if missing
#
# Other settings: GSRMT_CACHE (default ~/.cache/gsrmt) holds the downloaded libtorch and the
# prepared gotch copies; CXX (default g++); GSRMT_SKIP_WARM=1 skips the final `go build ./...`
# that compiles gotch's C++ once (about 2.5 minutes on 2 cores) so later builds are fast;
# GOTCH_SRC=DIR takes gotch's pristine source from DIR instead of the Go module cache (the offline
# bundle of scripts/device-check.sh).
#
# internal/dist (torch.distributed's c10d) gets its own generated flags: Gloo when gloo's headers
# are found (Debian: libgloo-dev), NCCL when the libtorch has CUDA and nccl.h and the CUDA runtime
# headers are found (CUDA_HOME, NCCL_INCLUDE=DIR to point at them); a probe compile decides.
set -euo pipefail

GOTCH_VERSION=v0.9.1
GOTCH_MODULE=github.com/sugarme/gotch
LIBTORCH_ZIP_VERSION=2.1.0
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${GSRMT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gsrmt}
CXX=${CXX:-g++}
T0=$(date +%s)

say() { printf 'setup-libtorch: %s\n' "$*" >&2; }
die() { printf 'setup-libtorch: error: %s\n' "$*" >&2; exit 1; }

cd "$REPO"
command -v go >/dev/null || die "no Go toolchain on PATH (install Go 1.22+ from the Go project, or Debian's golang-go on a new enough release)"
command -v "$CXX" >/dev/null || die "no C++ compiler '$CXX' (apt-get install g++, or set CXX)"
mkdir -p "$CACHE"

# ---------------------------------------------------------------------------------------------
# 1. Find a libtorch. Each candidate sets ROOT (recorded), INC (include folder), LIB (lib folder).
# ---------------------------------------------------------------------------------------------
ROOT="" INC="" LIB="" SOURCE=""

use_dir() { # a folder with include/ and lib/: official libtorch or PyTorch's torch/
    local dir=$1 what=$2
    [ -f "$dir/include/torch/csrc/api/include/torch/version.h" ] ||
        die "$what=$dir has no include/torch/csrc/api/include/torch/version.h: point it at an unpacked libtorch (the folder holding include/ and lib/)"
    [ -e "$dir/lib/libtorch.so" ] || [ -e "$dir/lib/libtorch_cpu.so" ] ||
        die "$what=$dir has no lib/libtorch.so: point it at an unpacked libtorch (the folder holding include/ and lib/)"
    ROOT=$(cd "$dir" && pwd) INC="$ROOT/include" LIB="$ROOT/lib"
}

if [ -n "${LIBTORCH:-}" ]; then
    say "step 1: libtorch from LIBTORCH=$LIBTORCH"
    use_dir "$LIBTORCH" LIBTORCH
    SOURCE="LIBTORCH"
elif [ "${LIBTORCH_USE_PYTORCH:-}" = 1 ]; then
    PY=${PYTHON:-python3}
    say "step 1: libtorch from the PyTorch of '$PY' (LIBTORCH_USE_PYTORCH=1)"
    dir=$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null) ||
        die "LIBTORCH_USE_PYTORCH=1 but '$PY' cannot import torch (set PYTHON=/path/to/python, or unset LIBTORCH_USE_PYTORCH)"
    use_dir "$dir" "PyTorch's torch folder"
    SOURCE="PyTorch ($PY)"
else
    zip_tried=""
    if [ -n "${CUDA_VER:-}" ]; then
        case "$CUDA_VER" in
            cpu) flavour=cpu ;; 11.8) flavour=cu118 ;; 12.1) flavour=cu121 ;;
            *) die "CUDA_VER=$CUDA_VER: accepted values are cpu, 11.8, 12.1" ;;
        esac
        dest="$CACHE/libtorch-$LIBTORCH_ZIP_VERSION-$flavour"
        if [ -f "$dest/libtorch/include/torch/csrc/api/include/torch/version.h" ]; then
            say "step 1: official libtorch $LIBTORCH_ZIP_VERSION ($flavour), already downloaded in $dest"
        else
            url="https://download.pytorch.org/libtorch/$flavour/libtorch-cxx11-abi-shared-with-deps-$LIBTORCH_ZIP_VERSION%2B$flavour.zip"
            say "step 1: downloading the official libtorch $LIBTORCH_ZIP_VERSION ($flavour) from $url"
            zip_tried=1
            command -v unzip >/dev/null || die "unzip is needed to unpack libtorch (apt-get install unzip)"
            if curl -fL --connect-timeout 10 --retry 2 -C - -o "$dest.zip.part" "$url"; then
                rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
                unzip -q "$dest.zip.part" -d "$dest.tmp" || die "cannot unpack $dest.zip.part (delete it and re-run)"
                rm -rf "$dest" && mv "$dest.tmp" "$dest" && rm -f "$dest.zip.part"
            else
                say "the download is not reachable from this machine; falling back to Debian's libtorch-dev (CPU)"
                [ "$flavour" = cpu ] || die "CUDA_VER=$CUDA_VER asked for a CUDA libtorch and none could be downloaded: use LIBTORCH=DIR or LIBTORCH_USE_PYTORCH=1 with a CUDA PyTorch"
            fi
        fi
        if [ -f "$dest/libtorch/include/torch/csrc/api/include/torch/version.h" ]; then
            use_dir "$dest/libtorch" "the downloaded libtorch"
            SOURCE="official libtorch $LIBTORCH_ZIP_VERSION zip ($flavour)"
        fi
    fi
    if [ -z "$ROOT" ]; then
        [ -n "$zip_tried" ] || say "step 1: no LIBTORCH, LIBTORCH_USE_PYTORCH or CUDA_VER given: using Debian's libtorch-dev (CPU)"
        if [ ! -f /usr/include/torch/csrc/api/include/torch/version.h ]; then
            command -v apt-get >/dev/null || die "no libtorch found and no apt-get to install Debian's libtorch-dev: set LIBTORCH=DIR"
            sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
            say "installing libtorch-dev with apt-get"
            $sudo apt-get update -qq
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q libtorch-dev >&2
        fi
        multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
        ROOT=/usr INC=/usr/include LIB="/usr/lib/$multiarch"
        [ -e "$LIB/libtorch.so" ] || die "Debian's libtorch-dev is installed but $LIB/libtorch.so is missing"
        SOURCE="Debian libtorch-dev"
    fi
fi

VERSION_H="$INC/torch/csrc/api/include/torch/version.h"
[ -f "$VERSION_H" ] || die "no $VERSION_H: $ROOT does not look like a libtorch"
# The version as the compiler sees it: torch/version.h held the numbers up to libtorch 2.x;
# newer ones define them in headers it includes. The preprocessor follows whatever it does.
TORCH_VERSION=$(printf '#include <torch/version.h>\nTORCH_VERSION_MAJOR.TORCH_VERSION_MINOR.TORCH_VERSION_PATCH\n' |
    "$CXX" -E -P -x c++ -I"$INC" -I"$INC/torch/csrc/api/include" - 2>/dev/null | tr -d ' ' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' | tail -1 || true)
if [ -z "$TORCH_VERSION" ]; then
    ver() { sed -n "s/^#define TORCH_VERSION_$1 \([0-9]*\).*/\1/p" "$VERSION_H"; }
    TORCH_VERSION="$(ver MAJOR).$(ver MINOR).$(ver PATCH)"
fi
[ "$TORCH_VERSION" != ".." ] || die "cannot read the version from $VERSION_H (neither $CXX -E nor the #define lines give TORCH_VERSION_MAJOR/MINOR/PATCH)"
case "$TORCH_VERSION" in 1.1[3-9].*|[2-9].*) ;; *) die "libtorch $TORCH_VERSION at $ROOT is too old: gsrmt needs 1.13 or newer" ;; esac

CUDA=false
if [ -e "$LIB/libtorch_cuda.so" ]; then CUDA=true; fi
# _GLIBCXX_USE_CXX11_ABI: libraries built with the new ABI export std::__cxx11 symbols.
ABI=0
cxx11_symbols=$(nm -D --defined-only "$LIB/libc10.so" 2>/dev/null | grep -c '__cxx11' || true)
if [ "${cxx11_symbols:-0}" -gt 0 ]; then ABI=1; fi
# The C++ standard: libtorch 2.14 and newer refuse anything before C++20 (an #error on
# __cplusplus < 202002L in ATen/ATen.h and torch/all.h); older ones build as C++17.
CXXSTD=c++17
if grep -qs '202002L' "$INC/ATen/ATen.h" "$INC/torch/csrc/api/include/torch/all.h"; then CXXSTD=c++20; fi
say "chose: $SOURCE: libtorch $TORCH_VERSION at $ROOT (lib $LIB), CUDA: $CUDA, _GLIBCXX_USE_CXX11_ABI=$ABI, -std=$CXXSTD"

# ---------------------------------------------------------------------------------------------
# 2. Prepare gotch for this libtorch in the cache (keyed by gotch version, libtorch version,
#    CPU/CUDA and the libtorch's location), unless an identical preparation is there already.
# ---------------------------------------------------------------------------------------------
flavour=cpu; [ "$CUDA" = true ] && flavour=cuda
pathkey=$(printf '%s' "$LIB" | cksum | cut -d' ' -f1)
PREPARED="$CACHE/gotch-$GOTCH_VERSION-libtorch$TORCH_VERSION-$flavour-$pathkey"
# The stamp changes when the preparing tool or these inputs change.
stamp=$(cat "$REPO"/tools/gotchprep/*.go "$VERSION_H" <(printf '%s|%s|%s|%s|%s|%s' "$ROOT" "$LIB" "$ABI" "$CUDA" "$CXX" "$CXXSTD") | cksum | cut -d' ' -f1)

if [ -f "$PREPARED/.gsrmt-stamp" ] && [ "$(cat "$PREPARED/.gsrmt-stamp")" = "$stamp" ]; then
    say "step 2: gotch $GOTCH_VERSION is already prepared for this libtorch in $PREPARED"
else
    say "step 2: preparing gotch $GOTCH_VERSION for libtorch $TORCH_VERSION in $PREPARED"
    src=${GOTCH_SRC:-}
    if [ -n "$src" ]; then
        [ -f "$src/libtch/torch_api.cpp" ] || die "GOTCH_SRC=$src does not hold gotch's source (no libtch/torch_api.cpp)"
    else
        src=$(GOWORK=off go list -m -f '{{.Dir}}' "$GOTCH_MODULE" 2>/dev/null || true)
    fi
    if [ -z "$src" ] || [ ! -d "$src" ]; then
        say "fetching $GOTCH_MODULE@$GOTCH_VERSION into the Go module cache"
        GOWORK=off go mod download "$GOTCH_MODULE@$GOTCH_VERSION"
        src=$(GOWORK=off go list -m -f '{{.Dir}}' "$GOTCH_MODULE")
    fi
    say "copying $src, writing libtch/lib.go, fixing the C.malloc(0) leak, and compiling torch_api.cpp"
    say "with -fsyntax-only to find the wrappers this libtorch cannot compile (about 20 s a round)"
    GOWORK=off go run ./tools/gotchprep -src "$src" -dst "$PREPARED" -gotch-version "$GOTCH_VERSION" \
        -libtorch-root "$ROOT" -libtorch-include "$INC" -libtorch-lib "$LIB" \
        -libtorch-version "$TORCH_VERSION" -libtorch-source "$SOURCE" -cuda="$CUDA" -abi "$ABI" -cxx "$CXX" -cxx-std "$CXXSTD" |
        sed 's/^/setup-libtorch:   /' >&2
    [ "${PIPESTATUS[0]}" = 0 ] || die "preparing gotch failed (see above)"
    echo "$stamp" > "$PREPARED/.gsrmt-stamp"
fi

# ---------------------------------------------------------------------------------------------
# 3. Point this checkout's build at the prepared copy: a generated, git-ignored go.work that
#    replaces gotch, and cgo flags for internal/torch. The linker flags carry an rpath to the
#    libtorch folder, so binaries and tests run without LD_LIBRARY_PATH.
# ---------------------------------------------------------------------------------------------
gover=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
gowork=$(printf 'go %s\n\nuse .\n\n// Generated by setup-libtorch.sh: gotch prepared for libtorch %s (%s).\nreplace %s %s => %s\n' \
    "$gover" "$TORCH_VERSION" "$SOURCE" "$GOTCH_MODULE" "$GOTCH_VERSION" "$PREPARED")
if [ ! -f go.work ] || [ "$(cat go.work)" != "$gowork" ]; then
    printf '%s\n' "$gowork" > go.work
    rm -f go.work.sum
    say "step 3: wrote go.work (replace $GOTCH_MODULE => $PREPARED)"
else
    say "step 3: go.work already points at $PREPARED"
fi

incflags="-I$INC/torch/csrc/api/include"
[ "$INC" = /usr/include ] || incflags="-I$INC $incflags"
cudalibs=""; [ "$CUDA" = true ] && cudalibs=" -ltorch_cuda -lc10_cuda"
flagsgo=$(cat <<EOF
// Code generated by setup-libtorch.sh for libtorch $TORCH_VERSION ($SOURCE). DO NOT EDIT.

package torch

// #cgo CPPFLAGS: -D_GLIBCXX_USE_CXX11_ABI=$ABI $incflags
// #cgo CXXFLAGS: -std=$CXXSTD -O2
// #cgo LDFLAGS: -L$LIB -Wl,-rpath,$LIB -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10$cudalibs -Wl,--as-needed -lstdc++
import "C"

// preparedBySetupLibtorch is referenced by torch.go: a build without this file
// fails on it, which means ./setup-libtorch.sh has not been run in this checkout.
const preparedBySetupLibtorch = true
EOF
)
if [ ! -f internal/torch/zz_cgo_flags.go ] || [ "$(cat internal/torch/zz_cgo_flags.go)" != "$flagsgo" ]; then
    printf '%s\n' "$flagsgo" > internal/torch/zz_cgo_flags.go
    say "step 3: wrote internal/torch/zz_cgo_flags.go"
fi

# internal/dist (c10d through a C++ shim): libtorch's ProcessGroupGloo.hpp and ProcessGroupNCCL.hpp
# are empty unless USE_C10D_GLOO / USE_C10D_NCCL are defined, and need gloo's headers (Debian:
# libgloo-dev) and, for NCCL, nccl.h and the CUDA runtime headers. Each backend is compiled in only
# when the shim compiles and links with it (a probe, remembered in the generated file), so a
# machine without them still builds, with fewer backends (dist.Available() lists them).
if [ -f internal/dist/shim.cpp ]; then
    distcpp="-D_GLIBCXX_USE_CXX11_ABI=$ABI $incflags"
    gloo_found=""
    for d in "$INC" /usr/include /usr/local/include; do
        if [ -f "$d/gloo/algorithm.h" ]; then
            gloo_found=$d
            break
        fi
    done
    glooflags=""
    if [ -n "$gloo_found" ]; then
        glooflags="-DUSE_C10D_GLOO"
        case "$gloo_found" in "$INC" | /usr/include) ;; *) glooflags="$glooflags -I$gloo_found" ;; esac
    fi
    ncclflags=""
    if [ "$CUDA" = true ]; then
        cuda_inc="" nccl_inc=""
        for d in "${CUDA_HOME:+$CUDA_HOME/include}" "${CUDA_PATH:+$CUDA_PATH/include}" /usr/local/cuda/include \
            "$ROOT/../nvidia/cuda_runtime/include" /usr/include; do
            if [ -n "$d" ] && [ -f "$d/cuda_runtime_api.h" ]; then cuda_inc=$(cd "$d" && pwd); break; fi
        done
        for d in "${NCCL_INCLUDE:-}" "$INC" "$cuda_inc" "$ROOT/../nvidia/nccl/include" /usr/include /usr/local/include; do
            if [ -n "$d" ] && [ -f "$d/nccl.h" ]; then nccl_inc=$(cd "$d" && pwd); break; fi
        done
        if [ -n "$cuda_inc" ] && [ -n "$nccl_inc" ]; then
            ncclflags="-DUSE_C10D_NCCL"
            [ "$cuda_inc" = /usr/include ] || ncclflags="$ncclflags -I$cuda_inc"
            [ "$nccl_inc" = /usr/include ] || [ "$nccl_inc" = "$cuda_inc" ] || ncclflags="$ncclflags -I$nccl_inc"
        else
            say "step 3: CUDA libtorch but no $([ -n "$cuda_inc" ] || printf 'cuda_runtime_api.h ')$([ -n "$nccl_inc" ] || printf 'nccl.h ')found: internal/dist is built without NCCL (set CUDA_HOME, or NCCL_INCLUDE to the folder of nccl.h)"
        fi
    fi
    distlibs="-L$LIB -Wl,-rpath,$LIB -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10$cudalibs -Wl,--as-needed -lstdc++"
    # The probe compiles and links the shim with a set of defines; the key says what was probed.
    probe_key() { cat internal/dist/shim.cpp internal/dist/shim.h <(printf '%s|%s|%s|%s|%s' "$distcpp" "$1" "$CXXSTD" "$distlibs" "$CXX") | cksum | cut -d' ' -f1; }
    probe() { # $1: extra defines; prints nothing, returns the compiler's status
        local tmp rc
        tmp=$(mktemp -d)
        # shellcheck disable=SC2086
        "$CXX" -std="$CXXSTD" -O0 -fPIC -shared $distcpp $1 internal/dist/shim.cpp -o "$tmp/probe.so" \
            -Wl,--no-undefined $distlibs >"$tmp/log" 2>&1
        rc=$?
        [ $rc = 0 ] || { say "  the probe failed; its last lines:"; tail -n 8 "$tmp/log" | sed 's/^/setup-libtorch:     /' >&2; }
        rm -rf "$tmp"
        return $rc
    }
    old_dist=""
    [ -f internal/dist/zz_cgo_flags.go ] && old_dist=$(cat internal/dist/zz_cgo_flags.go)
    chosen="" chosen_key=""
    candidates=()
    [ -n "$glooflags" ] && [ -n "$ncclflags" ] && candidates+=("$glooflags $ncclflags")
    [ -n "$ncclflags" ] && candidates+=("$ncclflags")
    [ -n "$glooflags" ] && candidates+=("$glooflags")
    for defs in "${candidates[@]}"; do
        key=$(probe_key "$defs")
        if grep -qx "// probe: $key ok" <<<"$old_dist"; then
            chosen=$defs chosen_key=$key
            break
        fi
    done
    failed_keys=""
    if [ -z "$chosen_key" ]; then
        for defs in "${candidates[@]}"; do
            key=$(probe_key "$defs")
            if grep -qx "// probe: $key failed" <<<"$old_dist"; then
                say "step 3: the internal/dist shim did not build with $defs last time (inputs unchanged): skipped"
                failed_keys="$failed_keys// probe: $key failed
"
                continue
            fi
            say "step 3: probing the internal/dist shim with $defs (about 30 s)"
            if probe "$defs"; then
                chosen=$defs chosen_key=$key
                break
            fi
            failed_keys="$failed_keys// probe: $key failed
"
        done
    fi
    backends=""
    case "$chosen" in *USE_C10D_GLOO*) backends="gloo" ;; esac
    case "$chosen" in *USE_C10D_NCCL*) backends="${backends:+$backends, }nccl" ;; esac
    if [ -z "$gloo_found" ]; then
        say "step 3: no gloo headers (gloo/algorithm.h) found: internal/dist is built without Gloo; install libgloo-dev (scripts/install-deps.sh) and re-run"
    fi
    [ -n "$backends" ] || say "step 3: warning: internal/dist has no backend in this build: gsrmt runs single-process only"
    distgo=$(cat <<EOF
// Code generated by setup-libtorch.sh for libtorch $TORCH_VERSION ($SOURCE). DO NOT EDIT.
// Backends of internal/dist: ${backends:-none}.
${failed_keys}${chosen_key:+// probe: $chosen_key ok
}
package dist

// #cgo CPPFLAGS: $distcpp${chosen:+ $chosen}
// #cgo CXXFLAGS: -std=$CXXSTD -O2
// #cgo LDFLAGS: $distlibs
import "C"

// distPreparedBySetupLibtorch is referenced by dist.go: a build without this
// file fails on it, which means ./setup-libtorch.sh has not been run here.
const distPreparedBySetupLibtorch = true
EOF
)
    if [ "$old_dist" != "$distgo" ]; then
        printf '%s\n' "$distgo" > internal/dist/zz_cgo_flags.go
        say "step 3: wrote internal/dist/zz_cgo_flags.go (backends: ${backends:-none})"
    fi
fi

# ---------------------------------------------------------------------------------------------
# 4. Compile once, so the first `go test` does not spend minutes in gotch's C++.
# ---------------------------------------------------------------------------------------------
if [ "${GSRMT_SKIP_WARM:-}" != 1 ]; then
    say "step 4: building gotch and internal/torch (compiles gotch's C++ the first time: a few minutes; cached afterwards)"
    warm=(./internal/torch)
    [ -f internal/dist/zz_cgo_flags.go ] && warm+=(./internal/dist)
    go build "$GOTCH_MODULE/ts" "${warm[@]}" || die "building gotch, ${warm[*]} failed with the prepared gotch (see above)"
fi
say "done in $(( $(date +%s) - T0 )) s: libtorch $TORCH_VERSION ($SOURCE), gotch prepared in $PREPARED"
