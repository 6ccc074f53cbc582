#!/usr/bin/env bash
# The -X linker flags that stamp internal/buildinfo (version, commit, commit date in
# UTC) from git; `-version` prints only the version. Outside a git checkout it prints
# nothing and the binaries fall back to runtime/debug.ReadBuildInfo.
set -euo pipefail
cd "$(dirname "$0")/.."
git rev-parse --git-dir >/dev/null 2>&1 || exit 0
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
if [ "${1:-}" = "-version" ]; then echo "$version"; exit 0; fi
commit=$(git rev-parse HEAD)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit-dirty"; fi
date=$(TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd)
pkg=github.com/patchgate/patchgate/internal/buildinfo
echo "-X $pkg.version=$version -X $pkg.commit=$commit -X $pkg.date=$date"
