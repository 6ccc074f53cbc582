package hostpath

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// tree builds a host root with the symlinks the attacks use.
func tree(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"etc/ssl/certs", "var/log/app", "run/patchgate", "srv/data", "usr/lib"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/hosts"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"var/log/app/evil": "/etc",                  // absolute: starts again at the root
		"var/log/app/rel":  "../../../etc",          // relative, climbs to the root
		"var/log/app/deep": "../../../../../../etc", // climbs past the root: stops there
		"var/run":          "../run",                // as on every distro
		"srv/data/loop":    "loop2",
		"srv/data/loop2":   "loop",
		"srv/data/chain":   "evil2",
		"srv/data/evil2":   "/var/log/app/evil",
		"srv/data/sock":    "/var/run/patchgate",
		"srv/data/dotdot":  "..",
		"lib":              "usr/lib",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestResolve(t *testing.T) {
	root := tree(t)
	r := Resolver(root)
	for _, tc := range []struct{ in, want, err string }{
		{"/etc", "/etc", ""},
		{"//etc//ssl/./certs/", "/etc/ssl/certs", ""},
		{"/var/log/app/evil", "/etc", ""},
		{"/var/log/app/evil/ssl", "/etc/ssl", ""},
		{"/var/log/app/rel", "/etc", ""},
		{"/var/log/app/deep", "/etc", ""},
		{"/var/log/app/evil/..", "/", ""}, // the kernel's "..": after the link, not lexical
		{"/var/run/patchgate", "/run/patchgate", ""},
		{"/srv/data/chain", "/etc", ""},
		{"/srv/data/sock", "/run/patchgate", ""},
		{"/srv/data/dotdot/data", "/srv/data", ""},
		{"/lib/modules", "/usr/lib/modules", ""}, // missing tail: lexical
		{"/nope/../etc", "/etc", ""},
		{"/../../etc", "/etc", ""},
		{"/", "/", ""},
		{"/srv/data/loop", "", "too many levels"},
		{"/etc/hosts/x", "", "not a directory"},
		{"/etc/hosts/", "/etc/hosts", ""}, // judged as the same file
		{"etc", "", "not an absolute path"},
		{"", "", "not an absolute path"},
		{"/etc\x00", "", "not an absolute path"},
	} {
		got, err := r(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: got %q, %v; want error %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	// Magic links: /proc/<pid>/root and fd/<n> reach an object, not a path.
	for _, d := range []string{"proc/1", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"proc/1/root": "/", "proc/self": "1", "dev/fd": "/proc/self/fd"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"/proc/1/root/etc", "/proc/self/root", "/dev/fd/3", "/var/log/app/../../../proc/1/root"} {
		if got, err := r(p); !errors.Is(err, ErrMagicLink) {
			t.Errorf("%q: %q %v, want ErrMagicLink", p, got, err)
		}
	}
	if got, err := r("/proc/1"); err != nil || got != "/proc/1" {
		t.Errorf("/proc/1 (no link): %q %v", got, err)
	}
	if _, err := r("/srv/data/loop"); !errors.Is(err, ErrTooManyLinks) {
		t.Errorf("loop: %v, want ErrTooManyLinks", err)
	}
}

// A chain of MaxSymlinks links resolves; one more does not.
func TestResolveLinkLimit(t *testing.T) {
	root := t.TempDir()
	for i := 0; i <= MaxSymlinks; i++ {
		target := "/l" + itoa(i+1)
		if i == MaxSymlinks {
			target = "/"
		}
		if err := os.Symlink(target, filepath.Join(root, "l"+itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := Resolve(root, "/l1"); err != nil || got != "/" {
		t.Errorf("40 links: %q %v", got, err)
	}
	if _, err := Resolve(root, "/l0"); !errors.Is(err, ErrTooManyLinks) {
		t.Errorf("41 links: %v", err)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// FuzzResolve: any input resolves to an absolute, clean path that has no
// symlink left in any existing prefix and resolves to itself, or fails;
// never a panic, never a path outside the root.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/var/log/app/evil/..", "/srv/data/loop", "//a/../../b", "/srv/data/chain/ssl/certs", "/lib/../etc/hosts", "rel"} {
		f.Add(s)
	}
	root := tree(f)
	r := Resolver(root)
	f.Fuzz(func(t *testing.T, p string) {
		got, err := r(p)
		if err != nil {
			return
		}
		if got != path.Clean(got) || !path.IsAbs(got) {
			t.Fatalf("%q -> %q: not absolute and clean", p, got)
		}
		// Every existing prefix is a real directory (the last may be any
		// non-symlink).
		cur := ""
		for _, c := range strings.Split(strings.TrimPrefix(got, "/"), "/") {
			if c == "" {
				continue
			}
			cur += "/" + c
			fi, err := os.Lstat(root + cur)
			if err != nil {
				break
			}
			if fi.Mode()&os.ModeSymlink != 0 {
				t.Fatalf("%q -> %q: %s is still a symlink", p, got, cur)
			}
		}
		again, err := r(got)
		if err != nil || again != got {
			t.Fatalf("%q -> %q -> %q, %v: not a fixed point", p, got, again, err)
		}
	})
}
