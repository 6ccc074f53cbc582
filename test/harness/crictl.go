package harness

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
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Result is the outcome of one crictl or ctr run.
type Result struct {
	Args     []string
	Stdout   string
	Stderr   string // with containerd's cgroup v1 deprecation warning removed
	ExitCode int    // -1 when the command could not be run at all
	Duration time.Duration
}

// ErrCommandFailed is wrapped by Result.Err for a non-zero exit.
var ErrCommandFailed = errors.New("command failed")

// Err is nil for exit status 0, otherwise an error naming the command and its stderr.
func (r Result) Err() error {
	if r.ExitCode == 0 {
		return nil
	}
	return fmt.Errorf("%s: exit %d: %s: %w", strings.Join(r.Args, " "), r.ExitCode, strings.TrimSpace(r.Stderr), ErrCommandFailed)
}

// ErrorMessage is the error text crictl reports, with crictl's logrus quoting undone: the
// msg of its last `level=error` or `level=fatal` line, such as `creating container: rpc
// error: code = Unknown desc = failed to create containerd container: failed to get NRI
// adjustment for container: validator "50-patchgate" rejected ...`. When stderr has no such
// line it is the trimmed stderr.
func (r Result) ErrorMessage() string {
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		if !strings.Contains(l, "level=error") && !strings.Contains(l, "level=fatal") {
			continue
		}
		at := strings.Index(l, ` msg="`)
		if at < 0 {
			continue
		}
		rest := l[at+len(" msg="):]
		// The quoted value ends at the first unescaped quote.
		for j := 1; j < len(rest); j++ {
			if rest[j] == '\\' {
				j++
				continue
			}
			if rest[j] == '"' {
				if msg, err := strconv.Unquote(rest[:j+1]); err == nil {
					return msg
				}
				break
			}
		}
	}
	return strings.TrimSpace(r.Stderr)
}

// cgroupV1Warning is the deprecation text containerd 2.2+ reports on cgroup v1 hosts
// (containerd pkg/deprecation, CgroupV1) and crictl/ctr print as a warning line.
const cgroupV1Warning = "The support for cgroup v1 is deprecated"

// FilterWarnings removes the cgroup v1 deprecation warning lines from s.
func FilterWarnings(s string) string {
	if !strings.Contains(s, cgroupV1Warning) {
		return s
	}
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if !strings.Contains(l, cgroupV1Warning) {
			b.WriteString(l)
		}
	}
	return b.String()
}

func (h *Containerd) run(ctx context.Context, bin string, args ...string) Result {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = h.env()
	cmd.Dir = h.Dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	err := cmd.Run()
	r := Result{
		Args:     append([]string{filepath.Base(bin)}, args...),
		Stdout:   stdout.String(),
		Stderr:   FilterWarnings(stderr.String()),
		Duration: time.Since(began),
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		r.ExitCode = exitErr.ExitCode()
	default:
		r.ExitCode = -1
		r.Stderr += err.Error()
	}
	return r
}

// Crictl runs crictl against this containerd (its own --config; the host's /etc/crictl.yaml
// is never read).
func (h *Containerd) Crictl(ctx context.Context, args ...string) Result {
	return h.run(ctx, h.Tools.Crictl, append([]string{"--config", h.CrictlConfig}, args...)...)
}

// Ctr runs ctr against this containerd.
func (h *Containerd) Ctr(ctx context.Context, args ...string) Result {
	return h.run(ctx, h.Tools.Ctr, append([]string{"--address", h.Address}, args...)...)
}

