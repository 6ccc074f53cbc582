#!/usr/bin/env bash
# `make vmtest`: proves patchgate against real live patches on a real kernel.
#
# Fetches Debian bookworm's 6.1 kernel, headers, kbuild and source with
# `apt-get download` (nothing is installed), builds the upstream livepatch
# sample and three variants, builds a static patchgate, packs an initramfs and
# boots it twice under qemu TCG; test/vm (build tag vmtest) asserts each step
# the guest prints on its serial console. Kernel downloads and module builds are
# cached outside the checkout in $PATCHGATE_CACHE/vm (default
# /var/cache/patchgate/vm, or VMTEST_CACHE), keyed by kernel version, so a fresh
# clone on the same machine reuses them; patchgate and the initramfs are built
# into .cache/vm/ of this checkout on every run.
#
# Outside CI a machine that cannot run it (no qemu, no apt access to the
# kernel packages) gets a SKIP line with the reason; under CI=true that is a
# failure. Extra arguments go to `go test` (e.g. -run, -v).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
cache=${VMTEST_CACHE:-${PATCHGATE_CACHE:-/var/cache/patchgate}/vm}
out=$repo/.cache/vm
mkdir -p "$cache" "$out"
cache=$(cd "$cache" && pwd)

skip() {
  if [ "${CI:-}" = true ]; then
    echo "vmtest: FAIL: cannot run under CI=true: $*" >&2
    exit 1
  fi
  echo "vmtest: SKIP: $*" >&2
  exit 0
}

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed (scripts/install-deps.sh installs qemu-system-x86)"
[ -x /bin/busybox ] || skip "/bin/busybox is missing (scripts/install-deps.sh installs busybox-static)"
command -v apt-get >/dev/null || skip "apt-get is needed to fetch the Debian kernel"

start=$(date +%s)
set +e
fetched=$(test/vm/fetch.sh "$cache")
rc=$?
set -e
case $rc in
  0) ;;
  3) skip "the Debian kernel packages cannot be downloaded with apt-get (see above)" ;;
  *) exit $rc ;;
esac
kver=$(echo "$fetched" | sed -n 's/^KVER=\([^ ]*\) ROOT=.*/\1/p')
root=$(echo "$fetched" | sed -n 's/^KVER=[^ ]* ROOT=\(.*\)$/\1/p')

test/vm/build-modules.sh "$root" "$kver" "$cache/modules-$kver"
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out/patchgate" ./cmd/patchgate
test/vm/mkinitramfs.sh "$out/patchgate" "$cache/modules-$kver" "$out/initramfs.cpio.gz"
echo "vmtest: kernel $kver ready in $(($(date +%s) - start))s; booting under qemu TCG" >&2

export VMTEST_KERNEL="$root/boot/vmlinux-$kver" # see test/vm/fetch.sh
export VMTEST_INITRD="$out/initramfs.cpio.gz"
export VMTEST_OUT="$out"
go test -tags vmtest -count=1 -timeout 10m -v "$@" ./test/vm/
