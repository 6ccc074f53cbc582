// Package psa holds what patchgate's Pod Security parity test (test/e2e, TestPSAParity) needs
// besides the runtime: Kubernetes Pod Security's own conformance fixtures, read from the
// pinned module k8s.io/pod-security-admission in the Go module cache, and a converter that
// turns each fixture Pod into the CRI pod sandbox and container configs kubelet would send
// (kubelet.go).
package psa

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The fixtures come from this module at this version, checked against this go.sum hash, so
// every run reads the same 144 files. Kubernetes generates them (TestFixtures in
// k8s.io/pod-security-admission/test) for each Pod Security version; FixtureVersion is the one
// that Kubernetes 1.34 enforces.
const (
	Module         = "k8s.io/pod-security-admission"
	ModuleVersion  = "v0.37.0"
	ModuleSum      = "h1:5lx9eMh47oWJy2EQDHJ82yoYj6/KiTomzzcpDS1be14="
	FixtureVersion = "v1.34"
)

// Levels are the Pod Security levels that have fixtures.
var Levels = []string{"baseline", "restricted"}

// ErrModuleUnavailable reports that the go command could not provide the fixture module
// (no go command, no module proxy and nothing cached).
var ErrModuleUnavailable = errors.New("pod-security-admission fixtures unavailable")

// Fixture is one conformance fixture: a Pod that the Pod Security level must admit (pass)
// or refuse (fail).
type Fixture struct {
	Level  string // "baseline" or "restricted"
	Expect string // "pass" or "fail"
	Name   string // the file name without .yaml, e.g. "capabilities_baseline0"
	Path   string
	Pod    *corev1.Pod
}

// ID names the fixture as its path under test/testdata: "baseline/v1.34/fail/privileged0".
func (f Fixture) ID() string {
	return f.Level + "/" + FixtureVersion + "/" + f.Expect + "/" + f.Name
}

// DownloadModule returns the directory of the pinned fixture module in the Go module cache,
// downloading it through the go command (GOPROXY) when it is not cached. The module's hash
// must be ModuleSum.
func DownloadModule(ctx context.Context) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("psa: the go command: %w", ErrModuleUnavailable)
	}
	cmd := exec.CommandContext(ctx, goBin, "mod", "download", "-json", Module+"@"+ModuleVersion)
	// Outside any module: the fixture module is not a dependency of patchgate.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var info struct {
		Dir   string
		Sum   string
		Error string
	}
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil {
		return "", fmt.Errorf("psa: go mod download %s@%s: %v %s: %w", Module, ModuleVersion, runErr, strings.TrimSpace(stderr.String()), ErrModuleUnavailable)
	}
	if info.Error != "" || runErr != nil {
		return "", fmt.Errorf("psa: go mod download %s@%s: %s %v: %w", Module, ModuleVersion, info.Error, runErr, ErrModuleUnavailable)
	}
	if info.Sum != ModuleSum {
		return "", fmt.Errorf("psa: %s@%s has hash %s, want %s", Module, ModuleVersion, info.Sum, ModuleSum)
	}
	return info.Dir, nil
}

// LoadFixtures reads every fixture of FixtureVersion under moduleDir, sorted by ID. Each file
// must decode strictly (no unknown or duplicate fields) into a v1 Pod.
func LoadFixtures(moduleDir string) ([]Fixture, error) {
	var out []Fixture
	for _, level := range Levels {
		for _, expect := range []string{"pass", "fail"} {
			dir := filepath.Join(moduleDir, "test", "testdata", level, FixtureVersion, expect)
			files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
			if err != nil {
				return nil, err
			}
			if len(files) == 0 {
				return nil, fmt.Errorf("psa: no fixtures in %s", dir)
			}
			for _, file := range files {
				pod, err := DecodePod(file)
				if err != nil {
					return nil, err
				}
				out = append(out, Fixture{Level: level, Expect: expect, Name: strings.TrimSuffix(filepath.Base(file), ".yaml"), Path: file, Pod: pod})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out, nil
}

// DecodePod decodes one fixture file strictly into a v1 Pod.
func DecodePod(file string) (*corev1.Pod, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(data, &pod); err != nil {
		return nil, fmt.Errorf("psa: %s: %w", file, err)
	}
	if pod.APIVersion != "v1" || pod.Kind != "Pod" {
		return nil, fmt.Errorf("psa: %s: apiVersion %q kind %q, want v1 Pod", file, pod.APIVersion, pod.Kind)
	}
	if pod.Name == "" || len(pod.Spec.Containers) == 0 {
		return nil, fmt.Errorf("psa: %s: a pod needs a name and a container", file)
	}
	return &pod, nil
}
