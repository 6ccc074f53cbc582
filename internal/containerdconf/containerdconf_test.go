package containerdconf

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// examples is the repository's examples/containerd: the snippets the e2e
// matrix loads into each real containerd release.
func examples(t testing.TB, rel string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "examples", "containerd", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// node makes a host root holding files (node path -> content).
func node(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, body := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// mainImporting is a node's config.toml of the given version that imports
// the conf.d drop-ins, as the snippets' comments tell.
func mainImporting(version string) string {
	return "version = " + version + "\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n" +
		"[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n"
}

func TestShippedSnippets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		files  map[string]string
		status string
		reason string
	}{
		{"v2.4 drop-in", map[string]string{
			"/etc/containerd/config.toml":           mainImporting("4"),
			"/etc/containerd/conf.d/patchgate.toml": examples(t, "v2.4/patchgate.toml"),
		}, OK, ""},
		{"v2.2 drop-in", map[string]string{
			"/etc/containerd/config.toml":           mainImporting("3"),
			"/etc/containerd/conf.d/patchgate.toml": examples(t, "v2.2/patchgate.toml"),
		}, OK, ""},
		{"NRI part alone (2.2+)", map[string]string{
			"/etc/containerd/config.toml":           mainImporting("3"),
			"/etc/containerd/conf.d/patchgate.toml": examples(t, "patchgate.toml"),
		}, OK, ""},
		{"v2.4 snippet as the whole config", map[string]string{
			"/etc/containerd/config.toml": examples(t, "v2.4/patchgate.toml"),
		}, OK, ""},
		{"v2.1 drop-in: no default validator there", map[string]string{
			"/etc/containerd/config.toml":           mainImporting("3"),
			"/etc/containerd/conf.d/patchgate.toml": examples(t, "v2.1/patchgate.toml"),
		}, Missing, `no [plugins."io.containerd.nri.v1.nri".default_validator] table`},
		{"v2.0 drop-in", map[string]string{
			"/etc/containerd/config.toml":           mainImporting("3"),
			"/etc/containerd/conf.d/patchgate.toml": examples(t, "v2.0/patchgate.toml"),
		}, Missing, "no [plugins"},
		{"v1.7: config.toml merged, nri.toml a drop-in", map[string]string{
			"/etc/containerd/config.toml":               "imports = [\"/etc/containerd/conf.d/*.toml\"]\n" + examples(t, "v1.7/config.toml"),
			"/etc/containerd/conf.d/patchgate-nri.toml": examples(t, "v1.7/nri.toml"),
		}, Missing, "no [plugins"},
		{"no drop-in matched", map[string]string{
			"/etc/containerd/config.toml": mainImporting("4"),
		}, Missing, "no [plugins"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(node(t, tc.files), "", "patchgate")
			if r.Status != tc.status || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("= %s %q, want %s %q", r.Status, r.Reason, tc.status, tc.reason)
			}
			if len(r.Files) != len(tc.files) || r.Files[0] != DefaultPath {
				t.Errorf("files read %q", r.Files)
			}
		})
	}
}

const nriOK = `
[plugins."io.containerd.nri.v1.nri".default_validator]
  enable = true
  required_plugins = ["patchgate"]
`

