package running

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/hook/ocistate"
)

// Defaults of the state directories, as each runtime has them on a host.
const (
	// DefaultContainerdState is containerd's `state` directory; its runc
	// shim keeps the bundles in io.containerd.runtime.v2.task/<ns>/<id>.
	DefaultContainerdState = "/run/containerd"
	// DefaultContainerdRuncRoot is the runc root of containerd's runc shim
	// when the runtime's options set no Root (process.RuncRoot); the shim
	// adds the namespace: <root>/<ns>/<id>/state.json.
	DefaultContainerdRuncRoot = "/run/containerd/runc"
	// DefaultRuncRoot is runc's own default --root (as root), which podman
	// and CRI-O use unless configured otherwise.
	DefaultRuncRoot = "/run/runc"
)

// DefaultStorageRoots are containers/storage's runroot and graphroot as
// root: podman's and CRI-O's <driver>-containers/<id>/userdata.
var DefaultStorageRoots = []string{"/run/containers/storage", "/var/lib/containers/storage"}

const containerdTaskDir = "io.containerd.runtime.v2.task"

// Options says where to look. Every directory is a path on the host,
// read under HostRoot.
type Options struct {
	// HostRoot is where the host's / is (default "/").
	HostRoot string
	// ContainerdStates are containerd state directories.
	ContainerdStates []string
	// ContainerdRuncRoot is the runc root of containerd's shim when a
	// bundle's options.json names none.
	ContainerdRuncRoot string
	// RuncRoots are runc --root directories (podman, CRI-O, plain runc).
	RuncRoots []string
	// StorageRoots are containers/storage run and graph roots.
	StorageRoots []string
}

// Runtime names.
const (
	RuntimeContainerd = "containerd"
	RuntimePodman     = "podman"
	RuntimeCRIO       = "cri-o"
	RuntimeRunc       = "runc"
	// RuntimeContainersStorage is a containers/storage bundle whose
	// config.json names neither podman nor CRI-O.
	RuntimeContainersStorage = "containers-storage"
)

// Found is a container that is running or created, or whose state is
// unknown: every one is judged.
type Found struct {
	Runtime string `json:"runtime"`
	// Namespace is the containerd namespace.
	Namespace string `json:"namespace,omitempty"`
	ID        string `json:"id"`
	// Name is containers/storage's name of the container (podman, CRI-O).
	Name   string `json:"name,omitempty"`
	Status string `json:"status"`
	Pid    int    `json:"pid,omitempty"`
	// Bundle is the bundle directory on the host.
	Bundle string `json:"bundle"`
	// StateFile is runc's state.json for it, on the host.
	StateFile string `json:"stateFile,omitempty"`
	// Err is why it could not be read; it is then judged as refused.
	Err error `json:"-"`
	// IdentityFrom is whose identity annotations are trusted (a hook
	// --identity-from value; "" is none), by where the container was
	// found, never by where its bundle lies: a runc root lists whatever
	// any runc user created, with a bundle path that user chose.
	// containerd's for a task in containerd's own state in the k8s.io
	// namespace (CRI's), CRI-O's for a userdata directory found under a
	// storage root.
	IdentityFrom string `json:"-"`
}

// Skipped is a container that is not running.
type Skipped struct {
	Runtime   string `json:"runtime"`
	Namespace string `json:"namespace,omitempty"`
	ID        string `json:"id"`
	Why       string `json:"why"`
}

// Source is one directory looked at.
type Source struct {
	Kind string `json:"kind"` // containerd, runc, containers-storage
	Dir  string `json:"dir"`
	// Present is false when the directory does not exist (that runtime
	// is not used here).
	Present bool `json:"present"`
}

// Inventory is what Discover found.
type Inventory struct {
	Found   []Found   `json:"-"`
	Skipped []Skipped `json:"skipped"`
	Sources []Source  `json:"sources"`
}

