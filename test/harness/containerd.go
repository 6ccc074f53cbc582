package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxShimSocketDir is containerd's limit on the shim socket_dir length on Linux
// (core/runtime/v2/socket_linux.go, maxSocketDirLen).
const maxShimSocketDir = 42

// Options configure Start.
type Options struct {
	// Tools are the binaries to run; nil calls EnsureTools with zero ToolsOptions.
	Tools *Tools
	// BaseDir holds the private directory (default /tmp). Keep it short: the shim socket dir
	// must fit in 42 characters.
	BaseDir string
	// NRI is the NRI part of the config; the zero value is NRI enabled with containerd's
	// default timeouts and no validator.
	NRI NRIConfig
	// LogLevel is containerd's --log-level (default "info").
	LogLevel string
	// CNIBinDirs hold the CNI plugins for pods without host network (default: Debian's
	// /usr/lib/cni, or $PATCHGATE_E2E_CNI_BIN).
	CNIBinDirs []string
	// Snapshotter is "overlayfs" or "native"; default overlayfs, or native when BaseDir is
	// itself on overlayfs (overlay cannot stack on overlay), or $PATCHGATE_E2E_SNAPSHOTTER.
	Snapshotter string
	// BaseRuntimeSpec is a JSON OCI spec file rendered as the runc runtime's
	// base_runtime_spec (every application container starts from it; pod sandboxes do not).
	// Empty: containerd's built-in default.
	BaseRuntimeSpec string
	// Subnet is the pods' CNI range (default 192.0.2.0/24, TEST-NET-1, on a bridge with no
	// address). HostGateway puts the subnet's first address on the bridge, so the host
	// reaches pod IPs; a kubelet needs that for HTTP probes.
	Subnet      string
	HostGateway bool
	// Log receives the harness's progress lines; nil discards.
	Log io.Writer
}

// Timings are measured by Start and Restart.
type Timings struct {
	Ready  time.Duration // process start until CRI, ctr and the NRI socket answer
	Import time.Duration // building and importing both images
}

// Containerd is one private containerd. Its methods are safe for concurrent use except
// Start/Restart/Stop/Cleanup, which the caller serialises.
type Containerd struct {
	Config
	Tools        *Tools
	CgroupParent string // every pod's cgroup_parent, so Cleanup finds every cgroup
	Timings      Timings

	log        io.Writer
	mu         sync.Mutex
	cmd        *exec.Cmd
	exited     chan struct{}
	exitErr    error
	hostState  hostState
	cleanedUp  bool
	imagesDone bool
	procs      []*Process
}

// hostState records what existed on the host before the harness ran, so Cleanup removes only
// what the harness created.
type hostState struct {
	runContainerd  bool
	runContainerdS bool
	varLibCNI      bool
}

// ErrNotReady reports that containerd did not become ready in time or exited.
var ErrNotReady = errors.New("containerd not ready")

// Start creates a private directory, renders the config, starts containerd, waits until it
// is ready and imports the busybox and pause images. On error everything started so far is
// cleaned up. Call Cleanup when done, also after a failed test.
func Start(ctx context.Context, o Options) (*Containerd, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("harness: containerd, runc and cgroups need root: %w", ErrMissingPrerequisite)
	}
	if o.Tools == nil {
		t, err := EnsureTools(ctx, ToolsOptions{Log: o.Log})
		if err != nil {
			return nil, err
		}
		o.Tools = t
	}
	if o.BaseDir == "" {
		o.BaseDir = "/tmp"
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.Subnet == "" {
		o.Subnet = "192.0.2.0/24" // TEST-NET-1 (RFC 5737): never routed anywhere
	}
	if len(o.CNIBinDirs) == 0 {
		if d := os.Getenv("PATCHGATE_E2E_CNI_BIN"); d != "" {
			o.CNIBinDirs = []string{d}
		} else {
			o.CNIBinDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}
		}
	}
	if err := os.MkdirAll(o.BaseDir, 0o755); err != nil {
		return nil, err
	}
	if o.Snapshotter == "" {
		o.Snapshotter = os.Getenv("PATCHGATE_E2E_SNAPSHOTTER")
	}
	if o.Snapshotter == "" {
		o.Snapshotter = "overlayfs"
		if onOverlay(o.BaseDir) {
			o.Snapshotter = "native"
		}
	}
	if swept, err := SweepStale(ctx, o.BaseDir); len(swept) > 0 || err != nil {
		fmt.Fprintf(o.Log, "harness: removed stale instances %v (errors: %v)\n", swept, err)
	}
	dir, err := os.MkdirTemp(o.BaseDir, "pge2e-")
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	id := strings.TrimPrefix(filepath.Base(dir), "pge2e-")
	h := &Containerd{
		Config: Config{
			Paths:           newPaths(dir),
			Containerd:      o.Tools.ContainerdVersion,
			BaseRuntimeSpec: o.BaseRuntimeSpec,
			Runc:            o.Tools.Runc,
			CNIBinDirs:      o.CNIBinDirs,
			BridgeName:      "pge2e" + randHex(4),
			Subnet:          o.Subnet,
			HostGateway:     o.HostGateway,
			LogLevel:        o.LogLevel,
			NRI:             o.NRI,
			SandboxImage:    PauseImageRef,
			Snapshotter:     o.Snapshotter,
		},
		Tools:        o.Tools,
		CgroupParent: "/pge2e-" + id,
		log:          o.Log,
		hostState:    observeHost(),
	}
	if !HasShimSocketDir(h.Containerd) {
		// Before 2.4 the shim sockets go to /run/containerd/s (named by a hash of this
		// instance's address); Cleanup removes that directory only if it created it and it is
		// empty.
		h.ShimSocketDir = ""
	}
	if len(h.ShimSocketDir) > maxShimSocketDir {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("harness: shim socket dir %s is longer than containerd's limit of %d characters; use a shorter BaseDir", h.ShimSocketDir, maxShimSocketDir)
	}
	for _, d := range []string{h.Root, h.State, h.Temp, h.ShimSocketDir, h.RuncRoot, filepath.Dir(h.NRISocket),
		h.NRIPluginDir, h.NRIConfDir, h.CNIConfDir, h.CNIDataDir, h.CDIDir, h.OptDir, h.PodLogDir, h.ImageDir} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, h.failStart(ctx, err)
		}
	}
	// The pause process runs as 65535 and the shim's bundle paths must be traversable. Root
	// and state get containerd's own modes (0711, as containerd creates them): in a pod with a
	// user namespace runc's container init, no longer host root, remounts the rootfs under the
	// state directory and fails with "permission denied" behind a 0700 directory.
	for _, d := range []string{h.Dir, h.Root, h.State} {
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, h.failStart(ctx, err)
		}
	}
	if err := writeOwnerPID(h.Dir); err != nil {
		return nil, h.failStart(ctx, err)
	}
	if err := h.writeInstanceFile(); err != nil {
		return nil, h.failStart(ctx, err)
	}
	if err := h.start(ctx); err != nil {
		return nil, h.failStart(ctx, err)
	}
	if err := h.importImages(ctx); err != nil {
		return nil, h.failStart(ctx, err)
	}
	return h, nil
}

