package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/policy"
)

// PolicyStatus is the policy watcher's state, for the status file.
type PolicyStatus struct {
	Name    string   `json:"name"`
	Digest  string   `json:"digest"`
	Sources []string `json:"sources,omitempty"`
	// Path and NodeName are what the service loads (--policy,
	// --node-name); Copy is where it writes the policy in force
	// (--policy-copy: the directory, holding policy.yaml), when it does. `patchgate check`
	// and `eval` read the node's policy from here.
	Path     string `json:"path,omitempty"`
	NodeName string `json:"nodeName,omitempty"`
	Copy     string `json:"copy,omitempty"`
	// CopyError is why the copy of the policy in force could not be
	// written, or did not load back as that policy; hooks deciding alone
	// then read an older policy, or none.
	CopyError string    `json:"copyError,omitempty"`
	LoadedAt  time.Time `json:"loadedAt"`
	// Error is the last reload's error (file:line); the policy above stays
	// in force while it is set.
	Error     string    `json:"error,omitempty"`
	ErrorAt   time.Time `json:"errorAt,omitzero"`
	LastCheck time.Time `json:"lastCheck"`
}

// Enforces says whether the policy with digest, read from files by
// someone else (patchgate check, eval, policy show, eval --running), is the
// one the service enforces; when it is not, why says why they can differ:
// the last reload's error when there is one, since the service keeps the
// last good policy in force.
func (p PolicyStatus) Enforces(digest string) (same bool, why string) {
	switch {
	case p.Digest == "":
		return false, "the node service reports no policy"
	case p.Digest == digest:
		return true, ""
	case p.Error != "":
		return false, "the service's last reload failed and it keeps the last good policy: " + p.Error
	default:
		return false, "the service has not reloaded them yet, or reads another path (a DaemonSet reads the ConfigMap inside its pod)"
	}
}

// loadPolicy loads the policy and returns it with the fingerprint of the
// files it was read from.
func (s *Service) loadPolicy() (*policy.Policy, string, error) {
	fp := fingerprint(s.policyPath, s.nodeName)
	pol, err := policy.Load(s.policyPath, s.nodeName)
	if err != nil {
		return nil, fp, err
	}
	return pol, fp, nil
}

func (s *Service) setPolicy(pol *policy.Policy, fp string) {
	var copyErr string
	if s.policyCopy != "" {
		if err := WritePolicyCopy(s.policyCopy, pol); err != nil {
			copyErr = trimErr(err)
			s.logger.WithError(err).WithField("policy_copy", s.policyCopy).
				Error("cannot write the copy of the policy in force: hooks deciding alone read an older one, or none")
		}
	}
	s.pol.Store(pol)
	s.fprint = fp
	now := s.now()
	s.polStatus.Store(&PolicyStatus{
		Name: pol.Name(), Digest: pol.Digest(), Sources: pol.Sources, LoadedAt: now, LastCheck: now,
		Path: s.policyPath, NodeName: s.nodeName, Copy: s.policyCopy, CopyError: copyErr,
	})
}

// watch polls the policy files every pollInterval. A change triggers a
// reload; a reload that fails is logged with its file:line error and the
// last good policy stays in force. It also rewrites the status file.
func (s *Service) watch(ctx context.Context) {
	t := time.NewTicker(s.pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.checkPolicy()
		s.updateKernelMetrics()
		s.writeStatus()
		s.watchBeat.Store(s.now().UnixNano())
	}
}

