#!/usr/bin/env bash
# Installs the Debian packages that patchgate's tests and demo need, when they
# are missing. Go modules (containerd, crictl, ...) come from the Go module
# proxy through the go command; nothing here downloads anything else.
set -euo pipefail

pkgs=(
  gcc libc6-dev   # cgo, which go test -race needs
  runc            # OCI runtime for the hook tests and containerd
  podman          # hook tests with podman
  busybox-static  # one-file rootfs for test images and the VM initramfs
  qemu-system-x86 # real-kernel live patching in a VM (make vmtest)
  libseccomp-dev pkg-config # runc v1.3.5 (built for user-namespace pods) links libseccomp through cgo
  rpm             # oracle for internal/kver rpm ordering tests (rpm.vercmp)
  containernetworking-plugins # CNI bridge + host-local for e2e pods without host network
  xz-utils        # make vmtest unpacks the Debian kernel packages (data.tar.xz)
  iproute2        # e2e cleanup deletes the harness's CNI bridge with `ip link delete`
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages ${missing[*]}; run as root or install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