// Discover lists the containers on the host. A directory that does not
// exist is a source not present; one that cannot be read is an error.
// A container whose own state cannot be read is Found with Err set.
func Discover(opts Options) (*Inventory, error) {
	if opts.HostRoot == "" {
		opts.HostRoot = "/"
	}
	if !filepath.IsAbs(opts.HostRoot) {
		return nil, fmt.Errorf("host root %q must be an absolute path", opts.HostRoot)
	}
	if opts.ContainerdRuncRoot == "" {
		opts.ContainerdRuncRoot = DefaultContainerdRuncRoot
	}
	d := &discoverer{opts: opts, inv: &Inventory{}, bundles: map[string]bool{}, ctrdBundles: map[string]bool{}, storageBundles: map[string]bool{}, names: map[string]string{}}
	// runc's state first: it says which containers live, and where their
	// bundles are.
	// By state file: two runc containers may share a bundle (`runc run
	// -b DIR` twice), and a root given twice is read once.
	live := map[string]*liveState{}
	runcIDs := map[string]bool{}
	for _, dir := range opts.RuncRoots {
		states, err := d.runcRoot(dir)
		if err != nil {
			return nil, err
		}
		for _, s := range states {
			live[s.file] = s
			runcIDs[s.st.ID] = true
		}
	}
	for _, dir := range opts.ContainerdStates {
		if err := d.containerd(dir); err != nil {
			return nil, err
		}
	}
	storageIDs := map[string]string{} // id -> bundle, of userdata directories
	for _, dir := range opts.StorageRoots {
		if err := d.storage(dir, storageIDs); err != nil {
			return nil, err
		}
	}
	// The runc roots' containers not already listed (podman, CRI-O, plain
	// runc, and containerd's when its runc root was given as a runc root).
	files := make([]string, 0, len(live))
	for f := range live {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, file := range files {
		s := live[file]
		b := s.st.Bundle
		if d.ctrdBundles[b] {
			continue // listed from containerd's state, with its namespace
		}
		d.bundles[b] = true
		f := Found{ID: s.st.ID, Name: d.names[s.st.ID], Bundle: b, StateFile: s.file, Pid: s.st.InitPid, Status: s.status, Err: s.err}
		info, err := hook.ClassifyBundle(b, s.st.ID)
		switch {
		case err != nil:
			f.Runtime = RuntimeRunc
			if f.Err == nil {
				f.Err = err
			}
		case info.Layout == hook.LayoutContainerd:
			f.Runtime, f.Namespace = RuntimeContainerd, info.Namespace
		case info.Layout == hook.LayoutContainersStorage:
			f.Runtime = RuntimeContainersStorage // refined from config.json when judged
			if d.storageBundles[b] {
				// containers/storage holds it: CRI-O's identity may be
				// trusted if config.json is CRI-O's (podman's is not).
				f.IdentityFrom = hook.IdentityFromCRIO
			}
		default:
			f.Runtime = RuntimeRunc
		}
		if s.status == StatusStopped && f.Err == nil {
			d.inv.Skipped = append(d.inv.Skipped, Skipped{Runtime: f.Runtime, Namespace: f.Namespace, ID: f.ID, Why: "stopped (runc state: " + s.why + ")"})
			continue
		}
		d.inv.Found = append(d.inv.Found, f)
	}
	// containers/storage userdata directories no live runc state names:
	// stopped (podman and CRI-O have runc delete the state of a container
	// that exited).
	ids := make([]string, 0, len(storageIDs))
	for id := range storageIDs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		// By id: podman's bundle is the graphroot's userdata, and the
		// runroot has one of the same id.
		if !runcIDs[id] && !d.bundles[storageIDs[id]] {
			d.inv.Skipped = append(d.inv.Skipped, Skipped{Runtime: RuntimeContainersStorage, ID: id, Why: "not running (no runc state names its bundle " + storageIDs[id] + ")"})
		}
	}
	sort.SliceStable(d.inv.Found, func(i, j int) bool {
		a, b := d.inv.Found[i], d.inv.Found[j]
		if a.Runtime != b.Runtime {
			return a.Runtime < b.Runtime
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.ID < b.ID
	})
	return d.inv, nil
}

type discoverer struct {
	opts Options
	inv  *Inventory
	// bundles listed (host paths); ctrdBundles those from containerd;
	// storageBundles the userdata directories under a storage root.
	bundles, ctrdBundles, storageBundles map[string]bool
	// names from containers/storage's containers.json, by id.
	names map[string]string
}

// under is the host path p as this process sees it.
func (d *discoverer) under(p string) string {
	if d.opts.HostRoot == "/" {
		return p
	}
	return filepath.Join(d.opts.HostRoot, p)
}

// open opens a state directory; nil, nil when it does not exist or is ""
// (none of that kind is looked at).
func (d *discoverer) open(kind, dir string) (*os.Root, error) {
	if dir == "" {
		return nil, nil
	}
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("%s state directory %q must be an absolute path", kind, dir)
	}
	dir = filepath.Clean(dir)
	r, err := os.OpenRoot(d.under(dir))
	if errors.Is(err, fs.ErrNotExist) {
		d.inv.Sources = append(d.inv.Sources, Source{Kind: kind, Dir: dir})
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s state directory: %w", kind, err)
	}
	d.inv.Sources = append(d.inv.Sources, Source{Kind: kind, Dir: dir, Present: true})
	return r, nil
}

