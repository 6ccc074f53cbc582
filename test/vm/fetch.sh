#!/usr/bin/env bash
# Fetches the Debian bookworm kernel that `make vmtest` boots, its headers and
# kbuild, and the upstream livepatch sample from linux-source, into a cache
# folder, without installing anything: `apt-get download` + `dpkg-deb -x`.
#
#   test/vm/fetch.sh CACHE_DIR
#
# Prints nothing on stdout but the final "KVER=... ROOT=..." line. Re-running
# it with a warm cache does no network or unpacking work. The kernel version is
# what this machine's apt index resolves linux-image-amd64 to on the first run
# (kept in CACHE_DIR/kver), unless VMTEST_KVER (e.g. 6.1.0-56-amd64) says
# otherwise.
set -euo pipefail

cache=${1:?usage: fetch.sh CACHE_DIR}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

log() { echo "vmtest/fetch: $*" >&2; }

kver=${VMTEST_KVER:-}
# A warm cache keeps the kernel it resolved first (apt-cache alone takes
# seconds); remove CACHE_DIR/kver to move to a newer one.
if [ -z "$kver" ] && [ -f "$cache/kver" ]; then
  kver=$(cat "$cache/kver")
  if [ -f "$cache/root-${kver}/.complete" ] && [ -f "$cache/root-${kver}/boot/vmlinux-${kver}" ]; then
    echo "KVER=${kver} ROOT=$cache/root-${kver}"
    exit 0
  fi
fi
resolve() { # linux-image-amd64 depends on exactly one linux-image-<abi>-amd64.
  apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
if [ -z "$kver" ]; then
  dep=$(resolve)
  if [ -z "$dep" ] && [ "$(id -u)" -eq 0 ]; then
    # A machine whose apt lists were never fetched (a fresh container image).
    log "apt-get update (the apt lists do not know linux-image-amd64)"
    apt-get update -qq >&2 || true
    dep=$(resolve)
  fi
  if [ -z "$dep" ]; then
    log "apt-cache cannot resolve linux-image-amd64 (run apt-get update?)"
    exit 3
  fi
  kver=${dep#linux-image-}
fi
abi=${kver%-amd64}                 # 6.1.0-56
series=$(echo "$abi" | cut -d. -f1,2)   # 6.1

pkgs=(
  "linux-image-${kver}"
  "linux-headers-${kver}"
  "linux-headers-${abi}-common"
  "linux-kbuild-${series}"
  "linux-source-${series}"
)

# The image (linux-signed-amd64) and the rest (linux) are built from the same
# upload; each is downloaded at its own candidate version. The headers carry the
# image's ABI in their name, which is what the modules' vermagic must match.
candidate() {
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}'
}

root="$cache/root-${kver}"
debs="$cache/debs"
mkdir -p "$debs"

if [ ! -f "$root/.complete" ]; then
  declare -A deb_of
  for p in "${pkgs[@]}"; do
    ver=$(candidate "$p")
    if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
      log "no candidate version for $p"
      exit 3
    fi
    deb_of[$p]="$debs/${p}_${ver//:/%3a}_$(dpkg --print-architecture).deb"
    [ -f "${deb_of[$p]}" ] || deb_of[$p]="$debs/${p}_${ver//:/%3a}_all.deb"
    if [ ! -f "${deb_of[$p]}" ]; then
      log "apt-get download ${p}=${ver}"
      (cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root "${p}=${ver}" >&2) || {
        log "apt-get download ${p}=${ver} failed"
        exit 3
      }
      deb_of[$p]=$(ls "$debs/${p}_${ver//:/%3a}_"*.deb | head -n1)
    fi
  done
  rm -rf "$root.tmp"
  mkdir -p "$root.tmp"
  for p in "${pkgs[@]}"; do
    deb=${deb_of[$p]}
    log "dpkg-deb -x $(basename "$deb")"
    dpkg-deb -x "$deb" "$root.tmp"
  done
  # The headers' Makefile includes the common headers by an absolute
  # /usr/src path; point it at the scratch root. Its other links are relative.
  mk="$root.tmp/usr/src/linux-headers-${kver}/Makefile"
  sed -i "s|/usr/src/|$root/usr/src/|g" "$mk"
  # Only the livepatch samples are needed from the 140 MB source tarball.
  tarball=$(ls "$root.tmp/usr/src/linux-source-${series}.tar."* | head -n1)
  log "extracting samples/livepatch from $(basename "$tarball")"
  tar -xf "$tarball" -C "$root.tmp/usr/src" "linux-source-${series}/samples/livepatch"
  rm -f "$tarball"
  # The guest loads only our own modules; drop the image's 400 MB of them.
  rm -rf "$root.tmp/lib/modules/${kver}/kernel"
  touch "$root.tmp/.complete"
  rm -rf "$root"
  mv "$root.tmp" "$root"
fi

# qemu boots the uncompressed ELF vmlinux through its PVH entry point
# (CONFIG_PVH=y): that skips the real-mode setup and the xz decompression of
# the bzImage, which under TCG take longer than the whole test. The payload is
# the xz stream inside vmlinuz (as the kernel's scripts/extract-vmlinux finds it).
vmlinux="$root/boot/vmlinux-${kver}"
if [ ! -f "$vmlinux" ]; then
  img="$root/boot/vmlinuz-${kver}"
  for off in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$img" | cut -d: -f1); do
    # xz complains about the data after the stream; the ELF magic decides.
    tail -c +$((off + 1)) "$img" | xz -dc >"$vmlinux.tmp" 2>/dev/null || true
    if [ "$(head -c4 "$vmlinux.tmp" | od -An -c | tr -d ' ')" = '177ELF' ]; then
      mv "$vmlinux.tmp" "$vmlinux"
      break
    fi
  done
  rm -f "$vmlinux.tmp"
  if [ ! -f "$vmlinux" ]; then
    log "no xz-compressed ELF kernel found in $img"
    exit 1
  fi
fi

[ -n "${VMTEST_KVER:-}" ] || echo "$kver" >"$cache/kver"
echo "KVER=${kver} ROOT=${root}"
