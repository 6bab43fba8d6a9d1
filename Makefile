# gsrmt: each target prepares what it needs (both scripts are quick when nothing changed).
SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
GO_TEST_FLAGS ?= -count=1 -timeout 40m
DEMO_OUT ?= runs/demo

.PHONY: all deps deps-minimal setup build demo test test-go test-python vet bench clean

all: build

deps:
	scripts/install-deps.sh

deps-minimal:
	scripts/install-deps.sh --minimal

setup: deps-minimal
	./setup-libtorch.sh

# The commit is also stamped for builds that Go cannot stamp itself (-buildvcs=false, no .git):
# GIT_COMMIT=... overrides it, GSRMT_VERSION=... sets the version (cli/version.go).
build: setup
	go build -ldflags "-X main.commit=$(or $(GIT_COMMIT),$$(git rev-parse HEAD 2>/dev/null))$(if $(GSRMT_VERSION), -X main.version=$(GSRMT_VERSION))" \
	    -o bin/gsrmt-cli ./cli/...

# The main job: a short real training run of Gated-SwinRMT-SWAT nano on Fashion-MNIST
# (Debian's dataset-fashion-mnist) on the CPU, then its evaluation on the 10,000 test images.
demo: build
	bin/gsrmt-cli train --dataset fashion-mnist --img-size 28 --variant swat --preset nano \
	    --epochs 1 --batch-size 64 --limit-train 15000 --lr 3e-3 --warmup-epochs 0.1 --crop-padding 0 \
	    --mixup 0 --cutmix 0 --out $(DEMO_OUT)
	bin/gsrmt-cli eval --checkpoint $(DEMO_OUT)/best.pt

vet: setup
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...

test-go: deps setup
	go test $(GO_TEST_FLAGS) ./...

test-python: deps
	$(PYTHON) -m unittest discover -s tests/reference

test: vet test-go test-python

# gsrmt against eager PyTorch on the same libtorch (CPU, 2 threads): as users run the two, and with
# PyTorch given gsrmt-cli's malloc settings (the ratio of gsrmt's own overhead). README.md, Performance.
SAME_MALLOC := GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647:glibc.malloc.top_pad=67108864
bench: build
	/usr/bin/python3 bench/compare.py --threads 2 --rounds 5 --steps 10
	/usr/bin/python3 bench/compare.py --threads 2 --rounds 5 --steps 10 --py-env $(SAME_MALLOC)

clean:
	rm -rf bin