// subdirs lists the directories in dir (relative to root), refusing
// symlinks. A missing dir is empty.
func subdirs(root *os.Root, dir string) (names []string, bad map[string]error, err error) {
	f, err := root.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = f.Close() }() // read-only
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			if bad == nil {
				bad = map[string]error{}
			}
			bad[e.Name()] = fmt.Errorf("%w: %s is a symlink; not followed", ErrState, path.Join(dir, e.Name()))
		case e.IsDir():
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, bad, nil
}

// liveState is one runc state directory, judged alive or not.
type liveState struct {
	st     *RuncState
	file   string // host path of state.json
	status string
	why    string // why stopped
	err    error
}

// runcRoot reads every <dir>/<id>/state.json.
func (d *discoverer) runcRoot(dir string) ([]*liveState, error) {
	r, err := d.open("runc", dir)
	if r == nil || err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }()
	ids, bad, err := subdirs(r, ".")
	if err != nil {
		return nil, fmt.Errorf("runc root %s: %w", dir, err)
	}
	for name, e := range bad {
		// A symlinked state directory names no bundle we could trust.
		d.inv.Found = append(d.inv.Found, Found{Runtime: RuntimeRunc, ID: name, Status: StatusUnknown, StateFile: filepath.Join(dir, name), Err: e})
	}
	var out []*liveState
	for _, id := range ids {
		file := filepath.Join(dir, id, "state.json")
		s := d.runcState(r, id, file)
		if s == nil {
			continue // not a container's state directory
		}
		out = append(out, s)
	}
	return out, nil
}

// runcState reads and judges one runc state directory (id relative to
// root); nil when it has no state.json (runc makes the directory and the
// file together; another tool's directory).
func (d *discoverer) runcState(r *os.Root, id, file string) *liveState {
	data, err := readIn(r, id+"/state.json", maxRuncState)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return d.badState(id, file, err)
	}
	st, err := ParseRuncState(data)
	if err != nil {
		return d.badState(id, file, err)
	}
	if st.ID != id {
		return d.badState(id, file, fmt.Errorf("%w: %s names container %q", ErrState, file, st.ID))
	}
	s := &liveState{st: st, file: file}
	s.status, s.why = d.liveness(st.InitPid, st.InitStart)
	if s.status != StatusStopped {
		// runc's own test: the exec fifo exists until `runc start`.
		if _, err := r.Lstat(id + "/exec.fifo"); err == nil {
			s.status = StatusCreated
		}
	}
	return s
}

// badState is a state directory that cannot be read: listed with its
// error (never dropped), under a bundle key of its own.
func (d *discoverer) badState(id, file string, err error) *liveState {
	return &liveState{st: &RuncState{ID: id, Bundle: "state:" + file}, file: file, status: StatusUnknown, err: err}
}

// liveness is runc's own test of a container's init: the process exists,
// is not a zombie, and started when runc recorded.
func (d *discoverer) liveness(pid int, start uint64) (status, why string) {
	if pid <= 0 {
		return StatusStopped, "no init process"
	}
	data, err := readProc(d.under("/proc/"+strconv.Itoa(pid)+"/stat"), maxProcStat)
	if err != nil {
		return StatusStopped, fmt.Sprintf("init process %d is gone", pid)
	}
	ps, err := ParseProcStat(data)
	if err != nil {
		return StatusStopped, err.Error()
	}
	if ps.StartTime != start {
		return StatusStopped, fmt.Sprintf("pid %d is another process now", pid)
	}
	if ps.State == 'Z' || ps.State == 'X' {
		return StatusStopped, fmt.Sprintf("init process %d has exited", pid)
	}
	return StatusRunning, ""
}

// containerd lists <dir>/io.containerd.runtime.v2.task/<ns>/<id>, each
// with its runc state from the shim's runc root.
func (d *discoverer) containerd(dir string) error {
	r, err := d.open(RuntimeContainerd, dir)
	if r == nil || err != nil {
		return err
	}
	defer func() { _ = r.Close() }()
	dir = filepath.Clean(dir)
	nss, bad, err := subdirs(r, containerdTaskDir)
	if err != nil {
		return fmt.Errorf("containerd state %s: %w", dir, err)
	}
	for name, e := range bad {
		d.inv.Found = append(d.inv.Found, Found{Runtime: RuntimeContainerd, Namespace: name, Status: StatusUnknown, Bundle: filepath.Join(dir, containerdTaskDir, name), Err: e})
	}
	for _, ns := range nss {
		ids, bad, err := subdirs(r, containerdTaskDir+"/"+ns)
		if err != nil {
			return fmt.Errorf("containerd state %s: %w", dir, err)
		}
		for name, e := range bad {
			d.inv.Found = append(d.inv.Found, Found{Runtime: RuntimeContainerd, Namespace: ns, ID: name, Status: StatusUnknown, Bundle: filepath.Join(dir, containerdTaskDir, ns, name), Err: e})
		}
		for _, id := range ids {
			d.containerdTask(r, dir, ns, id)
		}
	}
	return nil
}

