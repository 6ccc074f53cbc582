package hook

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadStateRecorded(t *testing.T) {
	for _, tc := range []struct {
		file   string
		id     string
		layout Layout
		rt     Runtime
	}{
		{"testdata/runc/state.json", "t1", LayoutPlain, RuntimeUnknown},
		{"testdata/podman/default/state.json", "", LayoutContainersStorage, RuntimePodman},
		{"testdata/podman/privileged-pod/state.json", "", LayoutContainersStorage, RuntimePodman},
		{"testdata/podman/user1000-capdrop/state.json", "", LayoutContainersStorage, RuntimePodman},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = f.Close() }()
			st, err := ReadState(f)
			if err != nil {
				t.Fatalf("ReadState: %v", err)
			}
			if st.Status != "creating" {
				t.Errorf("status = %q, want creating (createRuntime)", st.Status)
			}
			if tc.id != "" && st.ID != tc.id {
				t.Errorf("id = %q, want %q", st.ID, tc.id)
			}
			info, err := ClassifyBundle(st.Bundle, st.ID)
			if err != nil {
				t.Fatal(err)
			}
			if info.Layout != tc.layout {
				t.Errorf("layout = %q, want %q", info.Layout, tc.layout)
			}
			if got := IdentityFrom(st.ID, st.Annotations).Runtime; got != tc.rt {
				t.Errorf("runtime = %q, want %q", got, tc.rt)
			}
		})
	}
}

func TestParseStateRefuses(t *testing.T) {
	good := `{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":1,"bundle":"/run/b/c1"}`
	if _, err := ParseState([]byte(good)); err != nil {
		t.Fatalf("good state refused: %v", err)
	}
	cases := map[string]string{
		"empty":            ``,
		"whitespace":       "  \n",
		"not json":         `hello`,
		"array":            `[]`,
		"unknown key":      `{"ociVersion":"1","id":"c1","status":"creating","bundle":"/b","extra":1}`,
		"trailing":         good + `{}`,
		"trailing garbage": good + `x`,
		"no id":            `{"ociVersion":"1","status":"creating","bundle":"/b"}`,
		"id slash":         `{"ociVersion":"1","id":"../x","status":"creating","bundle":"/b"}`,
		"id dotdot":        `{"ociVersion":"1","id":"..","status":"creating","bundle":"/b"}`,
		"no version":       `{"id":"c1","status":"creating","bundle":"/b"}`,
		"bad status":       `{"ociVersion":"1","id":"c1","status":"paused","bundle":"/b"}`,
		"negative pid":     `{"ociVersion":"1","id":"c1","status":"creating","pid":-4,"bundle":"/b"}`,
		"pid string":       `{"ociVersion":"1","id":"c1","status":"creating","pid":"4","bundle":"/b"}`,
		"no bundle":        `{"ociVersion":"1","id":"c1","status":"creating"}`,
		"relative bundle":  `{"ociVersion":"1","id":"c1","status":"creating","bundle":"run/b"}`,
		"dotdot bundle":    `{"ociVersion":"1","id":"c1","status":"creating","bundle":"/run/b/../../etc"}`,
		"trailing slash":   `{"ociVersion":"1","id":"c1","status":"creating","bundle":"/run/b/"}`,
		"double slash":     `{"ociVersion":"1","id":"c1","status":"creating","bundle":"/run//b"}`,
		"root bundle":      `{"ociVersion":"1","id":"c1","status":"creating","bundle":"/"}`,
		"nul bundle":       `{"ociVersion":"1","id":"c1","status":"creating","bundle":"/run/b\u0000x"}`,
		"duplicate key":    `{"ociVersion":"1","id":"c1","status":"creating","bundle":"/etc","bundle":"/run/b"}`,
		"dup annotation":   `{"ociVersion":"1","id":"c1","status":"creating","bundle":"/run/b","annotations":{"a":"1","a":"2"}}`,
		"annotation int":   `{"ociVersion":"1","id":"c1","status":"creating","bundle":"/run/b","annotations":{"a":1}}`,
		"invalid utf8":     "{\"ociVersion\":\"1\",\"id\":\"c1\",\"status\":\"creating\",\"bundle\":\"/run/\xff\"}",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			st, err := ParseState([]byte(in))
			if err == nil {
				t.Fatalf("accepted %q as %+v", in, st)
			}
			if !errors.Is(err, ErrInvalidState) {
				t.Fatalf("error %v does not wrap ErrInvalidState", err)
			}
		})
	}
}

