#!/usr/bin/env bash
# Whole-process time of the OCI hook (fork/exec to exit), median (p50-ms) and
# p95 (p95-ms) over RUNS runs (default 200), with the node service up and down,
# for the full patchgate binary and the small patchgate-hook binary.
# Needs root, runc and busybox-static (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-200}
exec go test -tags e2e -run '^$' -bench '^BenchmarkHookProcess$' -benchtime "${RUNS}x" -count 1 ./test/hooke2e/
