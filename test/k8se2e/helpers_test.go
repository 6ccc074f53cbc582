//go:build e2e

package k8se2e

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/test/harness"
)

// imageRepository is the repository `make image` tags the image with.
const imageRepository = "ghcr.io/patchgate/patchgate"

// imageRef reads the reference of the image in an OCI archive (`make image`): the index's
// org.opencontainers.image.ref.name, a full reference or only a tag.
func imageRef(archive string) (string, error) {
	f, err := os.Open(archive)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("%s: no index.json", archive)
		}
		if err != nil {
			return "", err
		}
		if strings.TrimPrefix(hdr.Name, "./") != "index.json" {
			continue
		}
		var idx struct {
			Manifests []struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		if err := json.NewDecoder(tr).Decode(&idx); err != nil {
			return "", fmt.Errorf("%s: index.json: %w", archive, err)
		}
		for _, m := range idx.Manifests {
			for _, k := range []string{"io.containerd.image.name", "org.opencontainers.image.ref.name"} {
				if ref := m.Annotations[k]; ref != "" {
					if !strings.Contains(ref, "/") {
						ref = imageRepository + ":" + ref
					}
					return ref, nil
				}
			}
		}
		return "", fmt.Errorf("%s: index.json names no image", archive)
	}
}

// importArchive loads the image archive into CRI's namespace and makes sure it is there
// under ref.
func importArchive(ctx context.Context, h *harness.Containerd, archive, ref string) error {
	if err := h.ImportArchive(ctx, archive); err != nil {
		return err
	}
	r := h.Ctr(ctx, "-n", "k8s.io", "images", "ls", "-q")
	if err := r.Err(); err != nil {
		return err
	}
	for _, l := range strings.Fields(r.Stdout) {
		if l == ref {
			return nil
		}
	}
	return fmt.Errorf("after importing %s, no image %s (have: %s)", archive, ref, strings.Join(strings.Fields(r.Stdout), ", "))
}

// kubectl runs kubectl and fails the test on an error.
func kubectl(t *testing.T, k *harness.Kube, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := k.Kubectl(ctx, args...)
	if err := r.Err(); err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return r.Stdout
}

// apply creates objects from a YAML document with kubectl apply -f.
func apply(t *testing.T, k *harness.Kube, name, doc string) {
	t.Helper()
	p := filepath.Join(k.Dir, name+".yaml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl(t, k, "apply", "-f", p)
}

// eventually polls ok every second until it returns nil or timeout passes, then fails with
// its last error.
func eventually(t *testing.T, timeout time.Duration, what string, ok func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := ok()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(time.Second)
	}
}

// podPhase is what the test reads of a pod: its phase and each container's state.
type podState struct {
	Phase   string
	Running map[string]bool
	Waiting map[string]string // container: reason (CreateContainerError, ...)
	Ready   bool
	// Ran lists containers that once ran: a last state that is not a failed start (a
	// container the OCI hook refuses ends as StartError, never started).
	Ran map[string]string
}

func getPod(ctx context.Context, k *harness.Kube, ns, name string) (*podState, error) {
	r := k.Kubectl(ctx, "get", "pod", "-n", ns, name, "-o", "json")
	if err := r.Err(); err != nil {
		return nil, err
	}
	var p struct {
		Status struct {
			Phase      string `json:"phase"`
			Conditions []struct {
				Type   string `json:"type"`
				Status string `json:"status"`
			} `json:"conditions"`
			ContainerStatuses []struct {
				Name  string `json:"name"`
				State struct {
					Running *struct{} `json:"running"`
					Waiting *struct {
						Reason string `json:"reason"`
					} `json:"waiting"`
				} `json:"state"`
				LastState struct {
					Terminated *struct {
						Reason string `json:"reason"`
					} `json:"terminated"`
				} `json:"lastState"`
			} `json:"containerStatuses"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
		return nil, err
	}
	s := &podState{Phase: p.Status.Phase, Running: map[string]bool{}, Waiting: map[string]string{}, Ran: map[string]string{}}
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" && c.Status == "True" {
			s.Ready = true
		}
	}
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Running != nil {
			s.Running[c.Name] = true
		}
		if c.State.Waiting != nil {
			s.Waiting[c.Name] = c.State.Waiting.Reason
		}
		if t := c.LastState.Terminated; t != nil && t.Reason != "StartError" {
			s.Ran[c.Name] = t.Reason
		}
	}
	return s, nil
}

// waitReady waits for the pod's Ready condition; on a timeout it fails with what
// `kubectl describe pod` says.
func waitReady(t *testing.T, k *harness.Kube, ns, name string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Minute)
	defer cancel()
	r := k.Kubectl(ctx, "-n", ns, "wait", "--for=condition=Ready", "pod/"+name, "--timeout="+timeout.String())
	if err := r.Err(); err != nil {
		d := k.Kubectl(ctx, "-n", ns, "describe", "pod", name)
		t.Fatalf("pod %s/%s not ready: %v\n%s", ns, name, err, lastLines(d.Stdout, 25))
	}
}

// helm runs the helm binary scripts/helm.sh builds (cached outside the checkout), with its
// own cache, config and data directories under dir so the user's are not read or written.
type helmCmd struct {
	bin, kubeconfig, dir string
}

func newHelm(t *testing.T, repo string, k *harness.Kube) *helmCmd {
	t.Helper()
	if bin := os.Getenv("PATCHGATE_HELM"); bin != "" {
		return &helmCmd{bin: bin, kubeconfig: k.Kubeconfig, dir: filepath.Join(k.Dir, "helm")}
	}
	cmd := exec.Command(filepath.Join(repo, "scripts", "helm.sh"))
	cmd.Env = append(os.Environ(), "HELM_SH_PRINT_PATH=1")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("scripts/helm.sh: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("scripts/helm.sh: %v", err)
	}
	return &helmCmd{bin: strings.TrimSpace(string(out)), kubeconfig: k.Kubeconfig, dir: filepath.Join(k.Dir, "helm")}
}

func (hc *helmCmd) run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hc.bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+hc.kubeconfig,
		"HELM_CACHE_HOME="+hc.dir+"/cache", "HELM_CONFIG_HOME="+hc.dir+"/config", "HELM_DATA_HOME="+hc.dir+"/data")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
