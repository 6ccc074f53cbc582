#!/usr/bin/env bash
# Whole-process time of the OCI hook (fork/exec to exit). Needs root, runc and
# busybox-static (scripts/install-deps.sh). docs/hook.md, docs/benchmarks.md.
#
#   scripts/hook-bench.sh          BenchmarkHookProcess: median (p50-ms) and p95
#                                  (p95-ms) over RUNS runs (default 200) of each
#                                  binary, service up and down, admit and block
#   scripts/hook-bench.sh ratio    BenchmarkHookRatio: /bin/true, an empty static
#                                  Go program, the thin hook (service up and down)
#                                  and `patchgate hook`, one run of each in turn
#                                  per iteration (RUNS, default 100), medians and
#                                  ratios to /bin/true. PATCHGATE_BENCH_HOOK_BEFORE=
#                                  BIN adds an older hook binary.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-process}" in
process)
  RUNS=${RUNS:-200}
  exec go test -tags e2e -run '^$' -bench '^BenchmarkHookProcess$' -benchtime "${RUNS}x" -count 1 ./test/hooke2e/
  ;;
ratio)
  RUNS=${RUNS:-100}
  uptime
  exec go test -tags e2e -run '^$' -bench '^BenchmarkHookRatio$' -benchtime "${RUNS}x" -count 1 -v ./test/hooke2e/
  ;;
*)
  echo "usage: $0 [process|ratio]" >&2
  exit 2
  ;;
esac
