#!/usr/bin/env bash
# End-to-end tests against a real containerd v2.4.2 (NRI), runc and crictl on private paths.
# Builds the tools first (cached in /var/cache/patchgate/e2e, outside the checkout; a cold build takes a few minutes), so the
# build does not count against the test timeout. Needs root. Under CI=true a missing
# prerequisite fails; elsewhere the tests skip with the reason.
#   E2E_TIMEOUT   go test -timeout (default 20m)
#   E2E_RUN       go test -run filter (default: all)
#   PATCHGATE_E2E_NRI=nri-v0.12.5   use containerd linked with NRI v0.12.5 instead of stock
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

go run ./test/harness/cmd/e2e-tools -sweep >/dev/null
go vet -tags e2e ./test/e2e/...
exec go test -tags e2e -count=1 -v -timeout "${E2E_TIMEOUT:-20m}" ${E2E_RUN:+-run "$E2E_RUN"} ./test/e2e/...
