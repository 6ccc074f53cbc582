package trustedpath

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Chain refuses a path below a directory others may write, with an *Error;
// a missing path is a plain file system error; Check refuses the directory
// itself. (policy/load_test.go tests the same checks through Load.)
func TestChainAndCheck(t *testing.T) {
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(open, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := Chain(filepath.Join(open, "sub")); err != nil || got != filepath.Join(open, "sub") {
		t.Fatalf("Chain of a 0755 path = %q, %v", got, err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	var te *Error
	_, err := Chain(filepath.Join(open, "sub"))
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("Chain below a 0777 directory = %v, want an *Error", err)
	}
	fi, err := os.Stat(open)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(open, fi); !errors.As(err, &te) {
		t.Errorf("Check of a 0777 directory = %v, want an *Error", err)
	}
	_, err = Chain(filepath.Join(base, "missing"))
	if err == nil || errors.As(err, &te) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Chain of a missing path = %v, want not-exist, not an *Error", err)
	}
}

// ChainIn walks a node's tree mounted elsewhere: an absolute symlink and
// ".." stay inside the root, results and errors name node paths, and a
// node directory others may write is refused even though the directory the
// tree is mounted at is not.
func TestChainIn(t *testing.T) {
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"opt/patchgate/bin", "usr/local", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "opt/patchgate/bin/patchgate"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	// /usr/local/pg -> /opt/patchgate on the node, not this machine's /opt.
	if err := os.Symlink("/opt/patchgate", filepath.Join(root, "usr/local/pg")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/opt/patchgate/bin/patchgate", "/usr/local/pg/bin/patchgate", "/../../etc/../opt/patchgate/bin/patchgate"} {
		if got, err := ChainIn(root, p); err != nil || got != "/opt/patchgate/bin/patchgate" {
			t.Errorf("ChainIn(%s) = %q, %v; want /opt/patchgate/bin/patchgate", p, got, err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "opt"), 0o777); err != nil {
		t.Fatal(err)
	}
	var te *Error
	for _, p := range []string{"/opt/patchgate/bin/patchgate", "/usr/local/pg/bin/patchgate"} {
		_, err := ChainIn(root, p)
		if !errors.As(err, &te) || !strings.Contains(err.Error(), "directory /opt (on the way to "+p+") is writable by group or others") {
			t.Errorf("ChainIn(%s) below a 0777 /opt = %v, want an *Error naming /opt", p, err)
		}
	}
	if _, err := ChainIn(root, "opt/patchgate"); err == nil {
		t.Error("a relative path was accepted")
	}
}
