// Package harness runs a real containerd v2.4.2 with NRI, real runc and real crictl on this
// machine, with every path (root, state, sockets, NRI socket, runc root, shim sockets, logs)
// under a private temporary directory. It is the base of patchgate's end-to-end tests
// (test/e2e) and of `make demo`.
//
// The pieces:
//
//   - EnsureTools builds containerd, ctr, containerd-shim-runc-v2 and crictl from the versions
//     pinned in test/tools/go.mod into a cache directory outside the checkout ($PATCHGATE_CACHE/e2e, default /var/cache/patchgate/e2e) and reuses them while the
//     pins, the Go version and the build recipe are unchanged.
//   - WriteImageLayout writes an OCI image-layout tarball; BusyboxImage and PauseImage build the
//     workload and sandbox images offline from Debian's busybox-static and a static Go pause.
//   - Config renders a private containerd config (version 4) with NRI and the default
//     validator; Start runs containerd on it, imports the images, and returns a *Containerd
//     with Restart, Stop and Cleanup.
//   - The crictl helpers (RunPod, CreateContainer, StartContainer, Inspect, ...) return a
//     Result with stdout, stderr (containerd's cgroup v1 deprecation warning removed) and the
//     exit status.
//
// Nothing here touches the host's /etc or /run/containerd: containerd 2.4's shim manager takes
// a socket_dir, which the harness points into the private directory as well.
package harness
