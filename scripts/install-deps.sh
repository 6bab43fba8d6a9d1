#!/usr/bin/env bash
# Installs, with apt-get, the Debian packages that gsrmt's build, demo and tests use, when missing:
#   g++ make binutils unzip curl ca-certificates: setup-libtorch.sh and cgo
#   libtorch-dev: the CPU libtorch (setup-libtorch.sh also installs it on demand)
#   libgloo-dev: gloo's headers, for internal/dist's Gloo backend (torch.distributed on CPU)
#   libopenblas0-openmp: OpenBLAS for libtorch's matrix products; without it Debian's libtorch calls
#     Netlib's reference BLAS and a training step takes 2-4x as long (OpenMP build: libtorch's threading)
#   libjpeg62-turbo-dev: fast JPEG decoding in package datasets
#   dataset-fashion-mnist: real data for the demo and tests, offline
#   python3-torch python3-numpy python3-pil python3-torchvision: PyTorch interop tests and benchmarks
# Usage: scripts/install-deps.sh [--minimal]   (--minimal: only what the demo needs)
set -euo pipefail
pkgs=(g++ make binutils unzip curl ca-certificates libtorch-dev libgloo-dev libopenblas0-openmp libjpeg62-turbo-dev dataset-fashion-mnist)
[ "${1:-}" = --minimal ] || pkgs+=(python3-torch python3-numpy python3-pil python3-torchvision)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all packages present" >&2
    exit 0
fi
command -v apt-get >/dev/null || { echo "install-deps: missing ${missing[*]} and no apt-get: install them by hand" >&2; exit 1; }
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
echo "install-deps: apt-get install ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