func TestReadStateHugeInputRefused(t *testing.T) {
	big := `{"ociVersion":"1","id":"c1","status":"creating","bundle":"/run/b","annotations":{"a":"` +
		strings.Repeat("x", MaxStateBytes) + `"}}`
	_, err := ReadState(strings.NewReader(big))
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("huge state: err = %v, want a size error", err)
	}
	// An endless stream is cut off at the limit, not read to the end.
	_, err = ReadState(endless{})
	if err == nil {
		t.Fatal("endless stdin accepted")
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func TestClassifyBundle(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		bundle string
		want   Layout
		ns     string
		bad    bool
	}{
		{"/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + id, LayoutContainerd, "k8s.io", false},
		{"/tmp/x/state/io.containerd.runtime.v2.task/default/" + id, LayoutContainerd, "default", false},
		{"/run/containerd/io.containerd.runtime.v2.task/k8s.io/other", "", "", true},
		{"/var/lib/containers/storage/overlay-containers/" + id + "/userdata", LayoutContainersStorage, "", false},
		{"/run/containers/storage/overlay-containers/" + id + "/userdata", LayoutContainersStorage, "", false},
		{"/tmp/r/vfs-containers/" + id + "/userdata", LayoutContainersStorage, "", false},
		{"/tmp/r/vfs-containers/deadbeef/userdata", "", "", true},
		{"/srv/bundles/web", LayoutPlain, "", false},
		{"relative/" + id, "", "", true},
	} {
		info, err := ClassifyBundle(tc.bundle, id)
		if tc.bad {
			if err == nil || !errors.Is(err, ErrInvalidBundle) {
				t.Errorf("%s: err = %v, want ErrInvalidBundle", tc.bundle, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.bundle, err)
			continue
		}
		if info.Layout != tc.want || info.Namespace != tc.ns {
			t.Errorf("%s: got %+v, want %s %s", tc.bundle, info, tc.want, tc.ns)
		}
	}
}

// writeBundle makes a bundle directory with the given config.json.
func writeBundle(t *testing.T, config []byte) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if config != nil {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), config, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadSpecRecorded(t *testing.T) {
	for _, dir := range []string{"testdata/runc", "testdata/podman/default", "testdata/podman/privileged-pod"} {
		data, err := os.ReadFile(filepath.Join(dir, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		b := writeBundle(t, data)
		spec, raw, err := ReadSpec(b)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if !bytes.Equal(raw, data) || spec.Process == nil {
			t.Fatalf("%s: spec not read back", dir)
		}
	}
}

func TestReadSpecRefusesTricks(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret.json")
	valid, err := os.ReadFile("testdata/runc/config.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, valid, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("config.json symlink", func(t *testing.T) {
		b := writeBundle(t, nil)
		if err := os.Symlink(secret, filepath.Join(b, "config.json")); err != nil {
			t.Fatal(err)
		}
		_, _, err := ReadSpec(b)
		if err == nil || !strings.Contains(err.Error(), "symlink") {
			t.Fatalf("err = %v, want a symlink refusal", err)
		}
	})
	t.Run("bundle symlink", func(t *testing.T) {
		real := writeBundle(t, valid)
		link := filepath.Join(t.TempDir(), "link")
		if err := os.Symlink(real, link); err != nil {
			t.Fatal(err)
		}
		_, _, err := ReadSpec(link)
		if err == nil || !strings.Contains(err.Error(), "symlink") {
			t.Fatalf("err = %v, want a symlink refusal", err)
		}
	})
	t.Run("parent symlink is fine", func(t *testing.T) {
		real := writeBundle(t, valid)
		link := filepath.Join(t.TempDir(), "run")
		if err := os.Symlink(filepath.Dir(real), link); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ReadSpec(filepath.Join(link, "bundle")); err != nil {
			t.Fatalf("bundle under a symlinked parent (like /var/run): %v", err)
		}
	})
	t.Run("escape", func(t *testing.T) {
		b := writeBundle(t, valid)
		_, _, err := ReadSpec(b + "/../bundle")
		if err == nil || !errors.Is(err, ErrInvalidBundle) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("directory config.json", func(t *testing.T) {
		b := writeBundle(t, nil)
		if err := os.Mkdir(filepath.Join(b, "config.json"), 0o700); err != nil {
			t.Fatal(err)
		}
		_, _, err := ReadSpec(b)
		if err == nil || !strings.Contains(err.Error(), "regular file") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("fifo config.json", func(t *testing.T) {
		b := writeBundle(t, nil)
		if err := mkfifo(filepath.Join(b, "config.json")); err != nil {
			t.Skip("mkfifo:", err)
		}
		_, _, err := ReadSpec(b)
		if err == nil || !strings.Contains(err.Error(), "regular file") {
			t.Fatalf("err = %v (a FIFO must be refused without blocking)", err)
		}
	})
	t.Run("huge", func(t *testing.T) {
		b := writeBundle(t, nil)
		f, err := os.Create(filepath.Join(b, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(MaxSpecBytes + 1); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		_, _, err = ReadSpec(b)
		if err == nil || !strings.Contains(err.Error(), "more than") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		_, _, err := ReadSpec(writeBundle(t, nil))
		if err == nil {
			t.Fatal("missing config.json accepted")
		}
	})
	t.Run("not a spec", func(t *testing.T) {
		for _, body := range []string{`{}`, `{"ociVersion":"1.0.2"}`, `{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"cwd":"/"}}`, `[1]`, string(valid) + `{}`} {
			_, _, err := ReadSpec(writeBundle(t, []byte(body)))
			if err == nil {
				t.Errorf("accepted %.60q", body)
			}
		}
	})
}
