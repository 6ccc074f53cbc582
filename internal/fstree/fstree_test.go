package fstree

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCopyKeepsModesAndLinks(t *testing.T) {
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "usr/bin/tool"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usr/bin", filepath.Join(src, "bin")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	if err := Copy(src, dst); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dst, "usr/bin/tool"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("tool: %v %v, want mode 0755", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "bin")); err != nil || l != "usr/bin" {
		t.Fatalf("bin link = %q, %v; want usr/bin", l, err)
	}
}

func TestRootOnlyDropsGroupAndOtherWrite(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := RootOnly(dir); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{f: 0o644, dir: 0o755} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %v", p, fi, err, want)
		}
	}
}
