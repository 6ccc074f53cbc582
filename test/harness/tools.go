package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Versions of the parts the harness runs. They must match the tool pins in test/tools/go.mod.
const (
	ContainerdVersion = "v2.4.2"
	CrictlVersion     = "v1.37.0"
)

// The containerd releases the scenario matrix runs (issue 11): the newest patch release of each
// minor version that the Go module proxy serves, checked with
// `curl -s https://proxy.golang.org/github.com/containerd/containerd/v2/@v/list` (and the
// v1 module's list for 1.7). Each older one is pinned in its own module
// test/tools/containerd-<version>; v2.4.2 is test/tools itself.
const (
	Containerd17 = "v1.7.35" // NRI v0.8.0; NRI off unless configured; config version 2
	Containerd20 = "v2.0.14" // NRI v0.8.0; config version 3
	Containerd21 = "v2.1.9"  // NRI v0.8.0; config version 3
	Containerd22 = "v2.2.9"  // NRI v0.11.0: validator, default_validator, required_plugins
	Containerd24 = ContainerdVersion
)

// ContainerdVersions lists every containerd the harness can build, oldest first.
var ContainerdVersions = []string{Containerd17, Containerd20, Containerd21, Containerd22, Containerd24}

// NRI variants of the containerd build. Stock containerd v2.4.2 links NRI v0.12.3, which
// ignores a plugin's failure policy (a timeout or crash fails open); the validator plus the
// default validator's required_plugins is what fails closed there. The v0.12.5 variant links
// NRI v0.12.5, which honours stub.WithFailurePolicy. Only v2.4.2 has variants.
const (
	NRIStock   = "stock"       // test/tools: containerd as released (NRI v0.12.3)
	NRIv0_12_5 = "nri-v0.12.5" // test/tools/nri-v0.12.5: the same pins plus NRI v0.12.5
)

// buildRecipe changes whenever the way the tools are built changes, so cached binaries from an
// older recipe are rebuilt.
const buildRecipe = "patchgate-e2e-tools/1"

// ErrMissingPrerequisite reports something the harness needs that this machine lacks (runc,
// busybox-static, the go command). Tests skip on it, or fail under CI=true.
var ErrMissingPrerequisite = errors.New("missing prerequisite")

// Tools holds the absolute paths of the binaries the harness runs.
type Tools struct {
	BinDir     string // containerd, ctr, containerd-shim-runc-v2, crictl
	Containerd string
	Ctr        string
	Shim       string
	Crictl     string
	Runc       string // Debian's runc, or $PATCHGATE_E2E_RUNC
	Pause      string // the static pause binary for the sandbox image
	Busybox    string // Debian's busybox-static, or $PATCHGATE_E2E_BUSYBOX
	Variant    string // NRIStock or NRIv0_12_5
	// ContainerdVersion is the release built ("v1.7.35", ..., "v2.4.2"); Config renders the
	// config this version reads.
	ContainerdVersion string
	Rebuilt           bool // true when EnsureTools had to build containerd and crictl
}

// ToolsOptions controls EnsureTools. The zero value finds the repository from the working
// directory, caches under $PATCHGATE_CACHE/e2e (default /var/cache/patchgate/e2e, outside
// the checkout, so a fresh clone on the same machine reuses the build) and builds the stock
// variant.
type ToolsOptions struct {
	RepoRoot string // the patchgate checkout; found from the working directory when empty
	CacheDir string // default DefaultCacheDir()/e2e
	Variant  string // NRIStock (default) or NRIv0_12_5; $PATCHGATE_E2E_NRI overrides the default
	// Containerd is the containerd release to build, one of ContainerdVersions; default
	// ContainerdVersion (v2.4.2). Older releases exist only as stock builds.
	Containerd string
	Log        io.Writer // build progress; nil discards
}

// toolBuild is one `go build` of the tool set: the packages, in the module that pins them,
// with the version stamped in, so that containerd reports its release (NRI's stub infers
// the runtime's NRI version from it; a build from a module reports "+unknown" otherwise).
type toolBuild struct {
	modDir   string // relative to the repository
	packages []string
	ldflags  string
}

const crictlPackage = "sigs.k8s.io/cri-tools/cmd/crictl"

