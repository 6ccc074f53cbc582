#!/usr/bin/env bash
# End-to-end tests against real containerd (NRI), runc and crictl on private paths: the
# existing tests on containerd v2.4.2, and the support matrix (TestContainerdMatrix) on every
# release: v1.7.35, v2.0.14, v2.1.9, v2.2.9 and v2.4.2.
# Builds the tools first (cached in /var/cache/patchgate/e2e, outside the checkout; a cold build takes a few minutes), so the
# build does not count against the test timeout. Needs root. Under CI=true a missing
# prerequisite fails; elsewhere the tests skip with the reason.
#   E2E_TIMEOUT   go test -timeout (default 40m)
#   E2E_RUN       go test -run filter (default: all)
#   PATCHGATE_E2E_NRI=nri-v0.12.5   use containerd linked with NRI v0.12.5 instead of stock
#   PATCHGATE_E2E_CONTAINERD=v2.4.2  run the matrix on these releases only (comma-separated;
#                                    default all); the other tests always run on v2.4.2
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "e2e: must run as root (containerd, runc, cgroups)" >&2
    exit 1
  fi
  echo "e2e: SKIP: must run as root (containerd, runc, cgroups)" >&2
  exit 0
fi

# Every release the matrix runs is built (one at a time) before the tests, so the builds
# (minutes each when cold) do not count against the test timeout.
go run ./test/harness/cmd/e2e-tools -sweep >/dev/null
go run ./test/harness/cmd/e2e-tools -containerd "${PATCHGATE_E2E_CONTAINERD:-all}" >/dev/null
go vet -tags e2e ./test/e2e/...
exec go test -tags e2e -count=1 -v -timeout "${E2E_TIMEOUT:-40m}" ${E2E_RUN:+-run "$E2E_RUN"} ./test/e2e/...