// PodConfig is a CRI PodSandboxConfig, written the way crictl reads it.
type PodConfig struct {
	Name        string // required
	Namespace   string // default "default"
	UID         string // default derived from the name
	Labels      map[string]string
	Annotations map[string]string
	HostNetwork bool // CRI namespace_options.network = NODE; otherwise the harness's private bridge
	HostPID     bool // namespace_options.pid = NODE
	HostIPC     bool // namespace_options.ipc = NODE
	Privileged  bool // linux.security_context.privileged (needed for privileged containers)
	Sysctls     map[string]string
	RunAsUser   *int64
	// CgroupParent defaults to the harness's parent, so Cleanup finds every cgroup.
	CgroupParent string
	// Raw is merged over the generated JSON (top-level keys replace), for CRI fields the
	// struct does not name.
	Raw map[string]any
}

// ContainerConfig is a CRI ContainerConfig, written the way crictl reads it.
type ContainerConfig struct {
	Name        string // required
	Image       string // default BusyboxImageRef
	Command     []string
	Args        []string
	Env         map[string]string
	Labels      map[string]string
	Annotations map[string]string
	Privileged  bool
	// CapAdd and CapDrop are CRI capability names, which have no CAP_ prefix ("SYS_ADMIN",
	// "ALL"), as kubelet sends them: containerd prepends "CAP_" itself, so "CAP_SYS_ADMIN"
	// would silently become the unknown "CAP_CAP_SYS_ADMIN". The harness refuses the prefix.
	CapAdd       []string
	CapDrop      []string
	RunAsUser    *int64
	ReadOnlyRoot bool
	Mounts       []Mount
	Devices      []Device
	Raw          map[string]any // merged over the generated JSON (top-level keys replace)
}

// Mount is a CRI host-path mount.
type Mount struct {
	HostPath      string `json:"host_path"`
	ContainerPath string `json:"container_path"`
	Readonly      bool   `json:"readonly,omitempty"`
}

// Device is a CRI device.
type Device struct {
	HostPath      string `json:"host_path"`
	ContainerPath string `json:"container_path"`
	Permissions   string `json:"permissions"`
}

const (
	criNamespaceNode = 2 // runtime.v1.NamespaceMode_NODE
)

// JSON renders the pod config; h supplies the defaults (cgroup parent, log directory).
func (h *Containerd) podJSON(p PodConfig) ([]byte, error) {
	if p.Name == "" {
		return nil, errors.New("harness: pod name is required")
	}
	if p.Namespace == "" {
		p.Namespace = "default"
	}
	if p.UID == "" {
		p.UID = "uid-" + p.Namespace + "-" + p.Name
	}
	if p.CgroupParent == "" {
		p.CgroupParent = h.CgroupParent
	}
	nsOpts := map[string]any{}
	if p.HostNetwork {
		nsOpts["network"] = criNamespaceNode
	}
	if p.HostPID {
		nsOpts["pid"] = criNamespaceNode
	}
	if p.HostIPC {
		nsOpts["ipc"] = criNamespaceNode
	}
	sc := map[string]any{"namespace_options": nsOpts}
	if p.Privileged {
		sc["privileged"] = true
	}
	if p.RunAsUser != nil {
		sc["run_as_user"] = map[string]any{"value": *p.RunAsUser}
	}
	linux := map[string]any{"cgroup_parent": p.CgroupParent, "security_context": sc}
	if len(p.Sysctls) > 0 {
		linux["sysctls"] = p.Sysctls
	}
	logDir := filepath.Join(h.PodLogDir, p.Namespace+"_"+p.Name+"_"+p.UID)
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return nil, err
	}
	m := map[string]any{
		"metadata":      map[string]any{"name": p.Name, "namespace": p.Namespace, "uid": p.UID, "attempt": 0},
		"log_directory": logDir,
		"linux":         linux,
	}
	// Host-network pods must not set a hostname: runc refuses it without a private UTS
	// namespace. Others get the pod name, as kubelet does.
	if !p.HostNetwork {
		m["hostname"] = p.Name
	}
	if len(p.Labels) > 0 {
		m["labels"] = p.Labels
	}
	if len(p.Annotations) > 0 {
		m["annotations"] = p.Annotations
	}
	for k, v := range p.Raw {
		m[k] = v
	}
	return json.MarshalIndent(m, "", "  ")
}