// checkPolicy reloads the policy when its files changed. It is called only
// from the watcher goroutine (and tests).
func (s *Service) checkPolicy() {
	fp := fingerprint(s.policyPath, s.nodeName)
	st := *s.polStatus.Load()
	st.LastCheck = s.now()
	if fp == s.fprint {
		s.polStatus.Store(&st)
		return
	}
	s.fprint = fp
	pol, err := policy.Load(s.policyPath, s.nodeName)
	if err != nil {
		st.Error, st.ErrorAt = trimErr(err), s.now()
		s.polStatus.Store(&st)
		if s.metrics != nil {
			s.metrics.SetPolicyReloadFailed(true)
		}
		s.logger.WithFields(logrus.Fields{"policy_path": s.policyPath, "in_force": st.Name, "digest": st.Digest}).
			WithError(err).Error("policy reload failed; the last good policy stays in force")
		return
	}
	old := s.pol.Load()
	s.setPolicy(pol, fp)
	if s.metrics != nil {
		s.metrics.SetPolicyReloadFailed(false)
	}
	if old == nil || old.Digest() != pol.Digest() {
		s.logger.WithFields(logrus.Fields{"policy": pol.Name(), "digest": pol.Digest(), "sources": pol.Sources}).
			Info("policy reloaded")
	}
}

// fingerprint summarises every file and directory the policy at path could
// be read from: name, device, inode, link count, size, mtime, ctime, mode
// and owner. A ConfigMap update (an atomic symlink swap) or a chmod changes
// it. mtime alone is not enough: a rewrite in place of the same size whose
// mtime is then set back (cp -p, touch -r) changes only the ctime, which no
// one but the kernel can set.
func fingerprint(path, nodeName string) string {
	var names []string
	names = append(names, path)
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		names = append(names,
			filepath.Join(path, policy.MainFile),
			filepath.Join(path, policy.DropInDir))
		if m, err := filepath.Glob(filepath.Join(path, policy.DropInDir, "*")); err == nil {
			sort.Strings(m)
			names = append(names, m...)
		}
		if nodeName != "" {
			names = append(names, filepath.Join(path, policy.NodesDir), filepath.Join(path, policy.NodesDir, nodeName+".yaml"))
		}
	}
	h := sha256.New()
	for _, n := range names {
		var st syscall.Stat_t
		if err := syscall.Stat(n, &st); err != nil {
			_, _ = fmt.Fprintf(h, "%s\x00missing\x00", n) // hash writes never fail
			continue
		}
		_, _ = fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d\x00%d\x00%d.%d\x00%d.%d\x00%o\x00%d\x00%d\x00",
			n, st.Dev, st.Ino, st.Nlink, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec, st.Mode, st.Uid, st.Gid)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// WritePolicyCopy writes pol, the policy in force (every drop-in and node
// overlay applied), as one policy.yaml into dir, for OCI hooks that decide
// alone where the service's own policy path is not visible (a DaemonSet
// whose policy is a ConfigMap inside its pod). dir is made 0700 and the file
// 0600, written to a temporary file and renamed, so a hook reads the old
// policy or the new one, never half of one; hooks refuse a policy file
// others can write.
//
// Before the rename the new file is loaded back as a hook loads it. If it
// does not load, or loads as another policy, the error says so and the last
// copy stays: a copy hooks cannot load refuses every container (or admits
// every one with hook.onError: allow), and no one would see why.
func WritePolicyCopy(dir string, pol *policy.Policy) error {
	b, err := policyCopyYAML(pol)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".policy-*.yaml")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }() // gone after the rename
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	back, err := policy.Load(f.Name(), "")
	if err != nil {
		return fmt.Errorf("the copy does not load back, the last copy is kept: %w", err)
	}
	if back.Digest() != pol.Digest() {
		return fmt.Errorf("the copy loads back as %s, not the policy in force %s; the last copy is kept", back.Digest(), pol.Digest())
	}
	return os.Rename(f.Name(), filepath.Join(dir, policy.MainFile))
}

// policyCopyYAML is the content of the policy copy: a header comment naming
// the policy, then `policy show`'s YAML. The name is quoted (strconv.Quote
// escapes every line break and control character): written raw, a line
// break in it ended the comment and the rest became YAML.
func policyCopyYAML(pol *policy.Policy) ([]byte, error) {
	b, err := pol.MarshalYAML()
	if err != nil {
		return nil, err
	}
	header := "# Written by the patchgate service: the policy in force (" + strconv.Quote(pol.Name()) + ", " + pol.Digest() + ").\n# Do not edit: it is rewritten on every reload.\n"
	return append([]byte(header), b...), nil
}
