#!/usr/bin/env bash
# helm at the version pinned in tools/helm/go.mod, built from the Go module
# proxy into $PATCHGATE_CACHE/helm/<version>/helm (outside the checkout), then
# run with this script's arguments: scripts/helm.sh template charts/patchgate
# --namespace patchgate-system (the chart refuses "default", see exemptSelf).
# The binary is rebuilt only when its stamp (helm version, Go version, hash of
# tools/helm/go.sum) differs from the one the pins give now, so a bumped pin
# or a new Go rebuilds it and nothing else does. The chart's tests
# (charts/patchgate) run helm through this script.
# HELM_SH_PRINT_PATH=1 prints the binary's path instead of running it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mod="$root/tools/helm"

ver=$(cd "$mod" && go list -m -f '{{.Version}}' helm.sh/helm/v4)
dir="${PATCHGATE_CACHE:-/var/cache/patchgate}/helm/$ver"
bin="$dir/helm"
stamp="helm $ver
$(go env GOVERSION)
go.sum $(sha256sum "$mod/go.sum" | cut -d' ' -f1)"

if [ ! -x "$bin" ] || [ "$(cat "$dir/stamp" 2>/dev/null)" != "$stamp" ]; then
  mkdir -p "$dir"
  # One build at a time: the chart's tests may call this in parallel.
  exec 9>"$dir/lock"
  flock 9
  if [ ! -x "$bin" ] || [ "$(cat "$dir/stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "scripts/helm.sh: building helm $ver into $dir" >&2
    start=$(date +%s)
    (cd "$mod" && CGO_ENABLED=0 nice -n 19 go build -trimpath \
      -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$ver -X helm.sh/helm/v4/internal/version.metadata=" \
      -o "$bin.tmp" helm.sh/helm/v4/cmd/helm) >&2
    mv "$bin.tmp" "$bin"
    printf '%s\n' "$stamp" >"$dir/stamp.tmp"
    mv "$dir/stamp.tmp" "$dir/stamp"
    echo "scripts/helm.sh: built in $(( $(date +%s) - start ))s" >&2
  fi
  exec 9>&-
fi

if [ "${HELM_SH_PRINT_PATH:-}" = 1 ]; then
  echo "$bin"
  exit 0
fi
exec "$bin" "$@"