func (d *discoverer) containerdTask(r *os.Root, dir, ns, id string) {
	rel := containerdTaskDir + "/" + ns + "/" + id
	bundle := filepath.Join(dir, rel)
	d.bundles[bundle], d.ctrdBundles[bundle] = true, true
	f := Found{Runtime: RuntimeContainerd, Namespace: ns, ID: id, Bundle: bundle, Status: StatusUnknown}
	if ns == hook.NamespaceCRI {
		// Only CRI's namespace: any other (moby, default) holds what
		// `ctr` or another client made, with annotations of its choosing.
		f.IdentityFrom = hook.IdentityFromContainerd
	}
	if err := ocistate.CheckBundlePath(bundle); err != nil {
		f.Err = err
		d.inv.Found = append(d.inv.Found, f)
		return
	}
	runcRoot := d.opts.ContainerdRuncRoot
	data, err := readIn(r, rel+"/options.json", maxSmall)
	switch {
	case err == nil:
		root, err := ParseShimOptions(data)
		if err != nil {
			f.Err = err
			d.inv.Found = append(d.inv.Found, f)
			return
		}
		if root != "" {
			runcRoot = root
		}
	case !errors.Is(err, fs.ErrNotExist):
		f.Err = err
		d.inv.Found = append(d.inv.Found, f)
		return
	}
	if data, err := readIn(r, rel+"/init.pid", maxSmall); err == nil {
		f.Pid, _ = ParsePidFile(data)
	}
	// The shim runs runc with --root <runc root>/<namespace>.
	sr, err := os.OpenRoot(d.under(filepath.Join(runcRoot, ns)))
	if err != nil {
		// No runc state: another runtime, or a runc root not given. The
		// bundle is there, so the task is: judge it.
		d.inv.Found = append(d.inv.Found, f)
		return
	}
	defer func() { _ = sr.Close() }()
	s := d.runcState(sr, id, filepath.Join(runcRoot, ns, id, "state.json"))
	if s == nil {
		d.inv.Found = append(d.inv.Found, f)
		return
	}
	f.StateFile = s.file
	if s.err != nil {
		f.Err = s.err
		d.inv.Found = append(d.inv.Found, f)
		return
	}
	if s.st.Bundle != bundle {
		f.Err = fmt.Errorf("%w: %s names bundle %s, not %s", ErrState, s.file, s.st.Bundle, bundle)
		d.inv.Found = append(d.inv.Found, f)
		return
	}
	f.Pid, f.Status = s.st.InitPid, s.status
	if s.status == StatusStopped {
		d.inv.Skipped = append(d.inv.Skipped, Skipped{Runtime: RuntimeContainerd, Namespace: ns, ID: id, Why: "stopped (runc state: " + s.why + ")"})
		return
	}
	d.inv.Found = append(d.inv.Found, f)
}

// storage lists <dir>/<driver>-containers/<id>/userdata that hold a
// config.json: podman's and CRI-O's bundles, running or not.
func (d *discoverer) storage(dir string, ids map[string]string) error {
	r, err := d.open(RuntimeContainersStorage, dir)
	if r == nil || err != nil {
		return err
	}
	defer func() { _ = r.Close() }()
	dir = filepath.Clean(dir)
	drivers, _, err := subdirs(r, ".")
	if err != nil {
		return fmt.Errorf("containers/storage %s: %w", dir, err)
	}
	for _, drv := range drivers {
		if !strings.HasSuffix(drv, "-containers") {
			continue
		}
		cids, _, err := subdirs(r, drv)
		if err != nil {
			return fmt.Errorf("containers/storage %s: %w", dir, err)
		}
		for _, id := range cids {
			if _, err := r.Lstat(drv + "/" + id + "/userdata/config.json"); err != nil {
				continue
			}
			ids[id] = filepath.Join(dir, drv, id, "userdata")
			d.storageBundles[ids[id]] = true
		}
		// containers/storage's own list names each container (podman's
		// --name, CRI-O's k8s_... name): shown, never judged.
		if data, err := readIn(r, drv+"/containers.json", maxStorageList); err == nil {
			for id, name := range ParseStorageNames(data) {
				d.names[id] = name
			}
		}
	}
	return nil
}