func containerJSON(c ContainerConfig) ([]byte, error) {
	if c.Name == "" {
		return nil, errors.New("harness: container name is required")
	}
	if c.Image == "" {
		c.Image = BusyboxImageRef
	}
	for _, cp := range append(append([]string{}, c.CapAdd...), c.CapDrop...) {
		if strings.HasPrefix(strings.ToUpper(cp), "CAP_") {
			return nil, fmt.Errorf("harness: capability %q: CRI names have no CAP_ prefix (containerd adds it)", cp)
		}
	}
	sc := map[string]any{}
	if c.Privileged {
		sc["privileged"] = true
	}
	if len(c.CapAdd) > 0 || len(c.CapDrop) > 0 {
		caps := map[string]any{}
		if len(c.CapAdd) > 0 {
			caps["add_capabilities"] = c.CapAdd
		}
		if len(c.CapDrop) > 0 {
			caps["drop_capabilities"] = c.CapDrop
		}
		sc["capabilities"] = caps
	}
	if c.RunAsUser != nil {
		sc["run_as_user"] = map[string]any{"value": *c.RunAsUser}
	}
	if c.ReadOnlyRoot {
		sc["readonly_rootfs"] = true
	}
	m := map[string]any{
		"metadata": map[string]any{"name": c.Name, "attempt": 0},
		"image":    map[string]any{"image": c.Image},
		"log_path": c.Name + ".log",
		"linux":    map[string]any{"security_context": sc},
	}
	if len(c.Command) > 0 {
		m["command"] = c.Command
	}
	if len(c.Args) > 0 {
		m["args"] = c.Args
	}
	if len(c.Env) > 0 {
		keys := make([]string, 0, len(c.Env))
		for k := range c.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var env []map[string]string
		for _, k := range keys {
			env = append(env, map[string]string{"key": k, "value": c.Env[k]})
		}
		m["envs"] = env
	}
	if len(c.Labels) > 0 {
		m["labels"] = c.Labels
	}
	if len(c.Annotations) > 0 {
		m["annotations"] = c.Annotations
	}
	if len(c.Mounts) > 0 {
		m["mounts"] = c.Mounts
	}
	if len(c.Devices) > 0 {
		m["devices"] = c.Devices
	}
	for k, v := range c.Raw {
		m[k] = v
	}
	return json.MarshalIndent(m, "", "  ")
}

func (h *Containerd) writeJSON(prefix string, data []byte) (string, error) {
	f, err := os.CreateTemp(h.Dir, prefix+"-*.json")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return "", err
	}
	return f.Name(), f.Close()
}

// RunPod runs `crictl runp`. The pod id is returned when crictl exits 0.
func (h *Containerd) RunPod(ctx context.Context, p PodConfig) (string, Result) {
	data, err := h.podJSON(p)
	if err != nil {
		return "", Result{ExitCode: -1, Stderr: err.Error()}
	}
	path, err := h.writeJSON("pod-"+p.Name, data)
	if err != nil {
		return "", Result{ExitCode: -1, Stderr: err.Error()}
	}
	r := h.Crictl(ctx, "runp", path)
	if r.ExitCode != 0 {
		return "", r
	}
	return strings.TrimSpace(r.Stdout), r
}

// CreateContainer runs `crictl create` in the pod podID, which was started from pod. The
// container id is returned when crictl exits 0; otherwise Result.Stderr holds the runtime's
// error, e.g. an NRI plugin's reason after "failed to get NRI adjustment for container:".
func (h *Containerd) CreateContainer(ctx context.Context, podID string, pod PodConfig, c ContainerConfig) (string, Result) {
	podData, err := h.podJSON(pod)
	if err != nil {
		return "", Result{ExitCode: -1, Stderr: err.Error()}
	}
	ctrData, err := containerJSON(c)
	if err != nil {
		return "", Result{ExitCode: -1, Stderr: err.Error()}
	}
	podPath, err := h.writeJSON("pod-"+pod.Name, podData)
	if err != nil {
		return "", Result{ExitCode: -1, Stderr: err.Error()}
	}
	ctrPath, err := h.writeJSON("ctr-"+c.Name, ctrData)
	if err != nil {
		return "", Result{ExitCode: -1, Stderr: err.Error()}
	}
	r := h.Crictl(ctx, "create", podID, ctrPath, podPath)
	if r.ExitCode != 0 {
		return "", r
	}
	return strings.TrimSpace(r.Stdout), r
}

