#!/usr/bin/env bash
# Packs the vmtest guest's initramfs: Debian's static busybox, test/vm/guest/init,
# a static patchgate, the livepatch modules, and the guest's policies.
#
#   test/vm/mkinitramfs.sh PATCHGATE_BIN MODULES_DIR OUT.cpio.gz
#
# Packed with `busybox cpio -o -H newc` (GNU cpio is not installed), every file
# owned by root, as patchgate refuses policy files that others own.
set -euo pipefail

bin=${1:?usage: mkinitramfs.sh PATCHGATE_BIN MODULES_DIR OUT.cpio.gz}
mods=${2:?}
out=${3:?}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

busybox=/bin/busybox
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  # `file` may be missing; ldd says "not a dynamic executable" for static ones.
  ldd "$busybox" >/dev/null 2>&1 && { echo "vmtest/initramfs: $busybox is not static (install busybox-static)" >&2; exit 1; }
fi

stage="$out.d"
rm -rf "$stage"
mkdir -p "$stage"/{bin,usr/bin,lib/patches,etc/patchgate,specs,proc,sys,dev,tmp,run,root}
install -m 0755 "$busybox" "$stage/bin/busybox"
install -m 0755 "$here/guest/init" "$stage/init"
install -m 0755 "$bin" "$stage/usr/bin/patchgate"
install -m 0644 "$mods"/*.ko "$stage/lib/patches/"
install -m 0644 "$here"/guest/policies/*.yaml "$stage/etc/patchgate/"
# The shipped example itself, so that vmtest proves what users copy.
install -m 0644 "$repo/examples/policies/kernel-aware.yaml" "$stage/etc/patchgate/kernel-aware.yaml"
if [ -d "$here/guest/specs" ]; then
  cp -r "$here/guest/specs/." "$stage/specs/"
fi
chmod -R go-w "$stage"

(cd "$stage" && find . | LC_ALL=C sort | busybox cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
rm -rf "$stage"
