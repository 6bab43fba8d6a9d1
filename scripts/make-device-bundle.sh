#!/usr/bin/env bash
# make-device-bundle.sh: packs what scripts/device-check.sh needs on a GPU machine that has PyTorch
# but may lack Go and network access, into one git-ignored file (default dist/gsrmt-device-bundle.tar.xz):
#   go/            this machine's Go toolchain, trimmed to what `go build` and `go test` use (the go
#                  command; compile, link, asm, cgo, vet; the standard library's source without tests)
#   vendor/        the packages gsrmt imports (`go mod vendor`), built with -mod=vendor
#   gotch-vX.Y.Z/  gotch's pristine source without its 90 MB of examples and code generator
#                  (setup-libtorch.sh prepares it for the GPU machine's libtorch: GOTCH_SRC)
# The bundle must stay under 60 MB (the device machine's transfer limit); the script says its size.
#
# Usage: scripts/make-device-bundle.sh [OUT.tar.xz]      (needs Go and the Go module proxy here)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$REPO/dist/gsrmt-device-bundle.tar.xz}
LIMIT_MB=60
cd "$REPO"
say() { printf 'make-device-bundle: %s\n' "$*" >&2; }
die() { printf 'make-device-bundle: error: %s\n' "$*" >&2; exit 1; }
command -v go >/dev/null || die "no Go toolchain on PATH"
command -v xz >/dev/null || die "xz is needed (apt-get install xz-utils)"

GOTCH_VERSION=$(sed -n 's/^GOTCH_VERSION=//p' setup-libtorch.sh)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# 1. The Go toolchain, trimmed.
goroot=$(go env GOROOT)
tooldir=pkg/tool/$(go env GOHOSTOS)_$(go env GOHOSTARCH)
say "Go toolchain: $(go env GOVERSION) from $goroot"
mkdir -p "$stage/go/bin" "$stage/go/$tooldir"
cp "$goroot/bin/go" "$stage/go/bin/"
for t in asm cgo compile link vet; do cp "$goroot/$tooldir/$t" "$stage/go/$tooldir/"; done
cp -r "$goroot/pkg/include" "$stage/go/pkg/"
for f in VERSION go.env; do [ -f "$goroot/$f" ] && cp "$goroot/$f" "$stage/go/"; done
(cd "$goroot" && find src -path src/cmd -prune -o -type d -name testdata -prune -o \
    -type f ! -name '*_test.go' -print) | tar -C "$goroot" -cf - -T - | tar -C "$stage/go" -xf -

# 2. The packages this module imports, as `go mod vendor` writes them (only the packages built,
#    not whole modules: about 5 MB compressed where the module zips take 36 MB).
say "vendoring the imported packages"
vtmp=$(mktemp -d)
git ls-files -z | xargs -0 tar -cf - | tar -C "$vtmp" -xf -
(cd "$vtmp" && GOWORK=off GOFLAGS=-mod=mod go mod vendor)
mv "$vtmp/vendor" "$stage/vendor"
rm -rf "$vtmp"

# 3. gotch's source, without examples and generator.
src=$(GOWORK=off go list -m -f '{{.Dir}}' github.com/sugarme/gotch)
[ -f "$src/libtch/torch_api.cpp" ] || die "gotch $GOTCH_VERSION's source not found (go mod download github.com/sugarme/gotch@$GOTCH_VERSION)"
mkdir -p "$stage/gotch-$GOTCH_VERSION"
(cd "$src" && find . \( -path ./example -o -path ./gen -o -name testdata \) -prune -o -type f ! -name '*_test.go' -print |
    tar -cf - -T -) | tar -C "$stage/gotch-$GOTCH_VERSION" -xf -
chmod -R u+w "$stage"

mkdir -p "$(dirname "$OUT")"
say "compressing $(du -sm "$stage" | cut -f1) MB with xz -9 (a minute or two)"
tar -C "$stage" -cf - . | xz -9 -T0 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
size=$(du -m "$OUT" | cut -f1)
say "wrote $OUT: ${size} MB"
[ "$size" -lt "$LIMIT_MB" ] || die "$OUT is ${size} MB, over the ${LIMIT_MB} MB limit"