func TestMergeAndEdgeCases(t *testing.T) {
	const main = "/etc/containerd/config.toml"
	for _, tc := range []struct {
		name   string
		files  map[string]string
		status string
		reason string
	}{
		{"dotted keys", map[string]string{main: "version = 3\nplugins.\"io.containerd.nri.v1.nri\".default_validator = { enable = true, required_plugins = [\"other\", \"patchgate\"] }\n"}, OK, ""},
		{"top-level required_plugins is containerd's, not NRI's", map[string]string{main: "version = 3\nrequired_plugins = [\"patchgate\"]\n"}, Missing, "no [plugins"},
		{"another plugin's name", map[string]string{main: strings.Replace(nriOK, `"patchgate"`, `"patchgate-shutdown"`, 1)}, Missing, `required_plugins ["patchgate-shutdown"] does not name "patchgate"`},
		{"empty list", map[string]string{main: strings.Replace(nriOK, `["patchgate"]`, `[]`, 1)}, Missing, "required_plugins is empty"},
		{"validator not enabled", map[string]string{main: strings.Replace(nriOK, "enable = true", "enable = false", 1)}, Missing, "the default validator is not enabled"},
		{"enable missing", map[string]string{main: strings.Replace(nriOK, "enable = true", "", 1)}, Missing, "not enabled"},
		{"NRI disabled", map[string]string{main: "[plugins.\"io.containerd.nri.v1.nri\"]\n  disable = true\n" + nriOK}, Missing, "NRI is disabled"},
		{"a later drop-in disables the validator", map[string]string{
			main:                               "imports = [\"conf.d/*.toml\"]\n" + nriOK,
			"/etc/containerd/conf.d/zz.toml":   "[plugins.\"io.containerd.nri.v1.nri\".default_validator]\n  enable = false\n",
			"/etc/containerd/conf.d/aa.toml":   "[plugins.\"io.containerd.nri.v1.nri\"]\n  plugin_request_timeout = \"2s\"\n",
			"/etc/containerd/conf.d/readme.md": "not toml [",
		}, Missing, "not enabled"},
		{"a later drop-in's list replaces the earlier", map[string]string{
			main:                            "imports = [\"/etc/containerd/conf.d/*.toml\"]\n" + nriOK,
			"/etc/containerd/conf.d/x.toml": "[plugins.\"io.containerd.nri.v1.nri\".default_validator]\n  required_plugins = [\"other\"]\n",
		}, Missing, `["other"] does not name`},
		{"a drop-in without the list keeps the main file's", map[string]string{
			main:                            "imports = [\"/etc/containerd/conf.d/*.toml\"]\n" + nriOK,
			"/etc/containerd/conf.d/x.toml": "[plugins.\"io.containerd.nri.v1.nri\".default_validator]\n  tolerate_missing_plugins_annotation = \"x\"\n",
		}, OK, ""},
		{"imports of imports, relative, each once (a loop)", map[string]string{
			main:                         "imports = [\"a.toml\"]\n",
			"/etc/containerd/a.toml":     "imports = [\"sub/b.toml\", \"/etc/containerd/config.toml\"]\n",
			"/etc/containerd/sub/b.toml": "imports = [\"../a.toml\"]\n" + nriOK,
		}, OK, ""},
		{"an import that does not exist: containerd would not start", map[string]string{
			main: "imports = [\"/etc/containerd/gone.toml\"]\n" + nriOK,
		}, Unknown, "cannot read /etc/containerd/gone.toml"},
		{"malformed TOML", map[string]string{main: "version = 3\n[plugins.\"io.containerd.nri.v1.nri\".default_validator\nenable = true\n"}, Unknown, "/etc/containerd/config.toml:2:"},
		{"malformed drop-in", map[string]string{
			main:                            "imports = [\"/etc/containerd/conf.d/*.toml\"]\n" + nriOK,
			"/etc/containerd/conf.d/x.toml": "enable = = true\n",
		}, Unknown, "/etc/containerd/conf.d/x.toml:1:"},
		{"required_plugins a string", map[string]string{main: strings.Replace(nriOK, `["patchgate"]`, `"patchgate"`, 1)}, Unknown, "required_plugins is a string, not a list of names"},
		{"required_plugins holds a number", map[string]string{main: strings.Replace(nriOK, `["patchgate"]`, `["patchgate", 1]`, 1)}, Unknown, "holds a number"},
		{"enable a string", map[string]string{main: strings.Replace(nriOK, "enable = true", `enable = "true"`, 1)}, Unknown, "enable is a string"},
		{"imports a string", map[string]string{main: "imports = \"/etc/containerd/conf.d/*.toml\"\n" + nriOK}, Unknown, "imports is a string"},
		{"the NRI table a string", map[string]string{main: "[plugins]\n\"io.containerd.nri.v1.nri\" = \"on\"\n"}, Unknown, "not a table"},
		{"root a number", map[string]string{main: "root = 1\n" + nriOK}, Unknown, "root is a number, not a path"},
		{"state relative", map[string]string{main: "state = \"run/containerd\"\n" + nriOK}, Unknown, `state "run/containerd" is not an absolute path`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(node(t, tc.files), main, "patchgate")
			if r.Status != tc.status || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("= %s %q, want %s %q", r.Status, r.Reason, tc.status, tc.reason)
			}
		})
	}
}

func TestAbsent(t *testing.T) {
	r := Check(t.TempDir(), "", "patchgate")
	if r.Status != Absent || !strings.Contains(r.Reason, "no containerd config at /etc/containerd/config.toml") ||
		r.Root != DefaultRoot || r.State != DefaultState {
		t.Errorf("%+v", r)
	}
}

