#!/usr/bin/env bash
# Builds the upstream livepatch sample and three variants made from it with
# sed, out of tree against the extracted Debian headers:
#
#   livepatch-sample.ko    upstream, patches cmdline_proc_show   (sysfs: livepatch_sample)
#   livepatch-version.ko   patches version_proc_show             (sysfs: livepatch_version)
#   livepatch-version2.ko  a second patch of version_proc_show   (sysfs: livepatch_version2)
#   livepatch-replace.ko   version_proc_show, .replace = true    (sysfs: livepatch_replace)
#
#   test/vm/build-modules.sh ROOT KVER OUT_DIR
#
# ROOT is the scratch root test/vm/fetch.sh unpacked. The build is skipped when
# OUT_DIR already holds modules built from the same sample source and this
# script.
set -euo pipefail

root=${1:?usage: build-modules.sh ROOT KVER OUT_DIR}
kver=${2:?}
out=${3:?}
series=$(echo "$kver" | cut -d. -f1,2)
mkdir -p "$out"
out=$(cd "$out" && pwd) # kbuild needs an absolute M=
here=$(cd "$(dirname "$0")" && pwd)

src="$root/usr/src/linux-source-${series}/samples/livepatch/livepatch-sample.c"
headers="$root/usr/src/linux-headers-${kver}"
[ -f "$src" ] || { echo "vmtest/modules: missing $src" >&2; exit 1; }

stamp=$(cat "$src" "$here/build-modules.sh" | sha256sum | cut -c1-16)
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ]; then
  exit 0
fi

work="$out.build"
rm -rf "$work"
mkdir -p "$work"
cp "$src" "$work/livepatch-sample.c"

# Each variant says which module printed it, so /proc/version shows which
# patch of version_proc_show is on top of the stack.
variant() { # name message [extra sed expression]
  local name=$1 msg=$2
  shift 2
  sed -e 's/cmdline_proc_show/version_proc_show/g' \
      -e "s/\"this has been live patched\"/\"$msg\"/" \
      "$@" "$src" >"$work/$name.c"
  grep -q "$msg" "$work/$name.c" || { echo "vmtest/modules: sed did not apply to $name" >&2; exit 1; }
}
variant livepatch-version "version patched by livepatch_version"
variant livepatch-version2 "version patched by livepatch_version2"
variant livepatch-replace "version patched by livepatch_replace" \
  -e 's/^\(\s*\)\.objs = objs,$/&\n\1.replace = true,/'
grep -q '\.replace = true,' "$work/livepatch-replace.c" || {
  echo "vmtest/modules: could not add .replace = true" >&2
  exit 1
}

cat >"$work/Makefile" <<'MK'
obj-m := livepatch-sample.o livepatch-version.o livepatch-version2.o livepatch-replace.o
MK
echo "vmtest/modules: building 4 livepatch modules against $kver" >&2
make -s -C "$headers" M="$work" modules >&2

rm -rf "$out"
mkdir -p "$out"
cp "$work"/*.ko "$out/"
echo "$stamp" >"$out/.stamp"
rm -rf "$work"
