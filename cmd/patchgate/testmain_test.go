package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The tests never read this machine's node policy or service status: both
// default to paths that do not exist (a test that wants them sets its own).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "patchgate-cmd-test")
	if err != nil {
		panic(err)
	}
	nodePolicyDir = filepath.Join(dir, "etc-patchgate")
	defaultStatusFile = filepath.Join(dir, "status.json")
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