func (h *Containerd) failStart(ctx context.Context, err error) error {
	logTail := h.LogTail(30)
	if cerr := h.Cleanup(ctx); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if logTail != "" {
		return fmt.Errorf("%w\ncontainerd log (last lines):\n%s", err, logTail)
	}
	return err
}

// start renders the config and runs containerd until it is ready.
func (h *Containerd) start(ctx context.Context) error {
	cfg, err := h.Config.TOML()
	if err != nil {
		return err
	}
	if err := os.WriteFile(h.ConfigFile, []byte(cfg), 0o600); err != nil {
		return err
	}
	cni, err := h.Config.CNIConfList()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(h.CNIConfDir, "10-pge2e.conflist"), cni, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(h.CrictlConfig, []byte(h.Config.crictlConfig()), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(h.ContainerdLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "==== harness: starting containerd at %s\n", time.Now().UTC().Format(time.RFC3339Nano))
	// Not CommandContext: containerd must outlive the ctx of a single call; Stop ends it.
	cmd := exec.Command(h.Tools.Containerd, "--config", h.ConfigFile, "--log-level", h.LogLevel)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = h.env()
	cmd.Dir = h.Dir
	// Its own process group: a ^C to the test reaches the test, which then cleans up in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("harness: starting containerd: %w", err)
	}
	exited := make(chan struct{})
	h.mu.Lock()
	h.cmd, h.exited, h.exitErr = cmd, exited, nil
	h.mu.Unlock()
	go func() {
		err := cmd.Wait()
		_ = logf.Close()
		h.mu.Lock()
		h.exitErr = err
		h.mu.Unlock()
		close(exited)
	}()
	fmt.Fprintf(h.log, "harness: containerd pid %d, dir %s\n", cmd.Process.Pid, h.Dir)
	if err := h.waitReady(ctx, exited); err != nil {
		return err
	}
	h.Timings.Ready = time.Since(began)
	fmt.Fprintf(h.log, "harness: containerd ready in %s\n", h.Timings.Ready.Round(time.Millisecond))
	return nil
}

