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
