//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/test/harness"
)

// TestImageArchive: the image make image writes runs on a real containerd
// with no registry. The archive (both platforms) is imported with ctr, CRI
// runs the image's `patchgate version`, and the image's `patchgate install`
// copies both binaries into a host directory the way the DaemonSet's init
// container does, byte for byte dist/'s binaries of this machine's
// architecture, and refuses a host directory others may write.
//
// It uses $PATCHGATE_DIST/patchgate-image.oci.tar when that exists, and
// otherwise builds the release and the image into a temporary directory.
func TestImageArchive(t *testing.T) {
	dist := os.Getenv("PATCHGATE_DIST")
	if dist == "" || !exists(filepath.Join(dist, "patchgate-image.oci.tar")) {
		if _, err := exec.LookPath("podman"); err != nil {
			harness.SkipOrFail(t, err)
		}
		dist = t.TempDir()
		for _, script := range []string{"release.sh", "image.sh"} {
			cmd := exec.Command(filepath.Join("..", "..", "scripts", script))
			cmd.Env = append(os.Environ(), "DIST="+dist)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("scripts/%s: %v\n%s", script, err, out)
			}
		}
	}
	out, err := exec.Command(filepath.Join(dist, "patchgate-linux-"+runtime.GOARCH), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	version, _, _ := strings.Cut(strings.TrimPrefix(string(out), "patchgate "), "\n")
	ref := "ghcr.io/patchgate/patchgate:" + version

	h := harness.StartT(t, harness.Options{Tools: requireTools(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := h.ImportArchive(ctx, filepath.Join(dist, "patchgate-image.oci.tar")); err != nil {
		t.Fatal(err)
	}
	if r := h.Ctr(ctx, "-n", "k8s.io", "images", "ls", "-q"); r.Err() != nil || !strings.Contains(r.Stdout, ref) {
		t.Fatalf("ctr images ls: %v\n%s\nwant %s", r.Err(), r.Stdout, ref)
	}

	pod := harness.PodConfig{Name: "image", Namespace: "e2e", HostNetwork: true}
	podID, r := h.RunPod(ctx, pod)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	run := func(name string, c harness.ContainerConfig) string {
		t.Helper()
		c.Name, c.Image = name, ref
		id, r := h.RunContainer(ctx, podID, pod, c)
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		st, err := h.WaitExited(ctx, id, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		logs := h.Logs(ctx, id)
		if st.Status.ExitCode != 0 {
			t.Fatalf("%s: exit %d\n%s%s", name, st.Status.ExitCode, logs.Stdout, logs.Stderr)
		}
		return logs.Stdout + logs.Stderr
	}

	// The entrypoint is patchgate: the arguments are its subcommand.
	if got := run("version", harness.ContainerConfig{Args: []string{"version"}}); !strings.Contains(got, "patchgate "+version+"\n") {
		t.Errorf("patchgate version in the image printed %q, want version %s", got, version)
	}

	// As the chart's init container runs it: root with no capabilities, a
	// read-only root file system, the host directory mounted at --dest.
	hostBin := filepath.Join(t.TempDir(), "opt", "patchgate", "bin")
	if err := os.MkdirAll(hostBin, 0o755); err != nil {
		t.Fatal(err)
	}
	root := int64(0)
	got := run("install", harness.ContainerConfig{
		Args:         []string{"install", "--dest", "/host/opt/patchgate/bin"},
		Mounts:       []harness.Mount{{HostPath: hostBin, ContainerPath: "/host/opt/patchgate/bin"}},
		RunAsUser:    &root,
		CapDrop:      []string{"ALL"},
		ReadOnlyRoot: true,
	})
	t.Logf("patchgate install in the image:\n%s", got)
	for _, cmd := range []string{"patchgate", "patchgate-hook"} {
		installed, err := os.ReadFile(filepath.Join(hostBin, cmd))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(dist, cmd+"-linux-"+runtime.GOARCH))
		if err != nil {
			t.Fatal(err)
		}
		if string(installed) != string(want) {
			t.Errorf("%s installed from the image differs from dist's %s-linux-%s", cmd, cmd, runtime.GOARCH)
		}
	}

	// A host directory others may write is refused, through the bind mount,
	// and nothing is written into it.
	if err := os.Chmod(hostBin, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"patchgate", "patchgate-hook"} {
		if err := os.Remove(filepath.Join(hostBin, cmd)); err != nil {
			t.Fatal(err)
		}
	}
	id, r := h.RunContainer(ctx, podID, pod, harness.ContainerConfig{
		Name: "install-refused", Image: ref,
		Args:   []string{"install", "--dest", "/host/opt/patchgate/bin"},
		Mounts: []harness.Mount{{HostPath: hostBin, ContainerPath: "/host/opt/patchgate/bin"}},
	})
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	st, err := h.WaitExited(ctx, id, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if logs := h.Logs(ctx, id); st.Status.ExitCode != 2 || !strings.Contains(logs.Stdout+logs.Stderr, "writable by group or others") {
		t.Errorf("install into a 0777 host directory: exit %d\n%s%s\nwant exit 2 and the refusal", st.Status.ExitCode, logs.Stdout, logs.Stderr)
	}
	if entries, err := os.ReadDir(hostBin); err != nil || len(entries) != 0 {
		t.Errorf("%s after the refusal: %v %v, want empty", hostBin, entries, err)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
