package harness

import (
	"bufio"
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
	"syscall"
	"time"
)

// Host paths the harness may leave traces in. Only the shim socket dir is containerd's own
// default; the harness moves the sockets into its private directory, and removes these only
// when it created them and they are empty.
const (
	hostRunContainerd  = "/run/containerd"
	hostRunContainerdS = "/run/containerd/s"
	hostVarLibCNI      = "/var/lib/cni" // libcni's result cache; containerd offers no setting for it
)

func observeHost() hostState {
	return hostState{
		runContainerd:  exists(hostRunContainerd),
		runContainerdS: exists(hostRunContainerdS),
		varLibCNI:      exists(hostVarLibCNI),
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// instanceFile records what SweepStale needs to clean a directory whose owner died.
type instanceFile struct {
	CgroupParent string    `json:"cgroupParent"`
	BridgeName   string    `json:"bridgeName"`
	Host         hostFlags `json:"host"`
}

type hostFlags struct {
	RunContainerd  bool `json:"runContainerd"`
	RunContainerdS bool `json:"runContainerdS"`
	VarLibCNI      bool `json:"varLibCNI"`
}

func (h *Containerd) writeInstanceFile() error {
	data, err := json.Marshal(instanceFile{
		CgroupParent: h.CgroupParent,
		BridgeName:   h.BridgeName,
		Host:         hostFlags{h.hostState.runContainerd, h.hostState.runContainerdS, h.hostState.varLibCNI},
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(h.Dir, "harness.json"), data, 0o600)
}

// Cleanup removes everything the harness started or created: all pods (crictl rmp -f, before
// containerd stops, or the shims would keep running), processes from StartProcess,
// containerd, any process still running from the private directory or its cgroups, mounts
// and cgroups, the CNI bridge, the private directory, and host directories only the harness
// created. It carries on past errors and returns them all.
// It is safe to call more than once.
func (h *Containerd) Cleanup(ctx context.Context) error {
	if h.cleanedUp {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	var errs []error
	if h.Running() {
		if r := h.Crictl(ctx, "--timeout", "2m", "rmp", "--all", "--force"); r.ExitCode != 0 {
			errs = append(errs, fmt.Errorf("crictl rmp -af: %w", r.Err()))
		}
	}
	h.mu.Lock()
	procs := h.procs
	h.mu.Unlock()
	for _, p := range procs {
		if p.Running() {
			_ = p.Stop(5 * time.Second)
		}
	}
	if err := h.Stop(ctx); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, cleanupInstance(ctx, h.Dir, h.CgroupParent, h.BridgeName, h.hostState)...)
	h.cleanedUp = true
	return errors.Join(errs...)
}

func cleanupInstance(ctx context.Context, dir, cgroupParent, bridge string, before hostState) []error {
	var errs []error
	if err := killInstanceProcesses(dir, cgroupParent); err != nil {
		errs = append(errs, err)
	}
	if err := unmountUnder(dir); err != nil {
		errs = append(errs, err)
	}
	if cgroupParent != "" {
		if err := removeCgroups(cgroupParent); err != nil {
			errs = append(errs, err)
		}
	}
	if bridge != "" && exists("/sys/class/net/"+bridge) {
		if out, err := exec.CommandContext(ctx, "ip", "link", "delete", bridge).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip link delete %s: %w: %s", bridge, err, strings.TrimSpace(string(out))))
		}
	}
	for _, r := range cniResultsOf(func(netns string) bool { return strings.HasPrefix(netns, dir+"/") }) {
		if err := os.Remove(r); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if !before.varLibCNI {
		removeEmptyTree(hostVarLibCNI)
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("removing %s: %w", dir, err))
	}
	if !before.runContainerdS {
		_ = os.Remove(hostRunContainerdS) // only succeeds when empty
	}
	if !before.runContainerd {
		_ = os.Remove(hostRunContainerd)
	}
	return errs
}

// Leftovers lists what of this instance is still on the host; empty after a good Cleanup.
func (h *Containerd) Leftovers() []string {
	var out []string
	if exists(h.Dir) {
		out = append(out, "directory "+h.Dir)
	}
	for _, pid := range instancePIDs(h.Dir, h.CgroupParent) {
		out = append(out, fmt.Sprintf("process %d (%s)", pid, cmdline(pid)))
	}
	for _, m := range mountsUnder(h.Dir) {
		out = append(out, "mount "+m)
	}
	for _, mp := range cgroupMounts() {
		if p := filepath.Join(mp, h.CgroupParent); exists(p) {
			out = append(out, "cgroup "+p)
		}
	}
	if exists("/sys/class/net/" + h.BridgeName) {
		out = append(out, "network link "+h.BridgeName)
	}
	out = append(out, cniResultsOf(func(netns string) bool { return strings.HasPrefix(netns, h.Dir+"/") })...)
	if !h.hostState.runContainerdS && exists(hostRunContainerdS) {
		out = append(out, hostRunContainerdS+" (created during the run)")
	}
	return out
}

// cniResultsOf lists libcni's cached results (/var/lib/cni/results/<network>-<id>-<ifname>,
// libcni api.go) whose network namespace path matches; harness pods keep their netns under
// the private state dir, so the path tells which results are the harness's. These are left
// behind when a pod's network is never torn down (a killed instance), for the loopback
// network ("cni-loopback") as well as the bridge.
func cniResultsOf(match func(netns string) bool) []string {
	files, _ := filepath.Glob(filepath.Join(hostVarLibCNI, "results", "*"))
	var out []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil || len(data) > 1<<20 {
			continue
		}
		var cached struct {
			Netns string `json:"netns"`
		}
		if json.Unmarshal(data, &cached) == nil && cached.Netns != "" && match(cached.Netns) {
			out = append(out, f)
		}
	}
	return out
}

// SweepStale cleans up private directories under baseDir (default /tmp) whose owning process
// has died, for example a test binary killed by `go test -timeout` before its cleanup ran.
// It returns the directories it removed.
func SweepStale(ctx context.Context, baseDir string) ([]string, error) {
	if baseDir == "" {
		baseDir = "/tmp"
	}
	dirs, _ := filepath.Glob(filepath.Join(baseDir, "pge2e-*"))
	var swept []string
	var errs []error
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		// Only an owner that is certainly gone (ESRCH); a live or unknown owner keeps its instance.
		if err != nil || pid <= 0 || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue
		}
		var inst instanceFile
		if data, err := os.ReadFile(filepath.Join(dir, "harness.json")); err == nil {
			_ = json.Unmarshal(data, &inst)
		}
		before := hostState{inst.Host.RunContainerd, inst.Host.RunContainerdS, inst.Host.VarLibCNI}
		errs = append(errs, cleanupInstance(ctx, dir, inst.CgroupParent, inst.BridgeName, before)...)
		swept = append(swept, dir)
	}
	// Results of harness instances whose directory is already gone (killed before this sweep
	// existed, or removed by hand).
	prefix := filepath.Join(baseDir, "pge2e-")
	for _, r := range cniResultsOf(func(netns string) bool {
		if !strings.HasPrefix(netns, prefix) {
			return false
		}
		inst := strings.SplitN(strings.TrimPrefix(netns, prefix), "/", 2)[0]
		return inst != "" && !exists(prefix+inst)
	}) {
		if err := os.Remove(r); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return swept, errors.Join(errs...)
}

