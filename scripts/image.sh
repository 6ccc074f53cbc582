#!/usr/bin/env bash
# make image: the container image, FROM scratch with the static binaries `make release`
# put in $DIST (image/Containerfile), for linux/amd64 and linux/arm64, written as ONE OCI
# archive holding an image index over both platforms: $DIST/patchgate-image.oci.tar,
# tagged $IMAGE:<version>. Load it with `ctr -n k8s.io images import --all-platforms`,
# `skopeo copy --all oci-archive:... docker://...`, or `podman load`.
#   DIST    where make release put the binaries (default dist/)
#   ARCHES  default "amd64 arm64"
#   IMAGE   default ghcr.io/patchgate/patchgate
# Offline: the image only copies files, so podman needs no registry, no network and no
# emulation for the foreign architecture. podman runs on a private, temporary storage
# (--root/--runroot/--tmpdir) removed at the end: the host's podman images are not
# touched and nothing is left behind. The version, commit and date come from the
# binaries themselves (`patchgate version`), not from the checkout, which may have moved
# since `make release`; the date is the image's timestamp, so the same binaries give
# the same image digest (only the archive's own tar headers carry the time of writing).
set -euo pipefail
cd "$(dirname "$0")/.."
DIST=${DIST:-dist}
DIST=$(cd "$DIST" && pwd)
ARCHES=${ARCHES:-amd64 arm64}
IMAGE=${IMAGE:-ghcr.io/patchgate/patchgate}
out="$DIST/patchgate-image.oci.tar"
case "$out" in
  *:*) echo "image: $out: podman's oci-archive: transport cannot name a path with a colon" >&2; exit 1 ;;
esac

# `patchgate version` of the first binary this machine runs.
info=""
for arch in $ARCHES; do
  if info=$("$DIST/patchgate-linux-$arch" version 2>/dev/null); then break; fi
done
if [ -z "$info" ]; then
  echo "image: none of $DIST/patchgate-linux-{${ARCHES// /,}} runs here (make release first)" >&2
  exit 1
fi
version=$(sed -n 's/^patchgate //p' <<<"$info")
revision=$(sed -n 's/^commit: //p' <<<"$info")
date=$(sed -n 's/^date: //p' <<<"$info")
# An image tag: at most 128 of [A-Za-z0-9_.-], not starting with . or -.
if ! [[ "$version" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
  echo "image: version $version cannot be an image tag" >&2
  exit 1
fi
ref="$IMAGE:$version"
timestamp=()
if epoch=$(date -u -d "$date" +%s 2>/dev/null); then
  timestamp=(--timestamp "$epoch")
fi

store=$(mktemp -d "${TMPDIR:-/tmp}/patchgate-image.XXXXXX")
trap 'rm -rf "$store"' EXIT
pm=(podman --root "$store/root" --runroot "$store/run" --tmpdir "$store/tmp"
  --storage-driver vfs --events-backend none)

for arch in $ARCHES; do
  ctx="$store/context-$arch"
  mkdir "$ctx"
  for cmd in patchgate patchgate-hook; do
    install -m 0755 "$DIST/$cmd-linux-$arch" "$ctx/$cmd"
  done
  "${pm[@]}" build --quiet --platform "linux/$arch" --manifest "$ref" "${timestamp[@]}" \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    --file image/Containerfile "$ctx" >/dev/null
done
rm -f "$out" "$out.tmp"
"${pm[@]}" manifest push --quiet --all --format oci "$ref" "oci-archive:$out.tmp:$ref"
mv "$out.tmp" "$out"
# sha256sums (written by release.sh, before the image existed) covers the archive too.
name=$(basename "$out")
if [ -f "$DIST/sha256sums" ]; then
  sums=$(grep -v "  $name\$" "$DIST/sha256sums" || true)
  { [ -z "$sums" ] || printf '%s\n' "$sums"; (cd "$DIST" && sha256sum "$name"); } > "$DIST/sha256sums.tmp"
  mv "$DIST/sha256sums.tmp" "$DIST/sha256sums"
fi
echo "image: $ref (${ARCHES// /, }) in $out"
