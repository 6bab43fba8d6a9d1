# gsrmt: each target prepares what it needs (setup-libtorch.sh is quick when nothing changed).
SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
GO_TEST_FLAGS ?= -count=1 -timeout 30m

.PHONY: all setup build demo test test-go test-python vet fmt clean

all: build

setup:
	./setup-libtorch.sh

build: setup
	go build -o bin/gsrmt-cli ./cli/...

# The main job: today it shows the libtorch build and runs a tensor and
# autograd check; the training issue turns it into a short real training run.
demo: build
	bin/gsrmt-cli env

vet: setup
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...

test-go: setup
	go test $(GO_TEST_FLAGS) ./...

test-python:
	$(PYTHON) -m unittest discover -s tests/reference

test: vet test-go test-python

clean:
	rm -rf bin