func (h *Containerd) env() []string {
	env := []string{"PATH=" + h.Tools.BinDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR=" + h.Temp}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "TMPDIR=") || strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitReady polls until the gRPC socket accepts, CRI answers `crictl version`, and (when NRI
// is enabled) the NRI socket exists.
func (h *Containerd) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last string
	for {
		select {
		case <-exited:
			h.mu.Lock()
			err := h.exitErr
			h.mu.Unlock()
			return fmt.Errorf("harness: containerd exited during start (%v): %w", err, ErrNotReady)
		case <-ctx.Done():
			return fmt.Errorf("harness: containerd not ready after 60s (%s): %w", last, ErrNotReady)
		case <-time.After(25 * time.Millisecond):
		}
		if !dialable(h.Address) {
			last = "gRPC socket not accepting"
			continue
		}
		if r := h.Crictl(ctx, "version"); r.ExitCode != 0 {
			last = "crictl version: " + strings.TrimSpace(r.Stderr)
			continue
		}
		// Only stat the NRI socket: a probe connection would make containerd log a failed
		// plugin registration.
		if fi, err := os.Stat(h.NRISocket); !h.NRI.Disable && (err != nil || fi.Mode()&os.ModeSocket == 0) {
			last = "no NRI socket"
			continue
		}
		return nil
	}
}

func dialable(sock string) bool {
	c, err := net.DialTimeout("unix", sock, 200*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// Running reports whether the containerd process is alive.
func (h *Containerd) Running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.exited == nil {
		return false
	}
	select {
	case <-h.exited:
		return false
	default:
		return true
	}
}

// PID is containerd's process id, or 0 when it is not running.
func (h *Containerd) PID() int {
	if !h.Running() {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cmd.Process.Pid
}

// Stop ends containerd with SIGTERM (SIGKILL after 10 s). Containers and their shims keep
// running, as on a real node; Restart reconnects to them.
func (h *Containerd) Stop(ctx context.Context) error {
	h.mu.Lock()
	cmd, exited := h.cmd, h.exited
	h.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-exited
	}
	fmt.Fprintf(h.log, "harness: containerd pid %d stopped\n", cmd.Process.Pid)
	return nil
}

// Kill ends containerd with SIGKILL, like a crash; Restart brings it back.
func (h *Containerd) Kill() {
	h.mu.Lock()
	cmd, exited := h.cmd, h.exited
	h.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
	fmt.Fprintf(h.log, "harness: containerd pid %d killed\n", cmd.Process.Pid)
}

// Restart stops containerd and starts it again, after applying change (if any) to the
// config; for example a test turns the default validator on between runs.
func (h *Containerd) Restart(ctx context.Context, change func(*Config)) error {
	if h.cleanedUp {
		return errors.New("harness: Restart after Cleanup")
	}
	if err := h.Stop(ctx); err != nil {
		return err
	}
	if change != nil {
		change(&h.Config)
	}
	return h.start(ctx)
}

// LogTail returns the last n lines of containerd's log.
func (h *Containerd) LogTail(n int) string {
	data, err := os.ReadFile(h.ContainerdLog)
	if err != nil {
		return ""
	}
	return lastLines(string(data), n)
}

// Log returns containerd's whole log (all runs).
func (h *Containerd) Log() string {
	data, _ := os.ReadFile(h.ContainerdLog)
	return string(data)
}

// importImages builds the pause and busybox images and imports them into the k8s.io
// namespace that CRI uses.
func (h *Containerd) importImages(ctx context.Context) error {
	if h.imagesDone {
		return nil
	}
	began := time.Now()
	pause, err := PauseImage(h.Tools.Pause)
	if err != nil {
		return err
	}
	busybox, err := BusyboxImage(ctx, h.Tools.Busybox)
	if err != nil {
		return err
	}
	for _, spec := range []ImageSpec{pause, busybox} {
		if err := h.ImportImage(ctx, spec); err != nil {
			return err
		}
	}
	h.imagesDone = true
	h.Timings.Import = time.Since(began)
	return nil
}

// ImportImage writes spec as an OCI image-layout tarball and imports it with
// `ctr -n k8s.io images import`, so CRI can run it without a registry.
func (h *Containerd) ImportImage(ctx context.Context, spec ImageSpec) error {
	var buf bytes.Buffer
	if err := WriteImageLayout(&buf, spec); err != nil {
		return err
	}
	name := strings.NewReplacer("/", "_", ":", "_").Replace(spec.Ref) + ".tar"
	p := filepath.Join(h.ImageDir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		return err
	}
	r := h.Ctr(ctx, "-n", "k8s.io", "images", "import", "--local", "--snapshotter", h.Snapshotter, p)
	if r.ExitCode != 0 {
		return fmt.Errorf("harness: importing %s: %w", spec.Ref, r.Err())
	}
	fmt.Fprintf(h.log, "harness: imported %s\n", spec.Ref)
	return nil
}

// ImportArchive imports an OCI image-layout archive written elsewhere (make
// image's dist/patchgate-image.oci.tar, an image index over several
// platforms) into the k8s.io namespace CRI uses, under the names its
// index.json gives (org.opencontainers.image.ref.name). --all-platforms
// keeps the content of every platform, as a registry pull of the index
// would; this machine's platform is unpacked. No registry is involved.
func (h *Containerd) ImportArchive(ctx context.Context, path string) error {
	r := h.Ctr(ctx, "-n", "k8s.io", "images", "import", "--local", "--all-platforms", "--snapshotter", h.Snapshotter, path)
	if r.ExitCode != 0 {
		return fmt.Errorf("harness: importing %s: %w", path, r.Err())
	}
	fmt.Fprintf(h.log, "harness: imported %s\n", path)
	return nil
}

// writeOwnerPID records the process that owns the directory, so SweepStale can clean up
// after a test binary that was killed before its cleanup ran.
func writeOwnerPID(dir string) error {
	return os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
}

// onOverlay reports whether dir is on an overlay filesystem (statfs magic OVERLAYFS_SUPER_MAGIC).
func onOverlay(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == 0x794c7630
}

func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}
