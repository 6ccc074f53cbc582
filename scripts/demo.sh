#!/usr/bin/env bash
# make demo: build patchgate and the end-to-end tools (containerd v2.4.2 and crictl from the
# Go module proxy, cached in /var/cache/patchgate/e2e, outside the checkout; a cold build takes a few minutes), then tell the story
# against a private containerd (test/demo). Needs root. Leaves nothing running or behind.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: must run as root (containerd, runc and cgroups need it): sudo make demo" >&2
  exit 1
fi
./scripts/install-deps.sh >/dev/null
echo "demo: building patchgate and the tools (first run: a few minutes)..."
go build -o bin/patchgate ./cmd/patchgate
go run ./test/harness/cmd/e2e-tools >/dev/null
exec go run ./test/demo -patchgate bin/patchgate "$@"