// StartContainer runs `crictl start`.
func (h *Containerd) StartContainer(ctx context.Context, id string) Result {
	return h.Crictl(ctx, "start", id)
}

// RunContainer creates and starts a container. The Result is the failed create's, or the
// start's; the id is returned once the container was created.
func (h *Containerd) RunContainer(ctx context.Context, podID string, pod PodConfig, c ContainerConfig) (string, Result) {
	id, r := h.CreateContainer(ctx, podID, pod, c)
	if r.ExitCode != 0 {
		return "", r
	}
	return id, h.StartContainer(ctx, id)
}

// RemoveContainer runs `crictl rm -f`.
func (h *Containerd) RemoveContainer(ctx context.Context, id string) Result {
	return h.Crictl(ctx, "rm", "--force", id)
}

// StopPod runs `crictl stopp`.
func (h *Containerd) StopPod(ctx context.Context, id string) Result {
	return h.Crictl(ctx, "stopp", id)
}

// RemovePod runs `crictl rmp -f`: stop and remove the pod and its containers. Stopping many
// containers on a loaded machine takes a while, so it allows crictl 2 minutes.
func (h *Containerd) RemovePod(ctx context.Context, id string) Result {
	return h.Crictl(ctx, "--timeout", "2m", "rmp", "--force", id)
}

// SleepCommand is a long-running container command that exits at once on SIGTERM (a plain
// `sleep` as PID 1 ignores SIGTERM, so stopping it waits for the kill timeout).
var SleepCommand = []string{"/bin/sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"}

