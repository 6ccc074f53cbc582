package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// installSources writes stand-ins for the two binaries (their content is
// all install looks at) into a new directory.
func installSources(t *testing.T, patchgate, hook string) string {
	t.Helper()
	from := t.TempDir()
	for name, content := range map[string]string{"patchgate": patchgate, "patchgate-hook": hook} {
		if content == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(from, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return from
}

// secureDir is a new directory install accepts: t.TempDir is 0700, owned
// by whoever runs the test, under root's sticky /tmp.
func secureDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runInstallCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := dispatch(append([]string{"install"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// listDir is the names in dir with their content.
func listDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got[e.Name()] = string(data)
	}
	return got
}

func TestInstallCopiesBoth(t *testing.T) {
	from := installSources(t, "full binary", "thin hook")
	dest := filepath.Join(secureDir(t), "opt", "bin")
	code, out, errs := runInstallCmd(t, "--from", from, "--dest", dest)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if got := listDir(t, dest); len(got) != 2 || got["patchgate"] != "full binary" || got["patchgate-hook"] != "thin hook" {
		t.Fatalf("%s holds %q, want exactly the two binaries", dest, got)
	}
	for _, p := range []string{dest, filepath.Join(dest, "patchgate"), filepath.Join(dest, "patchgate-hook")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %04o, want 0755", p, fi.Mode().Perm())
		}
	}
	// One sha256sum(1) line per file, patchgate first.
	want := fmt.Sprintf("%x  %s\n%x  %s\n",
		sha256.Sum256([]byte("full binary")), filepath.Join(dest, "patchgate"),
		sha256.Sum256([]byte("thin hook")), filepath.Join(dest, "patchgate-hook"))
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
}

// The new binary replaces the old by rename: a runtime that has the old
// one open (or running) keeps its inode and content.
func TestInstallReplacesAtomically(t *testing.T) {
	dest := secureDir(t)
	old := filepath.Join(dest, "patchgate-hook")
	if err := os.WriteFile(old, []byte("old hook"), 0o755); err != nil {
		t.Fatal(err)
	}
	held, err := os.Open(old)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Close() }()
	oldInfo, err := held.Stat()
	if err != nil {
		t.Fatal(err)
	}
	from := installSources(t, "new full", "new hook")
	if code, _, errs := runInstallCmd(t, "--from", from, "--dest", dest); code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	newInfo, err := os.Stat(old)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(oldInfo, newInfo) {
		t.Fatalf("%s was overwritten in place (same inode), want a new file renamed over it", old)
	}
	buf := make([]byte, 64)
	n, _ := held.ReadAt(buf, 0)
	if string(buf[:n]) != "old hook" {
		t.Errorf("the old file now reads %q, want it unchanged", buf[:n])
	}
	if got := listDir(t, dest); len(got) != 2 || got["patchgate-hook"] != "new hook" {
		t.Errorf("%s holds %q", dest, got)
	}
}

// A directory others can write, the destination or one above it, is
// refused before anything is written: whoever can replace the hook runs
// as root in every container's creation.
func TestInstallRefusesWritableDir(t *testing.T) {
	from := installSources(t, "full", "hook")
	for _, tc := range []struct{ name, sub string }{
		{"dest", ""},
		{"parent", "bin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open := filepath.Join(secureDir(t), "open")
			if err := os.Mkdir(open, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(open, 0o777); err != nil {
				t.Fatal(err)
			}
			dest := filepath.Join(open, tc.sub)
			code, out, errs := runInstallCmd(t, "--from", from, "--dest", dest)
			if code != exitInvalid || !strings.Contains(errs, "refusing to install") || !strings.Contains(errs, "writable by group or others") {
				t.Fatalf("exit %d, stderr %q, want 2 and the refusal", code, errs)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing installed", out)
			}
			for _, name := range []string{"patchgate", "patchgate-hook"} {
				if _, err := os.Lstat(filepath.Join(dest, name)); err == nil {
					t.Errorf("%s was written", name)
				}
			}
			if _, err := os.Lstat(dest); tc.sub != "" && err == nil {
				t.Errorf("%s was created under the refused directory", dest)
			}
		})
	}
}

// As root, a destination owned by another user is refused too.
func TestInstallRefusesForeignOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	dest := secureDir(t)
	if err := os.Chown(dest, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runInstallCmd(t, "--from", installSources(t, "full", "hook"), "--dest", dest)
	if code != exitInvalid || !strings.Contains(errs, "owned by uid 65534") {
		t.Fatalf("exit %d, stderr %q, want 2 and the owner", code, errs)
	}
	if got := listDir(t, dest); len(got) != 0 {
		t.Errorf("%s holds %q, want nothing", dest, got)
	}
}

// A missing source fails before anything is written: the old binaries stay
// as they were, and no temporary file is left.
func TestInstallMissingSourceWritesNothing(t *testing.T) {
	dest := secureDir(t)
	before := map[string]string{"patchgate": "old full", "patchgate-hook": "old hook"}
	for name, content := range before {
		if err := os.WriteFile(filepath.Join(dest, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	from := installSources(t, "new full", "") // no patchgate-hook
	code, out, errs := runInstallCmd(t, "--from", from, "--dest", dest)
	if code != exitInvalid || !strings.Contains(errs, "patchgate-hook") || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q, want 2 naming patchgate-hook", code, out, errs)
	}
	if got := listDir(t, dest); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("%s holds %q, want it unchanged: %q", dest, got, before)
	}
}

func TestInstallNeedsDest(t *testing.T) {
	code, _, errs := runInstallCmd(t)
	if code != exitInvalid || !strings.Contains(errs, "--dest") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}

// The sources are opened, not followed into something else: a directory
// in the place of a binary is refused.
func TestInstallRefusesNonRegularSource(t *testing.T) {
	from := installSources(t, "full", "")
	if err := os.Mkdir(filepath.Join(from, "patchgate-hook"), 0o755); err != nil {
		t.Fatal(err)
	}
	dest := secureDir(t)
	code, _, errs := runInstallCmd(t, "--from", from, "--dest", dest)
	if code != exitInvalid || !strings.Contains(errs, "not a regular file") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dest, "patchgate"), &st); err == nil {
		t.Error("patchgate was written")
	}
}