// toolBuilds returns the builds that make the tool set of one containerd version and NRI
// variant. v2.4.2 builds with crictl in one module, as before; an older containerd is built
// from its own module, holding only containerd's own pins (so it links what that release
// links, NRI v0.8.0 for 1.7-2.1), and crictl v1.37.0 from test/tools, the same for every
// version.
func toolBuilds(version, variant string) ([]toolBuild, error) {
	mod := "github.com/containerd/containerd/v2"
	if strings.HasPrefix(version, "v1.") {
		mod = "github.com/containerd/containerd"
	}
	pkgs := []string{mod + "/cmd/containerd", mod + "/cmd/ctr", mod + "/cmd/containerd-shim-runc-v2"}
	ld := "-X " + mod + "/version.Version=" + version
	crictlLD := "-X sigs.k8s.io/cri-tools/pkg/version.Version=" + CrictlVersion
	if version == ContainerdVersion {
		dir := filepath.Join("test", "tools")
		switch variant {
		case NRIStock:
		case NRIv0_12_5:
			dir = filepath.Join(dir, NRIv0_12_5)
		default:
			return nil, fmt.Errorf("harness: unknown NRI variant %q (want %q or %q)", variant, NRIStock, NRIv0_12_5)
		}
		return []toolBuild{{modDir: dir, packages: append(pkgs, crictlPackage), ldflags: ld + " " + crictlLD}}, nil
	}
	if !slices.Contains(ContainerdVersions, version) {
		return nil, fmt.Errorf("harness: containerd %q is not one the harness builds (%s)", version, strings.Join(ContainerdVersions, ", "))
	}
	if variant != NRIStock {
		return nil, fmt.Errorf("harness: NRI variant %q exists only for containerd %s", variant, ContainerdVersion)
	}
	return []toolBuild{
		{modDir: filepath.Join("test", "tools", "containerd-"+version), packages: pkgs, ldflags: ld},
		{modDir: filepath.Join("test", "tools"), packages: []string{crictlPackage}, ldflags: crictlLD},
	}, nil
}

// binDirName is the cache directory of one tool set, keyed by version (and variant); the
// stamp inside keys it by recipe, Go version and pins.
func binDirName(version, variant string) string {
	if version == ContainerdVersion {
		return "bin-" + variant // as before the matrix, so existing caches stay valid
	}
	return "bin-containerd-" + version
}

// EnsureTools returns the harness's binaries, building containerd, ctr, the runc shim and
// crictl into the cache when they are missing or out of date (a cold build takes minutes; a
// warm check takes milliseconds). Concurrent callers serialise on a lock file in the cache.
func EnsureTools(ctx context.Context, o ToolsOptions) (*Tools, error) {
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
		o.CacheDir = filepath.Join(DefaultCacheDir(), "e2e")
	}
	if o.Variant == "" {
		o.Variant = os.Getenv("PATCHGATE_E2E_NRI")
	}
	if o.Variant == "" {
		o.Variant = NRIStock
	}
	if o.Containerd == "" {
		o.Containerd = ContainerdVersion
	}
	builds, err := toolBuilds(o.Containerd, o.Variant)
	if err != nil {
		return nil, err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("harness: the go command: %w", ErrMissingPrerequisite)
	}
	t := &Tools{Variant: o.Variant, ContainerdVersion: o.Containerd}
	if t.Runc, err = lookTool("PATCHGATE_E2E_RUNC", "runc", "apt-get install runc"); err != nil {
		return nil, err
	}
	if t.Busybox, err = lookTool("PATCHGATE_E2E_BUSYBOX", "busybox", "apt-get install busybox-static"); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("harness: cache: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(o.CacheDir, "build.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	t.BinDir = filepath.Join(o.CacheDir, binDirName(o.Containerd, o.Variant))
	t.Containerd = filepath.Join(t.BinDir, "containerd")
	t.Ctr = filepath.Join(t.BinDir, "ctr")
	t.Shim = filepath.Join(t.BinDir, "containerd-shim-runc-v2")
	t.Crictl = filepath.Join(t.BinDir, "crictl")

	stamp, err := toolsStamp(ctx, goBin, o.RepoRoot, buildRecipe, builds)
	if err != nil {
		return nil, err
	}
	if !upToDate(t.BinDir, stamp, t.Containerd, t.Ctr, t.Shim, t.Crictl) {
		start := time.Now()
		fmt.Fprintf(o.Log, "harness: building containerd %s and crictl %s (NRI %s) into %s; a cold build takes a few minutes\n",
			o.Containerd, CrictlVersion, o.Variant, t.BinDir)
		if err := buildTools(ctx, goBin, o.RepoRoot, builds, t.BinDir, stamp, o.Log); err != nil {
			return nil, err
		}
		t.Rebuilt = true
		fmt.Fprintf(o.Log, "harness: tools built in %s\n", time.Since(start).Round(100*time.Millisecond))
	}
	t.Pause = filepath.Join(o.CacheDir, "pause")
	// The go command's own cache makes this a no-op link check when nothing changed.
	if err := goBuild(ctx, goBin, o.RepoRoot, t.Pause, o.Log, "./test/harness/pause"); err != nil {
		return nil, fmt.Errorf("harness: building the pause binary: %w", err)
	}
	return t, nil
}