// TestSymlinksStayInHostRoot: an absolute symlink in the node's tree
// resolves inside the host root, as on the node, not on this machine.
func TestSymlinksStayInHostRoot(t *testing.T) {
	root := node(t, map[string]string{"/srv/containerd.toml": nriOK})
	if err := os.MkdirAll(filepath.Join(root, "etc/containerd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/srv/containerd.toml", filepath.Join(root, "etc/containerd/config.toml")); err != nil {
		t.Fatal(err)
	}
	if r := Check(root, "", "patchgate"); r.Status != OK {
		t.Errorf("%+v", r)
	}
	// A link to a file that exists only on this machine is not followed there.
	if err := os.Remove(filepath.Join(root, "etc/containerd/config.toml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(root, "etc/containerd/config.toml")); err != nil {
		t.Fatal(err)
	}
	if r := Check(root, "", "patchgate"); r.Status == OK {
		t.Errorf("followed a link out of the host root: %+v", r)
	}
}

func TestTooLarge(t *testing.T) {
	r := Check(node(t, map[string]string{DefaultPath: nriOK + "#" + strings.Repeat("x", maxFileBytes)}), "", "patchgate")
	if r.Status != Unknown || !strings.Contains(r.Reason, "larger than") {
		t.Errorf("%+v", r)
	}
}

// FuzzJudge: whatever the bytes, an answer and never a panic; "ok" only
// when the bytes name the plugin, and a decode error is never "ok".
func FuzzJudge(f *testing.F) {
	for _, rel := range []string{"v2.4/patchgate.toml", "v2.2/patchgate.toml", "v2.0/patchgate.toml", "v1.7/nri.toml", "patchgate.toml"} {
		f.Add([]byte(examples(f, rel)))
	}
	f.Add([]byte(nriOK))
	f.Add([]byte("plugins.\"io.containerd.nri.v1.nri\".default_validator = {enable = true, required_plugins = [\"patchgate\"]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := Judge("/etc/containerd/config.toml", data, "patchgate")
		switch r.Status {
		case OK:
			if !strings.Contains(string(data), "patchgate") && !strings.Contains(string(data), `\u`) && !strings.Contains(string(data), `\U`) {
				t.Fatalf("ok without the name in the file: %q", data)
			}
			if !r.ValidatorEnabled {
				t.Fatalf("ok with the validator off: %+v", r)
			}
		case Missing, Unknown:
			if r.Reason == "" {
				t.Fatalf("%s without a reason", r.Status)
			}
		default:
			t.Fatalf("status %q", r.Status)
		}
	})
}

// TestMergeMatchesContainerd: for each recorded tree, the settings read
// from the files equal those in containerd 2.4.2's own merged config
// (`containerd config dump`, testdata/merge/README.md): a later drop-in's
// list replaces the earlier one, a drop-in without it keeps it, enable
// follows the last file that sets it, drop-ins in glob order.
func TestMergeMatchesContainerd(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "merge", "*", "dump.toml"))
	if err != nil || len(dirs) < 7 {
		t.Fatalf("recorded trees: %v %v", dirs, err)
	}
	for _, dump := range dirs {
		dir := filepath.Dir(dump)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			got := Check(dir, DefaultPath, "patchgate")
			data, err := os.ReadFile(dump)
			if err != nil {
				t.Fatal(err)
			}
			want := Judge("dump.toml", data, "patchgate")
			if got.Status == Unknown || want.Status == Unknown {
				t.Fatalf("unreadable: files %q / dump %q", got.Reason, want.Reason)
			}
			if got.Root != want.Root || got.State != want.State {
				t.Errorf("from the files: root %q state %q; containerd merged: root %q state %q", got.Root, got.State, want.Root, want.State)
			}
			if got.Status != want.Status || got.ValidatorEnabled != want.ValidatorEnabled ||
				strings.Join(got.RequiredPlugins, ",") != strings.Join(want.RequiredPlugins, ",") {
				t.Errorf("from the files: %s enable=%t %q; containerd merged: %s enable=%t %q",
					got.Status, got.ValidatorEnabled, got.RequiredPlugins, want.Status, want.ValidatorEnabled, want.RequiredPlugins)
			}
		})
	}
}