// instancePIDs finds the processes that belong to an instance: those whose command line
// names the private directory (containerd, shims, plugins started with its socket) and those
// in a cgroup under its cgroup parent (pause and container processes; their /proc/<pid>/root
// reads "/" from outside their mount namespace, so the cgroup is what identifies them).
func instancePIDs(dir, cgroupParent string) []int {
	self := os.Getpid()
	seen := map[int]bool{}
	var pids []int
	add := func(pid int) {
		if pid > 0 && pid != self && !seen[pid] {
			seen[pid] = true
			pids = append(pids, pid)
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && strings.Contains(cmdline(pid), dir+"/") {
			add(pid)
		}
	}
	if cgroupParent != "" && filepath.Clean("/"+cgroupParent) != "/" {
		for _, mp := range cgroupMounts() {
			_ = filepath.WalkDir(filepath.Join(mp, filepath.Clean("/"+cgroupParent)), func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
					return nil
				}
				data, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(data)) {
					if pid, err := strconv.Atoi(f); err == nil {
						add(pid)
					}
				}
				return nil
			})
		}
	}
	sort.Ints(pids)
	return pids
}

func cmdline(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
}

func killInstanceProcesses(dir, cgroupParent string) error {
	pids := instancePIDs(dir, cgroupParent)
	deadline := time.Now().Add(10 * time.Second)
	for len(pids) > 0 && time.Now().Before(deadline) {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
		pids = instancePIDs(dir, cgroupParent)
	}
	if len(pids) > 0 {
		return fmt.Errorf("processes of %s still running: %v", dir, pids)
	}
	return nil
}

// mountInfo returns (fstype, mountpoint) pairs from /proc/self/mountinfo.
func mountInfo() [][2]string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	var out [][2]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		if len(fields) < 7 {
			continue
		}
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(fields) {
			continue
		}
		out = append(out, [2]string{fields[sep+1], unescapeMount(fields[4])})
	}
	return out
}

// unescapeMount undoes the kernel's octal escapes (\040 for space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func mountsUnder(dir string) []string {
	var out []string
	for _, m := range mountInfo() {
		if strings.HasPrefix(m[1], dir+"/") || m[1] == dir {
			out = append(out, m[1])
		}
	}
	return out
}

func unmountUnder(dir string) error {
	var errs []error
	for attempt := 0; attempt < 3; attempt++ {
		mounts := mountsUnder(dir)
		if len(mounts) == 0 {
			return nil
		}
		sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
		errs = errs[:0]
		for _, m := range mounts {
			if err := syscall.Unmount(m, 0); err != nil {
				if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
					errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
				}
			}
		}
	}
	if left := mountsUnder(dir); len(left) > 0 {
		errs = append(errs, fmt.Errorf("mounts left under %s: %v", dir, left))
	}
	return errors.Join(errs...)
}

// cgroupMounts lists the mount points of every cgroup (v1) and cgroup2 hierarchy.
func cgroupMounts() []string {
	var out []string
	for _, m := range mountInfo() {
		if m[0] == "cgroup" || m[0] == "cgroup2" {
			out = append(out, m[1])
		}
	}
	return out
}

// removeCgroups removes <hierarchy>/<parent> and everything below it in every hierarchy,
// deepest first. A cgroup whose last task just exited may be busy for a moment; retry.
func removeCgroups(parent string) error {
	parent = filepath.Clean("/" + parent)
	if parent == "/" {
		return errors.New("refusing to remove the root cgroup")
	}
	var errs []error
	for _, mp := range cgroupMounts() {
		top := filepath.Join(mp, parent)
		if !exists(top) {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for i := 0; i < 50; i++ {
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeEmptyTree removes dir and its subdirectories if they hold no files.
func removeEmptyTree(dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		_ = syscall.Rmdir(d)
	}
}