// DefaultCacheDir is where heavy builds (containerd, crictl) are cached, outside any checkout
// and keyed inside by version and build recipe: $PATCHGATE_CACHE, else /var/cache/patchgate.
func DefaultCacheDir() string {
	if d := os.Getenv("PATCHGATE_CACHE"); d != "" {
		return d
	}
	return "/var/cache/patchgate"
}

// FindRepoRoot walks up from the working directory to the patchgate module's go.mod.
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte("module github.com/patchgate/patchgate\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("harness: not inside the patchgate repository (no go.mod for github.com/patchgate/patchgate above the working directory)")
		}
		dir = parent
	}
}

func lookTool(env, name, hint string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("harness: $%s: %w", env, err)
		}
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		// Debian installs runc to /usr/sbin, which a non-login PATH may lack.
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/bin", "/sbin"} {
			if _, serr := os.Stat(filepath.Join(dir, name)); serr == nil {
				return filepath.Join(dir, name), nil
			}
		}
		return "", fmt.Errorf("harness: %s not found (%s): %w", name, hint, ErrMissingPrerequisite)
	}
	return filepath.Abs(p)
}

// toolsStamp identifies a build: the recipe, the go version, and each module's pins, packages
// and flags.
func toolsStamp(ctx context.Context, goBin, repoRoot, recipe string, builds []toolBuild) (string, error) {
	h := sha256.New()
	// The first build is hashed exactly as before the matrix (recipe, flags, packages, go
	// env, pins), so an existing v2.4.2 cache stays valid.
	fmt.Fprintf(h, "%s\n%s\n%s\n", recipe, builds[0].ldflags, strings.Join(builds[0].packages, " "))
	out, err := exec.CommandContext(ctx, goBin, "env", "GOVERSION", "GOOS", "GOARCH").Output()
	if err != nil {
		return "", fmt.Errorf("harness: go env: %w", err)
	}
	h.Write(out)
	for i, b := range builds {
		if i > 0 {
			fmt.Fprintf(h, "build %d %s\n%s\n%s\n", i, b.modDir, b.ldflags, strings.Join(b.packages, " "))
		}
		for _, f := range []string{"go.mod", "go.sum"} {
			data, err := os.ReadFile(filepath.Join(repoRoot, b.modDir, f))
			if err != nil {
				return "", fmt.Errorf("harness: tools module: %w", err)
			}
			fmt.Fprintf(h, "%s %d\n", f, len(data))
			h.Write(data)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// upToDate says whether dir's .stamp is stamp and every binary is there and executable.
func upToDate(dir, stamp string, binaries ...string) bool {
	data, err := os.ReadFile(filepath.Join(dir, ".stamp"))
	if err != nil || strings.TrimSpace(string(data)) != stamp {
		return false
	}
	for _, p := range binaries {
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// buildTools builds into a fresh directory next to binDir and swaps it in, so an interrupted
// build never leaves a half-written set behind a valid stamp.
func buildTools(ctx context.Context, goBin, repoRoot string, builds []toolBuild, binDir, stamp string, log io.Writer) error {
	tmp, err := os.MkdirTemp(filepath.Dir(binDir), filepath.Base(binDir)+".tmp-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	for _, b := range builds {
		args := append([]string{"build", "-trimpath", "-ldflags", b.ldflags, "-o", tmp + string(os.PathSeparator)}, b.packages...)
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = filepath.Join(repoRoot, b.modDir)
		// Static binaries: the shim and containerd need no libc, as in containerd's own releases
		// of the shim; cgo-only plugins (btrfs) are left out, the overlayfs snapshotter is used.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=readonly"))
		var stderr bytes.Buffer
		cmd.Stdout = log
		cmd.Stderr = io.MultiWriter(log, &stderr)
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("harness: go build in %s: %w: %s", b.modDir, err, lastLines(stderr.String(), 20))
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, ".stamp"), []byte(stamp+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(binDir); err != nil {
		return err
	}
	return os.Rename(tmp, binDir)
}

// BuildPackage builds a package of the patchgate module (e.g. "./cmd/patchgate") as a static
// binary (CGO_ENABLED=0) at out, for tests and the demo that run it next to containerd or as
// a hook. The go command's cache makes a rebuild of an unchanged package cheap.
func BuildPackage(ctx context.Context, pkg, out string) error {
	root, err := FindRepoRoot()
	if err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("harness: the go command: %w", ErrMissingPrerequisite)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := goBuild(ctx, goBin, root, out, io.Discard, pkg); err != nil {
		return fmt.Errorf("harness: building %s: %w", pkg, err)
	}
	return nil
}

func goBuild(ctx context.Context, goBin, dir, out string, log io.Writer, pkg string) error {
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stdout = log
	cmd.Stderr = io.MultiWriter(log, &stderr)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, lastLines(stderr.String(), 20))
	}
	return nil
}

// lockFile takes an exclusive flock, polling so that ctx can cancel the wait.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("harness: lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("harness: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
