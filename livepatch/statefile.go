package livepatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/patchgate/patchgate/policy"
)

// DefaultStateFile is where the node service writes the kernel state for the
// OCI hook to read.
const DefaultStateFile = "/run/patchgate/kernel-state.json"

// maxStateFile bounds what ReadStateFile reads.
const maxStateFile = 4 << 20

// WriteStateFile writes k to path atomically: a temporary file in the same
// directory, synced, renamed over path, and the directory synced. A reader
// sees the old file or the new one, never a part. The file is 0644 (the
// state holds no secret); the directory is created 0755 if missing.
func WriteStateFile(path string, k *policy.KernelState) error {
	if k == nil {
		return fmt.Errorf("%w: nil kernel state", ErrOption)
	}
	data, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return WriteFileAtomic(path, data, 0o644)
}

// WriteFileAtomic writes data to a temporary file next to path, syncs it,
// renames it over path and syncs the directory. On failure the temporary
// file is removed and every error met is returned.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if err == nil {
			return
		}
		if !closed {
			err = errors.Join(err, f.Close())
		}
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	closed = true
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil // the file is in place; the directory sync is best effort
	}
	if serr := d.Sync(); serr != nil {
		return errors.Join(fmt.Errorf("sync %s: %w", dir, serr), d.Close())
	}
	return d.Close()
}

// ReadStateFile reads a state file written by WriteStateFile (or any
// KernelState JSON) with policy.ParseKernelState's validation.
func ReadStateFile(path string) (*policy.KernelState, error) {
	data, err := readBounded(path, maxStateFile)
	if err != nil {
		return nil, err
	}
	k, err := policy.ParseKernelState(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// readBounded reads a regular file of at most max bytes.
func readBounded(path string, max int64) (data []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", policy.ErrInvalidKernelState, path)
	}
	data, err = io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", policy.ErrInvalidKernelState, path, max)
	}
	return data, nil
}
