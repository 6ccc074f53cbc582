#!/usr/bin/env bash
# make release: static binaries of patchgate and patchgate-hook for linux/amd64 and
# linux/arm64 in $DIST (default dist/), a CycloneDX SBOM per binary (cyclonedx-gomod,
# pinned in tools/release/go.mod), and sha256sums over all of them.
#   DIST          output directory (emptied of earlier release files first)
#   ARCHES        default "amd64 arm64"
#   VERSION       default: git describe --tags --always --dirty (else "dev")
# Static means CGO_ENABLED=0: the DaemonSet copies these binaries onto nodes with any
# libc, where runc runs the hook for every container. test/release checks the ELF files.
set -euo pipefail
cd "$(dirname "$0")/.."
DIST=${DIST:-dist}
mkdir -p "$DIST"
DIST=$(cd "$DIST" && pwd)
ARCHES=${ARCHES:-amd64 arm64}
ldflags="-s -w $(./scripts/version-ldflags.sh)"
version=$(./scripts/version-ldflags.sh -version)

# The image archive goes too: it holds the binaries being replaced (make image builds it again).
rm -f "$DIST"/patchgate-linux-* "$DIST"/patchgate-hook-linux-* "$DIST"/sha256sums "$DIST"/patchgate-image.oci.tar
for arch in $ARCHES; do
  for cmd in patchgate patchgate-hook; do
    out="$DIST/$cmd-linux-$arch"
    CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags="$ldflags" -o "$out" "./cmd/$cmd"
    # The SBOM of exactly this binary, from the module list Go embeds in it (bin mode;
    # app mode needs a git checkout it can read, which a git worktree is not).
    (cd tools/release && go tool cyclonedx-gomod bin -json -std -version "${version:-dev}" -output "$out.cdx.json" "$out")
  done
done
(cd "$DIST" && sha256sum patchgate-linux-* patchgate-hook-linux-* > sha256sums)
echo "release: ${version:-dev} in $DIST"
