package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// KubernetesVersion is the Kubernetes release the single-node cluster of test/k8se2e runs
// (issue 14). It must match test/tools/kubernetes-<version>/go.mod.
const KubernetesVersion = "v1.37.2"

// kubeRecipe changes whenever the way the Kubernetes binaries are built changes.
const kubeRecipe = "patchgate-k8s-tools/1"

// kubePackages are the binaries of a single-node cluster, built in one `go build` so that
// the packages they share (most of k8s.io) compile once. etcd is the server module's main
// package at the release k8s.io/kubernetes v1.37.2 itself requires (v3.7.0), so it sits in
// the same module without a second dependency graph; go build names it "server".
var kubePackages = []string{
	"k8s.io/kubernetes/cmd/kube-apiserver",
	"k8s.io/kubernetes/cmd/kube-controller-manager",
	"k8s.io/kubernetes/cmd/kube-scheduler",
	"k8s.io/kubernetes/cmd/kubelet",
	"k8s.io/kubernetes/cmd/kubectl",
	"go.etcd.io/etcd/server/v3",
}

// kubeLDFlags stamps the release the way Kubernetes' own build does (hack/lib/version.sh):
// without it every binary reports v0.0.0-master, and helm refuses a chart whose kubeVersion
// that does not satisfy.
func kubeLDFlags(version string) string {
	var minor string
	if _, err := fmt.Sscanf(version, "v1.%s", &minor); err == nil {
		minor, _, _ = strings.Cut(minor, ".")
	}
	ld := "-s -w"
	for _, p := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		ld += fmt.Sprintf(" -X %[1]s.gitVersion=%[2]s -X %[1]s.gitMajor=1 -X %[1]s.gitMinor=%[3]s -X %[1]s.gitTreeState=clean -X %[1]s.buildDate=1970-01-01T00:00:00Z", p, version, minor)
	}
	return ld
}

// KubeTools are the absolute paths of the Kubernetes binaries.
type KubeTools struct {
	Dir               string // $PATCHGATE_CACHE/k8s/<version>
	APIServer         string
	ControllerManager string
	Scheduler         string
	Kubelet           string
	Kubectl           string
	Etcd              string
	Rebuilt           bool          // true when EnsureKubernetes had to build them
	BuildTime         time.Duration // how long that build took
}

func (k *KubeTools) all() []string {
	return []string{k.APIServer, k.ControllerManager, k.Scheduler, k.Kubelet, k.Kubectl, k.Etcd}
}

// KubeToolsOptions controls EnsureKubernetes; the zero value finds the repository from the
// working directory and caches under DefaultCacheDir()/k8s/<version>.
type KubeToolsOptions struct {
	RepoRoot string
	CacheDir string // default DefaultCacheDir()/k8s
	Log      io.Writer
}

// EnsureKubernetes returns the Kubernetes binaries, building them from the Go module proxy
// into the cache when they are missing or out of date. A cold build takes tens of minutes on
// two loaded cores (it compiles most of k8s.io), so it runs at the lowest CPU priority; a
// warm check takes milliseconds. Concurrent callers serialise on a lock file in the cache.
func EnsureKubernetes(ctx context.Context, o KubeToolsOptions) (*KubeTools, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.RepoRoot == "" {
		root, err := FindRepoRoot()
		if err != nil {
			return nil, err
		}
		o.RepoRoot = root
	}
	if o.CacheDir == "" {
		o.CacheDir = filepath.Join(DefaultCacheDir(), "k8s")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("harness: the go command: %w", ErrMissingPrerequisite)
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("harness: cache: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(o.CacheDir, "build.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	dir := filepath.Join(o.CacheDir, KubernetesVersion)
	k := &KubeTools{
		Dir:               dir,
		APIServer:         filepath.Join(dir, "kube-apiserver"),
		ControllerManager: filepath.Join(dir, "kube-controller-manager"),
		Scheduler:         filepath.Join(dir, "kube-scheduler"),
		Kubelet:           filepath.Join(dir, "kubelet"),
		Kubectl:           filepath.Join(dir, "kubectl"),
		Etcd:              filepath.Join(dir, "etcd"),
	}
	b := toolBuild{
		modDir:   filepath.Join("test", "tools", "kubernetes-"+KubernetesVersion),
		packages: kubePackages,
		ldflags:  kubeLDFlags(KubernetesVersion),
	}
	stamp, err := toolsStamp(ctx, goBin, o.RepoRoot, kubeRecipe, []toolBuild{b})
	if err != nil {
		return nil, err
	}
	if upToDate(k.Dir, stamp, k.all()...) {
		return k, nil
	}
	start := time.Now()
	fmt.Fprintf(o.Log, "harness: building Kubernetes %s (%s) into %s; a cold build takes tens of minutes\n",
		KubernetesVersion, strings.Join(kubePackages, " "), dir)
	if err := buildKube(ctx, goBin, o.RepoRoot, b, dir, stamp, o.Log); err != nil {
		return nil, err
	}
	k.Rebuilt, k.BuildTime = true, time.Since(start)
	fmt.Fprintf(o.Log, "harness: Kubernetes built in %s\n", k.BuildTime.Round(time.Second))
	return k, nil
}

// buildKube builds into a fresh directory next to dir and swaps it in, so an interrupted
// build never leaves a half-written set behind a valid stamp.
func buildKube(ctx context.Context, goBin, repoRoot string, b toolBuild, dir, stamp string, log io.Writer) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	args := append([]string{"-n", "19", goBin, "build", "-trimpath", "-ldflags", b.ldflags, "-o", tmp + string(os.PathSeparator)}, b.packages...)
	cmd := exec.CommandContext(ctx, "nice", args...)
	cmd.Dir = filepath.Join(repoRoot, b.modDir)
	// Static binaries, as Kubernetes releases them (hack/lib/golang.sh builds every server
	// binary and kubectl with CGO_ENABLED=0).
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=readonly"))
	var stderr bytes.Buffer
	cmd.Stdout = log
	cmd.Stderr = io.MultiWriter(log, &stderr)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("harness: go build in %s: %w: %s", b.modDir, err, lastLines(stderr.String(), 20))
	}
	if err := os.Rename(filepath.Join(tmp, "server"), filepath.Join(tmp, "etcd")); err != nil {
		return fmt.Errorf("harness: etcd binary: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".stamp"), []byte(stamp+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755) // MkdirTemp made it 0700
}
