# patchgate — see README.md. Two commands matter on a fresh machine:
#   make demo   the main job: a real containerd with patchgate, step by step
#   make test   everything CI runs
SHELL := /bin/bash
GO    ?= go
BIN   := bin
PKGS  := ./...

.PHONY: all build release image test unit fmt-check vet lint fuzz bench deps clean e2e vmtest hooke2e hook-bench demo k8se2e

all: build

# Both binaries are static (CGO_ENABLED=0; nothing in patchgate uses cgo): the
# DaemonSet copies them onto the host, where runc runs the hook for every
# container, on whatever libc the node has. bin/patchgate-hook is the thin hook:
# stripped, standard library only (hook/thin TestThinHookDependencies). Install
# both binaries in one directory: the thin hook runs `patchgate hook` from there
# when the node service cannot answer. Version, commit and date are stamped from
# git (scripts/version-ldflags.sh; `patchgate version`).
LDFLAGS_VERSION = $(shell ./scripts/version-ldflags.sh)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='$(LDFLAGS_VERSION)' -o $(BIN)/patchgate ./cmd/patchgate
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w $(LDFLAGS_VERSION)' -o $(BIN)/patchgate-hook ./cmd/patchgate-hook

# Static, stripped binaries for linux/amd64 and linux/arm64 in dist/, a CycloneDX
# SBOM per binary and sha256sums (scripts/release.sh), then the checks of
# test/release on them (no ELF interpreter, the right machine, sums, SBOMs).
# `make unit` runs the same build and checks into a temporary directory.
release:
	./scripts/release.sh
	PATCHGATE_DIST=$(CURDIR)/dist $(GO) test -count=1 ./test/release/

# The container image (scripts/image.sh, image/Containerfile): FROM scratch with
# dist/'s binaries, linux/amd64 and linux/arm64 as one OCI archive,
# dist/patchgate-image.oci.tar, built offline by podman on private storage; then
# test/release checks it against dist/'s binaries. `make unit` builds it too.
image: release
	./scripts/image.sh
	PATCHGATE_DIST=$(CURDIR)/dist $(GO) test -count=1 ./test/release/

# The test command CI runs (.ci/run) and the README names. k8se2e last: it builds
# Kubernetes (cached in /var/cache/patchgate/k8s; cold about 21 minutes).
test: deps fmt-check vet lint unit e2e hooke2e vmtest k8se2e

deps:
	./scripts/install-deps.sh

fmt-check:
	@out=$$(find . -name '*.go' -not -path './.cache/*' -not -path './bin/*' -print0 | xargs -0 -r gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# -timeout 30m: go test's default of 10m per package was too short for
# test/release (a cold two-architecture release and its SBOM) on a loaded machine.
unit:
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

# Real live patches on a real kernel in a throwaway qemu guest (scripts/vmtest.sh).
vmtest: deps
	./scripts/vmtest.sh

# End-to-end tests against a real containerd v2.4.2 with NRI, runc and crictl (test/harness).
# Builds the tools into .cache/e2e first. Needs root; under CI=true nothing may skip.
e2e: deps
	./scripts/e2e.sh

# The Helm chart's DaemonSet on a real single-node Kubernetes v1.37.2 on this machine, on the
# harness's containerd with required_plugins (test/k8se2e, scripts/k8se2e.sh). Builds
# Kubernetes into /var/cache/patchgate/k8s first (cold: tens of minutes); the image is make
# image's. Needs root.
k8se2e: deps image
	./scripts/k8se2e.sh

# The README's first command: a private containerd with patchgate, step by step. Needs root.
demo: deps
	./scripts/demo.sh

# The OCI hook under real runc, podman and containerd, service up and down (docs/hook.md).
hooke2e: deps
	$(GO) test -tags e2e -count=1 -v ./test/hooke2e/

# Whole-process hook time, median and p95 over RUNS runs (docs/hook.md).
hook-bench: deps
	./scripts/hook-bench.sh

lint: fmt-check vet
	./scripts/lint.sh

# A short run of every fuzz target (FUZZTIME per target).
FUZZTIME ?= 10s
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# Benchmarks, not part of `make test`: the unit benchmarks, then (root, real
# runtimes, serialised machine-wide) the hook-process ratios against /bin/true
# and an empty static Go program (scripts/hook-bench.sh ratio), and the
# end-to-end batch on real containerd with and without patchgate in
# alternating rounds (BenchmarkContainers50). docs/benchmarks.md.
BENCH_ROUNDS ?= 5
bench:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)
	flock /tmp/patchgate-e2e.lock ./scripts/hook-bench.sh ratio
	flock /tmp/patchgate-e2e.lock $(GO) test -tags e2e -run '^$$' -bench '^BenchmarkContainers50$$' -benchtime $(BENCH_ROUNDS)x -timeout 60m ./test/e2e/

clean:
	rm -rf $(BIN) dist
