// Package ocistate reads the OCI runtime state a runtime writes on a hook's
// stdin, strictly. It uses the standard library only, so that the thin hook
// (cmd/patchgate-hook), which the runtime starts for every container, links
// it without the policy engine.
package ocistate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Limits on untrusted input. A state larger than MaxStateBytes is
// refused, not truncated.
const (
	// MaxStateBytes bounds the state on stdin. Real states are a few hundred
	// bytes; CRI-O copies pod labels and annotations into them, which stays
	// far below this.
	MaxStateBytes = 1 << 20
	// maxPathLen is PATH_MAX.
	maxPathLen = 4096
)

// ErrInvalidState is wrapped by every error about the state on stdin.
var ErrInvalidState = errors.New("invalid container state")

// State is the OCI runtime state that a runtime writes on a hook's stdin
// (runtime-spec runtime.md "State"). runc, podman and containerd write exactly
// these keys; see testdata/README.md for the recorded inputs.
type State struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Pid         int               `json:"pid,omitempty"`
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// statuses are the runtime-spec container statuses.
var statuses = map[string]bool{"creating": true, "created": true, "running": true, "stopped": true}

// ReadState reads and validates the state from r. It reads at most
// MaxStateBytes+1 bytes and refuses anything larger, unknown keys, trailing
// data, a missing id or bundle, a relative or unclean bundle path, and
// strings that are not valid UTF-8.
func ReadState(r io.Reader) (*State, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxStateBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading stdin: %v", ErrInvalidState, err)
	}
	return ParseState(data)
}

// ParseState validates one state document; see ReadState.
func ParseState(data []byte) (*State, error) {
	if len(data) > MaxStateBytes {
		return nil, fmt.Errorf("%w: more than %d bytes on stdin", ErrInvalidState, MaxStateBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: stdin is empty (the runtime passes the state there)", ErrInvalidState)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrInvalidState)
	}
	if err := checkDuplicateKeys(data); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidState, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var st State
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidState, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidState)
	}
	if err := st.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidState, err)
	}
	return &st, nil
}

// Validate checks a state that was not read by ParseState (the node
// service re-checks what the thin hook sends it) the same way.
func (st *State) Validate() error {
	if err := st.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidState, err)
	}
	return nil
}

func (st *State) validate() error {
	if st.OCIVersion == "" {
		return errors.New("ociVersion is missing")
	}
	if err := checkID(st.ID); err != nil {
		return err
	}
	if !statuses[st.Status] {
		return fmt.Errorf("status %q is not one of creating, created, running, stopped", st.Status)
	}
	if st.Pid < 0 {
		return fmt.Errorf("pid %d is negative", st.Pid)
	}
	return CheckBundlePath(st.Bundle)
}

// checkID refuses container IDs that could not be a directory name: runc
// allows [\w+-.]+ and containerd/podman use 64 hex digits.
func checkID(id string) error {
	if id == "" {
		return errors.New("id is missing")
	}
	if len(id) > 1024 {
		return errors.New("id is longer than 1024 bytes")
	}
	if id == "." || id == ".." {
		return fmt.Errorf("id %q is not a container id", id)
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.', r == '+':
		default:
			return fmt.Errorf("id %q has a character outside [A-Za-z0-9_+.-]", id)
		}
	}
	return nil
}

// CheckBundlePath refuses a bundle path that is empty, relative, not in
// clean form (".." or "." components, doubled or trailing slashes), longer
// than PATH_MAX, or that contains a NUL byte. A clean absolute path cannot
// climb out of the directory it names.
func CheckBundlePath(p string) error {
	switch {
	case p == "":
		return errors.New("bundle is missing")
	case len(p) > maxPathLen:
		return fmt.Errorf("bundle path is longer than %d bytes", maxPathLen)
	case strings.IndexByte(p, 0) >= 0:
		return errors.New("bundle path contains a NUL byte")
	case !filepath.IsAbs(p):
		return fmt.Errorf("bundle %q is not an absolute path", p)
	case filepath.Clean(p) != p:
		return fmt.Errorf("bundle %q is not a clean path (it would resolve to %q)", p, filepath.Clean(p))
	case p == "/":
		return errors.New("bundle is the root directory")
	}
	return nil
}

// checkDuplicateKeys walks the JSON tokens and refuses an object with the
// same key twice: encoding/json would silently keep the last, so two readers
// of the same state could disagree about it.
func checkDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		obj    bool
		keys   map[string]bool
		expKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top != nil && top.obj {
					top.expKey = true
				}
				if len(stack) >= 64 {
					return errors.New("JSON nested more than 64 levels")
				}
				stack = append(stack, &frame{obj: d == '{', keys: map[string]bool{}, expKey: d == '{'})
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if top != nil && top.obj {
			if top.expKey {
				k, _ := tok.(string)
				if top.keys[k] {
					return fmt.Errorf("key %q appears twice in one object", k)
				}
				top.keys[k] = true
				top.expKey = false
			} else {
				top.expKey = true
			}
		}
	}
}