// ContainerStatus is the part of `crictl inspect` output tests look at; Raw has all of it.
type ContainerStatus struct {
	Status struct {
		ID          string            `json:"id"`
		State       string            `json:"state"` // CONTAINER_CREATED, CONTAINER_RUNNING, CONTAINER_EXITED
		ExitCode    int               `json:"exitCode"`
		Reason      string            `json:"reason"`
		Message     string            `json:"message"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		LogPath     string            `json:"logPath"`
		Metadata    struct {
			Name string `json:"name"`
		} `json:"metadata"`
	} `json:"status"`
	Info struct {
		Pid         int             `json:"pid"`
		SandboxID   string          `json:"sandboxID"`
		RuntimeSpec json.RawMessage `json:"runtimeSpec"` // the OCI spec the container runs with
	} `json:"info"`
	Raw json.RawMessage `json:"-"`
}

// Spec decodes the OCI runtime spec the container runs with (crictl inspect's
// info.runtimeSpec). Annotations that NRI plugins add appear here, not in Status.Annotations,
// which holds the CRI config's annotations.
func (s *ContainerStatus) Spec() (*specs.Spec, error) {
	return decodeRuntimeSpec(s.Info.RuntimeSpec, "inspect")
}

func decodeRuntimeSpec(raw json.RawMessage, cmd string) (*specs.Spec, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("harness: crictl %s has no info.runtimeSpec", cmd)
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, fmt.Errorf("harness: decoding crictl %s info.runtimeSpec: %w", cmd, err)
	}
	return &spec, nil
}

// Inspect runs `crictl inspect -o json` and decodes the status.
func (h *Containerd) Inspect(ctx context.Context, id string) (*ContainerStatus, Result) {
	r := h.Crictl(ctx, "inspect", "-o", "json", id)
	if r.ExitCode != 0 {
		return nil, r
	}
	var st ContainerStatus
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		r.ExitCode, r.Stderr = -1, "decoding crictl inspect: "+err.Error()
		return nil, r
	}
	st.Raw = json.RawMessage(r.Stdout)
	return &st, r
}

// PodStatus is the part of `crictl inspectp` output tests look at; Raw has all of it.
type PodStatus struct {
	Status struct {
		ID          string            `json:"id"`
		State       string            `json:"state"` // SANDBOX_READY, SANDBOX_NOTREADY
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		Network     struct {
			IP string `json:"ip"`
		} `json:"network"`
	} `json:"status"`
	Info struct {
		Pid         int             `json:"pid"`
		RuntimeSpec json.RawMessage `json:"runtimeSpec"`
	} `json:"info"`
	Raw json.RawMessage `json:"-"`
}

// Spec decodes the sandbox's OCI runtime spec (crictl inspectp's info.runtimeSpec).
func (s *PodStatus) Spec() (*specs.Spec, error) {
	return decodeRuntimeSpec(s.Info.RuntimeSpec, "inspectp")
}

// InspectPod runs `crictl inspectp -o json`.
func (h *Containerd) InspectPod(ctx context.Context, id string) (*PodStatus, Result) {
	r := h.Crictl(ctx, "inspectp", "-o", "json", id)
	if r.ExitCode != 0 {
		return nil, r
	}
	var st PodStatus
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		r.ExitCode, r.Stderr = -1, "decoding crictl inspectp: "+err.Error()
		return nil, r
	}
	st.Raw = json.RawMessage(r.Stdout)
	return &st, r
}

// PS lists containers (`crictl ps -a -q` plus extra filters such as "--pod", id) and returns
// their ids.
func (h *Containerd) PS(ctx context.Context, filters ...string) ([]string, Result) {
	r := h.Crictl(ctx, append([]string{"ps", "--all", "--quiet"}, filters...)...)
	return strings.Fields(r.Stdout), r
}

// Pods lists pod sandbox ids (`crictl pods -q`).
func (h *Containerd) Pods(ctx context.Context, filters ...string) ([]string, Result) {
	r := h.Crictl(ctx, append([]string{"pods", "--quiet"}, filters...)...)
	return strings.Fields(r.Stdout), r
}

// WaitExited polls `crictl inspect` until the container has exited and returns its status.
func (h *Containerd) WaitExited(ctx context.Context, id string, timeout time.Duration) (*ContainerStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		st, r := h.Inspect(ctx, id)
		if r.ExitCode != 0 {
			return nil, r.Err()
		}
		if st.Status.State == "CONTAINER_EXITED" {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("harness: container %s still %s: %w", id, st.Status.State, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Logs returns the container's output (`crictl logs`).
func (h *Containerd) Logs(ctx context.Context, id string) Result {
	return h.Crictl(ctx, "logs", id)
}

// CreateStartMany creates and starts n containers from base in the pod, one after another as
// kubelet would, naming them <base.Name>-0 ... <base.Name>-<n-1>. It returns the ids and the
// wall time of all creates and starts (for the "50 containers with and without patchgate"
// figure). It stops at the first failure.
func (h *Containerd) CreateStartMany(ctx context.Context, podID string, pod PodConfig, base ContainerConfig, n int) ([]string, time.Duration, error) {
	if base.Name == "" {
		base.Name = "c"
	}
	name := base.Name
	ids := make([]string, 0, n)
	var total time.Duration
	for i := 0; i < n; i++ {
		c := base
		c.Name = fmt.Sprintf("%s-%d", name, i)
		id, r := h.CreateContainer(ctx, podID, pod, c)
		total += r.Duration
		if r.ExitCode != 0 {
			return ids, total, r.Err()
		}
		ids = append(ids, id)
		r = h.StartContainer(ctx, id)
		total += r.Duration
		if r.ExitCode != 0 {
			return ids, total, r.Err()
		}
	}
	return ids, total, nil
}
