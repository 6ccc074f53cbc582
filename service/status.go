package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/health"
)

// Status is what the service writes to its status file (default
// /run/patchgate/status.json) every poll interval: whether the policy,
// the audit log and hook injection are healthy. `patchgate check` reads it.
type Status struct {
	PID       int            `json:"pid"`
	StartedAt time.Time      `json:"startedAt"`
	UpdatedAt time.Time      `json:"updatedAt"`
	Socket    string         `json:"socket,omitempty"`
	Policy    PolicyStatus   `json:"policy"`
	Audit     *audit.Health  `json:"audit,omitempty"`
	Hook      *HookInjection `json:"hookInjection,omitempty"`
	// Runtime is the NRI plugin's connection; absent where no NRI plugin
	// runs (patchgate serve for podman and hooks.d).
	Runtime *RuntimeConnection `json:"runtime,omitempty"`
	Kernel  KernelStatus       `json:"kernel"`
	// Live and Ready are the liveness and readiness probes' results when
	// the status was written (health.go); absent in files of older
	// versions.
	Live  *health.Result `json:"live,omitempty"`
	Ready *health.Result `json:"ready,omitempty"`
}

// KernelStatus summarises the kernel state the service holds.
type KernelStatus struct {
	ObservedAt time.Time `json:"observedAt,omitzero"`
	Providers  []string  `json:"providers,omitempty"`
	Unknown    int       `json:"unknownParts"`
}

// maxStatusBytes bounds the status file a reader accepts.
const maxStatusBytes = 1 << 20

// Status returns the current status.
func (s *Service) Status() Status {
	st := Status{PID: os.Getpid(), StartedAt: s.started, UpdatedAt: s.now(), Socket: s.socketPath}
	if p := s.polStatus.Load(); p != nil {
		st.Policy = *p
	}
	if s.auditLog != nil {
		h := s.auditLog.Health()
		st.Audit = &h
	}
	st.Hook = s.hookInj.Load()
	st.Runtime = s.runtime.Load()
	k := s.Kernel()
	st.Kernel = KernelStatus{ObservedAt: k.ObservedAt, Providers: k.Providers, Unknown: len(k.Unknown)}
	live, ready := s.Liveness(), s.Readiness()
	st.Live, st.Ready = &live, &ready
	return st
}

// writeStatus writes the status file atomically (temp file and rename).
func (s *Service) writeStatus() {
	if s.statusPath == "" {
		return
	}
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	if err := WriteStatusFile(s.statusPath, s.Status()); err != nil {
		s.logger.WithError(err).Warn("writing status file")
	}
}

// WriteStatusFile writes st to path atomically, mode 0644.
func WriteStatusFile(path string, st Status) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".status-*.json")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }() // gone after the rename; removes a leftover otherwise
	if _, err := f.Write(append(b, '\n')); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// ErrNoStatus means no service status file exists (the service is not
// running, or never ran on this host).
var ErrNoStatus = errors.New("no service status file")

// ReadStatusFile reads a status file that WriteStatusFile wrote.
func ReadStatusFile(path string) (*Status, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNoStatus, path)
		}
		return nil, err
	}
	defer func() { _ = f.Close() }() // read-only
	data, err := io.ReadAll(io.LimitReader(f, maxStatusBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxStatusBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxStatusBytes)
	}
	var st Status
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &st, nil
}
