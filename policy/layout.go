package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A policy directory's layout, for `patchgate policy validate`: which node
// overlays it holds, and which entries of policy.d/ and nodes/ Load never
// reads. Load skips those silently at run time (a *.yml drop-in changes
// nothing on any node), so a CI that validates the directory must see them.

// Overlays returns the node names of the overlays in the policy directory
// dir (nodes/<name>.yaml), in lexical order; none when it has no nodes/
// directory (Unread reports a nodes that is not one).
func Overlays(dir string) ([]string, error) {
	path := filepath.Join(dir, NodesDir)
	if fi, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir() {
		return nil, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var names []string
	for _, e := range entries { // ReadDir sorts by name
		if isPolicyFileName(e.Name()) {
			names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
		}
	}
	return names, nil
}

// Unread lists the entries of dir's policy.d/ and nodes/ that Load never
// reads, for any node: each names the entry, says why the node service and
// the hooks skip it, and what to do.
func Unread(dir string) ([]PosError, error) {
	var out []PosError
	for _, sub := range []string{DropInDir, NodesDir} {
		path := filepath.Join(dir, sub)
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		if !fi.IsDir() {
			out = append(out, PosError{File: path, Msg: "not a directory: ignored by patchgate (" + sub + "/ must be a directory of *.yaml files)"})
			continue
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		for _, e := range entries {
			if isPolicyFileName(e.Name()) {
				continue
			}
			out = append(out, PosError{File: filepath.Join(dir, sub, e.Name()), Msg: unreadWhy(sub, e)})
		}
	}
	return out, nil
}

func unreadWhy(sub string, e fs.DirEntry) string {
	read := "only " + sub + "/*.yaml files are read"
	if sub == NodesDir {
		read = "only " + NodesDir + "/<node name>.yaml files are read, each by the node of that name"
	}
	name := e.Name()
	switch {
	case strings.HasPrefix(name, "."):
		return "ignored by patchgate (" + read + ", never names that begin with a dot); remove it, or rename it without the dot"
	case e.IsDir():
		return "a directory: ignored by patchgate (" + read + "); move its files into " + sub + "/"
	case strings.HasSuffix(name, ".yml"):
		return "ignored by patchgate (" + read + "); rename it to " + strings.TrimSuffix(name, ".yml") + ".yaml"
	default:
		return "ignored by patchgate (" + read + "); remove it, or rename it to .yaml if it is a policy file"
	}
}
