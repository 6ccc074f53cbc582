#!/usr/bin/env bash
# make k8se2e: patchgate's Helm chart on a real single-node Kubernetes on this machine
# (test/k8se2e, issue 14): etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
# a kubelet (Kubernetes v1.37.2, built from the Go module proxy into
# /var/cache/patchgate/k8s/<version>, outside the checkout; cold, tens of minutes) on the
# harness's private containerd v2.4.2 with required_plugins = ["patchgate"], the image from
# `make image` imported offline, and the chart installed with the helm of scripts/helm.sh.
# The test runs in a private mount namespace, so the chart's host paths (/opt/patchgate,
# /run/patchgate, /var/lib/patchgate, /var/log/patchgate, /var/run/nri) are private
# directories there. Needs root. Under CI=true a missing prerequisite fails; elsewhere the
# test skips with the reason.
#   K8SE2E_TIMEOUT          go test -timeout (default 30m)
#   K8SE2E_RUN              go test -run filter (default: all)
#   PATCHGATE_IMAGE_ARCHIVE the image archive (default dist/patchgate-image.oci.tar)
#   PATCHGATE_CHART         the chart directory (default charts/patchgate)
#   PATCHGATE_HELM          a helm binary (default: the one scripts/helm.sh builds)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "k8se2e: must run as root (containerd, runc, kubelet, cgroups, mounts)" >&2
    exit 1
  fi
  echo "k8se2e: SKIP: must run as root (containerd, runc, kubelet, cgroups, mounts)" >&2
  exit 0
fi

# The builds first (cached; cold: containerd minutes, Kubernetes tens of minutes, helm a
# minute), so that they do not count against the test timeout.
go run ./test/harness/cmd/e2e-tools -sweep -kubernetes >/dev/null
./scripts/helm.sh version >/dev/null
go vet -tags e2e ./test/k8se2e/
# One end-to-end run at a time on this machine: they share the cgroup tree and CPU.
exec flock /tmp/patchgate-e2e.lock go test -tags e2e -count=1 -v -timeout "${K8SE2E_TIMEOUT:-30m}" \
  ${K8SE2E_RUN:+-run "$K8SE2E_RUN"} ./test/k8se2e/
