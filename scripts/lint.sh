#!/usr/bin/env bash
# staticcheck and errcheck at the versions pinned in tools/lint/go.mod, built
# once into $PATCHGATE_CACHE/lint/<module>@<version> (outside the checkout) and
# run on every package, with and without the e2e build tag. Part of make test.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${PATCHGATE_CACHE:-/var/cache/patchgate}/lint"

# tool IMPORT-PATH MODULE: the cached binary for the version tools/lint pins.
tool() {
  local pkg=$1 mod=$2 ver bin
  ver=$(cd tools/lint && go list -m -f '{{.Version}}' "$mod")
  bin="$cache/$(basename "$pkg")@$ver/$(basename "$pkg")"
  if [ ! -x "$bin" ]; then
    mkdir -p "$(dirname "$bin")"
    (cd tools/lint && go build -trimpath -o "$bin.tmp" "$pkg") >&2
    mv "$bin.tmp" "$bin"
  fi
  echo "$bin"
}
staticcheck=$(tool honnef.co/go/tools/cmd/staticcheck honnef.co/go/tools)
errcheck=$(tool github.com/kisielk/errcheck github.com/kisielk/errcheck)

"$staticcheck" ./...
"$staticcheck" -tags e2e ./...
# Errors assigned to _ are a choice the code shows; fmt.Fprint* are checked
# once, where the CLI's output is written (tools/lint/errcheck.excludes).
"$errcheck" -exclude tools/lint/errcheck.excludes ./...
"$errcheck" -exclude tools/lint/errcheck.excludes -tags e2e ./...
