package livepatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A provider tool runs as root: it, every directory above it up to the host
// root, and every symlink on its way must be root's and writable by no one
// else. Each case breaks one link of that chain in a copy of a real host
// tree and expects the tool refused with the reason in the kernel state's
// Unknown part, never run.
func TestToolTrustChain(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root string)
		want  string // "" : the tool is trusted and runs
	}{
		{"control", func(*testing.T, string) {}, ""},
		{"tool owned by another user", func(t *testing.T, root string) {
			chown(t, filepath.Join(root, "usr/sbin/kpatch"), 1000)
		}, "/usr/sbin/kpatch is owned by uid 1000, not root"},
		{"parent writable by group", func(t *testing.T, root string) {
			chmod(t, filepath.Join(root, "usr/sbin"), 0o775)
		}, "/usr/sbin is writable by group"},
		{"grandparent owned by another user", func(t *testing.T, root string) {
			chown(t, filepath.Join(root, "usr"), 1000)
		}, "/usr is owned by uid 1000, not root"},
		{"host root writable by others", func(t *testing.T, root string) {
			chmod(t, root, 0o757)
		}, "/ (host root " + "%ROOT%" + ") is writable by others"},
		{"symlink to a tool in a group-writable directory", func(t *testing.T, root string) {
			moveBehindLink(t, root, "/opt/kpatch/kpatch", "/opt/kpatch/kpatch")
			chmod(t, filepath.Join(root, "opt/kpatch"), 0o775)
		}, "/opt/kpatch is writable by group"},
		{"symlink to a tool in a sticky world-writable directory", func(t *testing.T, root string) {
			moveBehindLink(t, root, "/tmp/kpatch", "/tmp/kpatch")
			chmod(t, filepath.Join(root, "tmp"), 0o777|os.ModeSticky)
		}, "/tmp is writable by others (mode dtrwxrwxrwx, sticky"},
		{"symlink owned by another user", func(t *testing.T, root string) {
			moveBehindLink(t, root, "/opt/kpatch/kpatch", "/opt/kpatch/kpatch")
			lchown(t, filepath.Join(root, "usr/sbin/kpatch"), 1000)
		}, "/usr/sbin/kpatch is owned by uid 1000, not root"},
		{"relative symlink through a group-writable directory", func(t *testing.T, root string) {
			moveBehindLink(t, root, "/opt/kpatch/kpatch", "../../opt/kpatch/kpatch")
			chmod(t, filepath.Join(root, "opt"), 0o775)
		}, "/opt is writable by group"},
		{"trusted absolute symlink resolves under the host root", func(t *testing.T, root string) {
			moveBehindLink(t, root, "/opt/kpatch/kpatch", "/opt/kpatch/kpatch")
		}, ""},
		{"trusted symlink escaping with .. stays under the host root", func(t *testing.T, root string) {
			moveBehindLink(t, root, "/opt/kpatch/kpatch", "../../../../../../../../opt/kpatch/kpatch")
		}, ""},
		{"symlink loop", func(t *testing.T, root string) {
			remove(t, filepath.Join(root, "usr/sbin/kpatch"))
			symlink(t, "/usr/sbin/kpatch", filepath.Join(root, "usr/sbin/kpatch"))
		}, "more than 40 symlinks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := copyTree(t, "rhel8-kpatch")
			tc.setup(t, root)
			env := &Env{HostRoot: root}
			res, err := env.Run(context.Background(), "kpatch", "list")
			want := strings.ReplaceAll(tc.want, "%ROOT%", root)
			if want == "" {
				if err != nil || res.ExitCode != 0 || !strings.Contains(string(res.Stdout), "Loaded patch modules") {
					t.Fatalf("trusted tool did not run: %v %+v", err, res)
				}
				return
			}
			if !errors.Is(err, ErrInsecureTool) || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want ErrInsecureTool with %q", err, want)
			}
			k := readHostRoot(t, root)
			found := false
			for _, u := range k.Unknown {
				if u.Provider == "kpatch" && strings.Contains(u.Reason, want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("reason not in the kernel state's unknown parts: %+v", k.Unknown)
			}
		})
	}
}

// The tool runs with the path it was found at as argv[0] (multi-call
// programs such as /snap/bin/* -> /usr/bin/snap choose by it), while the
// checked final target is what is executed.
func TestToolArgv0IsTheLookedUpPath(t *testing.T) {
	root := copyTree(t, "rhel8-kpatch")
	if err := os.MkdirAll(filepath.Join(root, "opt/multi"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The test binary itself is the tool: run as /usr/sbin/multi, the
	// helper below prints its argv[0]. (A script cannot: the kernel gives
	// its interpreter the script's path.)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "opt/multi/tool"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, "/opt/multi/tool", filepath.Join(root, "usr/sbin/multi"))
	res, err := (&Env{HostRoot: root}).Run(context.Background(), "multi", "-test.run=^TestArgv0Helper$")
	if err != nil || !strings.Contains(string(res.Stdout), "argv0=/usr/sbin/multi\n") {
		t.Fatalf("argv[0]: %q %q, %v", res.Stdout, res.Stderr, err)
	}
}

// TestArgv0Helper is the tool of TestToolArgv0IsTheLookedUpPath.
func TestArgv0Helper(t *testing.T) {
	if os.Args[0] != "/usr/sbin/multi" {
		t.Skip("only a helper")
	}
	fmt.Printf("argv0=%s\n", os.Args[0])
}

// moveBehindLink moves the fixture's kpatch to the host path target and
// leaves a symlink (with the given link text) at /usr/sbin/kpatch.
func moveBehindLink(t *testing.T, root, target, link string) {
	t.Helper()
	dst := filepath.Join(root, target)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	chmod(t, filepath.Dir(dst), 0o755)
	if err := os.Rename(filepath.Join(root, "usr/sbin/kpatch"), dst); err != nil {
		t.Fatal(err)
	}
	symlink(t, link, filepath.Join(root, "usr/sbin/kpatch"))
}

func chmod(t *testing.T, p string, m os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, m); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, p string, uid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file away")
	}
	if err := os.Chown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
}

func lchown(t *testing.T, p string, uid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a link away")
	}
	if err := os.Lchown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}
