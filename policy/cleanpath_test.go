package policy

import (
	"path"
	"testing"
)

func TestCleanPathMatchesPathClean(t *testing.T) {
	for _, p := range []string{"", "/", "//", "/a", "/a/", "/a//b", "/a/./b", "/a/../b", "/a/b/..", "/a/b/.", "/..", "/.", "a/b", "/var/run/x", "/a/.b/..c", "/...", "/a/b.", "/etc/ssl/../ssl/certs"} {
		if got, want := cleanPath(p), path.Clean(p); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", p, got, want)
		}
	}
}

func FuzzCleanPath(f *testing.F) {
	f.Add("/a/../b//c/.")
	f.Fuzz(func(t *testing.T, p string) {
		if got, want := cleanPath(p), path.Clean(p); got != want {
			t.Fatalf("cleanPath(%q) = %q, want %q", p, got, want)
		}
	})
}
