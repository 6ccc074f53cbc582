package livepatch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Damaged or partial host trees: what cannot be read is unknown, never an
// empty "no patches".
func TestSysfsDamagedTrees(t *testing.T) {
	const patchDir = "sys/kernel/livepatch/livepatch_sample"
	for _, c := range []struct {
		name    string
		tree    string
		damage  func(root string) error
		unknown string // part/provider, "" for none
		reason  string
		check   func(t *testing.T, k Report)
	}{
		{"enabled unreadable", "debian12-enabled", func(root string) error {
			p := filepath.Join(root, patchDir, "enabled")
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Symlink("/nonexistent/enabled", p)
		}, "patches/sysfs", "enabled", nil},
		{"enabled garbage", "debian12-enabled", func(root string) error {
			return os.WriteFile(filepath.Join(root, patchDir, "enabled"), []byte("2\n"), 0o644)
		}, "patches/sysfs", "want 0 or 1", nil},
		{"sysfs not mounted", "debian12-enabled", func(root string) error {
			return os.RemoveAll(filepath.Join(root, "sys"))
		}, "patches/sysfs", "not mounted", nil},
		{"livepatch dir unreadable", "debian12-enabled", func(root string) error {
			d := filepath.Join(root, "sys/kernel/livepatch")
			if err := os.RemoveAll(d); err != nil {
				return err
			}
			return os.WriteFile(d, []byte("not a directory\n"), 0o644)
		}, "patches/sysfs", "cannot read", nil},
		{"no osrelease: /proc/version", "debian12-enabled", func(root string) error {
			return os.Remove(filepath.Join(root, "proc/sys/kernel/osrelease"))
		}, "", "", func(t *testing.T, r Report) {
			if r.Release != "6.1.0-18-amd64" {
				t.Errorf("release from /proc/version = %q", r.Release)
			}
		}},
		{"no release at all", "debian12-enabled", func(root string) error {
			if err := os.Remove(filepath.Join(root, "proc/sys/kernel/osrelease")); err != nil {
				return err
			}
			return os.Remove(filepath.Join(root, "proc/version"))
		}, "version/sysfs", "kernel release", nil},
		{"patch directory gone while reading (a finished unpatch)", "debian12-enabled", func(root string) error {
			// A dangling entry: listed, but stat fails with ENOENT.
			return os.Symlink("/nonexistent/patch", filepath.Join(root, "sys/kernel/livepatch/livepatch_gone"))
		}, "", "", func(t *testing.T, r Report) {
			if len(r.Patches) != 1 || r.Patches[0].Name != "livepatch_sample" {
				t.Errorf("patches = %+v", r.Patches)
			}
		}},
		{"vmlinux not patched while in force", "debian12-enabled", func(root string) error {
			return os.WriteFile(filepath.Join(root, patchDir, "vmlinux/patched"), []byte("0\n"), 0o644)
		}, "", "", func(t *testing.T, r Report) {
			if len(r.Conflicts) != 1 || !strings.Contains(r.Conflicts[0], "vmlinux/patched is 0") {
				t.Errorf("conflicts = %q", r.Conflicts)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := copyTree(t, c.tree)
			if err := c.damage(root); err != nil {
				t.Fatal(err)
			}
			r := Sysfs{}.Read(context.Background(), &Env{HostRoot: root})
			var got []string
			for _, u := range r.Unknown {
				got = append(got, u.Part+"/"+u.Provider)
				if c.reason != "" && !strings.Contains(u.Reason, c.reason) {
					t.Errorf("reason %q lacks %q", u.Reason, c.reason)
				}
			}
			if strings.Join(got, ",") != c.unknown {
				t.Errorf("unknown = %v (%+v), want %q", got, r.Unknown, c.unknown)
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
}
