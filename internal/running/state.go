// Package running finds the containers that run on this node from the
// runtimes' own state directories (containerd's task bundles, runc's state
// directories that podman, CRI-O and plain runc use, containers/storage's
// userdata directories) and judges each one's bundle config.json, the spec
// runc ran, exactly as patchgate's OCI hook and NRI plugin judge it:
// `patchgate eval --running`. It reads and changes nothing else.
package running

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/patchgate/patchgate/hook/ocistate"
)

// Bounds on the state files read.
const (
	// maxRuncState bounds runc's state.json (a few KiB to tens of KiB:
	// the whole libcontainer config, cgroup and namespace paths).
	maxRuncState = 4 << 20
	// maxSmall bounds containerd's init.pid and options.json.
	maxSmall = 64 << 10
	// maxProcStat bounds /proc/<pid>/stat.
	maxProcStat = 4 << 10
	// maxStorageList bounds containers/storage's containers.json.
	maxStorageList = 16 << 20
)

// ErrState is wrapped by every error about a runtime's state files.
var ErrState = errors.New("invalid runtime state")

// Container statuses, as runc names them.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusStopped = "stopped"
	// StatusUnknown: the bundle exists but no runc state was found for it
	// (another OCI runtime, or a runc root not given): judged all the same.
	StatusUnknown = "unknown"
)

// RuncState is what eval --running needs of runc's
// <root>/<id>/state.json (libcontainer's State, written by runc for every
// container it created, removed by `runc delete`).
type RuncState struct {
	ID string
	// InitPid and InitStart are the container's init process and its start
	// time in clock ticks since boot (field 22 of /proc/<pid>/stat), which
	// runc compares to tell a live init from a reused pid.
	InitPid   int
	InitStart uint64
	// Bundle is the bundle directory, from the "bundle=" label runc adds.
	Bundle string
}

type runcStateJSON struct {
	ID        string          `json:"id"`
	InitPid   *int            `json:"init_process_pid"`
	InitStart json.RawMessage `json:"init_process_start"`
	Config    *struct {
		Labels []string `json:"labels"`
	} `json:"config"`
}

// ParseRuncState decodes runc's state.json. It needs the id, the init
// process (pid and start time) and the bundle label; anything else in the
// file is ignored (the libcontainer config differs between runc releases).
func ParseRuncState(data []byte) (*RuncState, error) {
	if len(data) > maxRuncState {
		return nil, fmt.Errorf("%w: state.json is more than %d bytes", ErrState, maxRuncState)
	}
	var raw runcStateJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: state.json: %v", ErrState, err)
	}
	if raw.ID == "" {
		return nil, fmt.Errorf("%w: state.json has no id", ErrState)
	}
	if raw.InitPid == nil || *raw.InitPid < 0 {
		return nil, fmt.Errorf("%w: state.json has no init_process_pid", ErrState)
	}
	st := &RuncState{ID: raw.ID, InitPid: *raw.InitPid}
	// runc writes a number; a string form is accepted too (older
	// libcontainer marshalled it as "init_process_start": "12345").
	s := strings.Trim(string(raw.InitStart), `"`)
	start, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: state.json: init_process_start %q is not a number", ErrState, raw.InitStart)
	}
	st.InitStart = start
	if raw.Config == nil {
		return nil, fmt.Errorf("%w: state.json has no config", ErrState)
	}
	for _, l := range raw.Config.Labels {
		if b, ok := strings.CutPrefix(l, "bundle="); ok {
			if st.Bundle != "" {
				return nil, fmt.Errorf("%w: state.json has two bundle labels", ErrState)
			}
			st.Bundle = b
		}
	}
	if st.Bundle == "" {
		return nil, fmt.Errorf("%w: state.json has no bundle label", ErrState)
	}
	if err := ocistate.CheckBundlePath(st.Bundle); err != nil {
		return nil, fmt.Errorf("%w: state.json: %v", ErrState, err)
	}
	return st, nil
}

// ProcStat is what liveness needs of /proc/<pid>/stat.
type ProcStat struct {
	State     byte   // R, S, D, Z, X, ...
	StartTime uint64 // field 22, clock ticks since boot
}

// ParseProcStat decodes /proc/<pid>/stat. The command name (field 2) may
// hold spaces and parentheses, so the fields are counted after the last
// ')'.
func ParseProcStat(data []byte) (ProcStat, error) {
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ProcStat{}, fmt.Errorf("%w: /proc stat: no command name", ErrState)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so field 22 (starttime) is f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return ProcStat{}, fmt.Errorf("%w: /proc stat: %d fields after the command name", ErrState, len(f))
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return ProcStat{}, fmt.Errorf("%w: /proc stat: starttime %q", ErrState, f[19])
	}
	return ProcStat{State: f[0][0], StartTime: start}, nil
}

// ParsePidFile decodes containerd's init.pid (the shim writes the decimal
// pid, no newline; one is accepted).
func ParsePidFile(data []byte) (int, error) {
	s := strings.TrimSuffix(string(data), "\n")
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 || strconv.Itoa(pid) != s {
		return 0, fmt.Errorf("%w: init.pid %q is not a pid", ErrState, data)
	}
	return pid, nil
}

// ParseShimOptions decodes the runc root from the options.json that
// containerd's runc shim writes into each bundle (the runtime's
// options, SandboxConfig's runc options: "root" when set).
func ParseShimOptions(data []byte) (root string, err error) {
	var o struct {
		Root string `json:"root"`
	}
	if err := json.Unmarshal(data, &o); err != nil {
		return "", fmt.Errorf("%w: options.json: %v", ErrState, err)
	}
	if o.Root != "" {
		if err := ocistate.CheckBundlePath(o.Root); err != nil {
			return "", fmt.Errorf("%w: options.json root: %v", ErrState, err)
		}
	}
	return o.Root, nil
}

// readIn reads the regular file name (a path relative to root, no ".."
// beyond it) inside root without following a symlink at its last
// component, requiring the owner to be the reader's effective user (the
// state of a rootful runtime is root's) and at most limit bytes. os.Root
// refuses any path, symlink or ".." that leaves root.
func readIn(root *os.Root, name string, limit int64) ([]byte, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%w: %s is a symlink; not followed", ErrState, name)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrState, name)
	}
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read-only
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrState, name)
	}
	if euid := uint32(os.Geteuid()); st.Uid != euid {
		return nil, fmt.Errorf("%w: %s is owned by uid %d, not by uid %d that reads it", ErrState, name, st.Uid, euid)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s is more than %d bytes", ErrState, name, limit)
	}
	return data, nil
}

// readProc reads a /proc file (its size in stat is 0) up to limit bytes.
func readProc(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read-only
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes", path, limit)
	}
	return data, nil
}

// ParseStorageNames decodes containers/storage's
// <driver>-containers/containers.json: the first name of each container by
// id. A file that does not decode gives no names (they are only shown).
func ParseStorageNames(data []byte) map[string]string {
	var list []struct {
		ID    string   `json:"id"`
		Names []string `json:"names"`
	}
	if json.Unmarshal(data, &list) != nil {
		return nil
	}
	out := make(map[string]string, len(list))
	for _, c := range list {
		if c.ID != "" && len(c.Names) > 0 {
			out[c.ID] = c.Names[0]
		}
	}
	return out
}
