package livepatch

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/policy"
)

// testdata/vm/*.txt are the livepatch sysfs trees of a real Debian 6.1 kernel,
// dumped with their modes and values by the `make vmtest` guest
// (test/vm/guest/init) at six moments: no patches, the sample mid-load
// (transition=1), the sample in force, three stacked patches, the top one
// being disabled (enabled=0 transition=1), and after an atomic replace.
// Each is rebuilt under a temporary host root and read through the sysfs
// provider, which must report exactly what the kernel showed. The expected
// values come from the dump, not from the provider.
func TestReplayVMDumps(t *testing.T) {
	files, err := filepath.Glob("testdata/vm/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("want the six vmtest dumps in testdata/vm, found %d", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			root := t.TempDir()
			want := materializeDump(t, file, root)
			r, err := NewReader(WithHostRoot(root), WithProvider(ProviderSysfs))
			if err != nil {
				t.Fatal(err)
			}
			got := r.Read(context.Background())
			if len(got.Unknown) != 0 || len(got.Conflicts) != 0 {
				t.Fatalf("unknown %v conflicts %v", got.Unknown, got.Conflicts)
			}
			if got.Release != want.release {
				t.Errorf("release %q, the kernel said %q", got.Release, want.release)
			}
			if got.LivepatchTainted != want.tainted {
				t.Errorf("livepatchTainted %v, the kernel's taint says %v", got.LivepatchTainted, want.tainted)
			}
			if g, w := patchList(got.Patches), patchList(want.patches); g != w {
				t.Errorf("patches:\n%s\nthe kernel showed:\n%s", g, w)
			}
		})
	}
}

type vmDumpWant struct {
	release string
	tainted bool
	patches []policy.Patch
}

func patchList(ps []policy.Patch) string {
	lines := make([]string, 0, len(ps))
	for _, p := range ps {
		lines = append(lines, fmt.Sprintf("%s enabled=%v transition=%v provider=%s", p.Name, p.Enabled, p.Transition, p.Provider))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// materializeDump rebuilds a dump under root (format: testdata/vm/README.md)
// and returns what the kernel showed.
func materializeDump(t *testing.T, file, root string) vmDumpWant {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var want vmDumpWant
	values := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kind, rest, _ := strings.Cut(line, " ")
		modeS, rest, _ := strings.Cut(rest, " ")
		mode, err := strconv.ParseUint(modeS, 8, 32)
		if err != nil {
			t.Fatalf("%s:%d: mode %q", file, n, modeS)
		}
		switch kind {
		case "d":
			if err := os.MkdirAll(filepath.Join(root, rest), 0o755); err != nil {
				t.Fatal(err)
			}
		case "f":
			path, value, readable := strings.Cut(rest, " = ")
			if !readable {
				// "PATH !": the kernel refused the read (write-only force).
				path = strings.TrimSuffix(rest, " !")
			}
			p := filepath.Join(root, path)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			content := ""
			if readable {
				content = value + "\n"
				values[path] = value
			}
			if err := os.WriteFile(p, []byte(content), os.FileMode(mode)); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, os.FileMode(mode)); err != nil {
				t.Fatal(err)
			}
		case "l":
			path, target, ok := strings.Cut(rest, " -> ")
			if !ok {
				t.Fatalf("%s:%d: bad link", file, n)
			}
			if err := os.Symlink(target, filepath.Join(root, path)); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("%s:%d: unknown kind %q", file, n, kind)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	want.release = values["proc/sys/kernel/osrelease"]
	taint, err := strconv.ParseUint(values["proc/sys/kernel/tainted"], 10, 64)
	if err != nil {
		t.Fatalf("%s: tainted: %v", file, err)
	}
	want.tainted = taint&(1<<15) != 0
	const lp = "sys/kernel/livepatch/"
	for path, v := range values {
		name, file, ok := strings.Cut(strings.TrimPrefix(path, lp), "/")
		if !strings.HasPrefix(path, lp) || !ok || file != "enabled" {
			continue
		}
		want.patches = append(want.patches, policy.Patch{
			Name:       name,
			Enabled:    v == "1",
			Transition: values[lp+name+"/transition"] == "1",
			Provider:   ProviderSysfs,
		})
	}
	return want
}
