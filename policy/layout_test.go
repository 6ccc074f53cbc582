package policy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Unread names every entry of policy.d/ and nodes/ that Load skips, and
// only those: what Load reads for some node is never listed.
func TestUnreadAndOverlays(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"policy.yaml", "policy.d/10-a.yaml", "policy.d/20-b.yml", "policy.d/.10-a.yaml.swp", "policy.d/30-c.yaml.rpmnew",
		"nodes/worker-1.yaml", "nodes/worker-2.yml", "nodes/.hidden.yaml", "nodes/README"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "policy.d", "extra"), 0o755); err != nil {
		t.Fatal(err)
	}
	unread, err := Unread(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range unread {
		got = append(got, strings.TrimPrefix(e.File, dir+"/")+": "+e.Msg)
	}
	want := []string{
		"policy.d/.10-a.yaml.swp: ignored by patchgate (only policy.d/*.yaml files are read, never names that begin with a dot); remove it, or rename it without the dot",
		"policy.d/20-b.yml: ignored by patchgate (only policy.d/*.yaml files are read); rename it to 20-b.yaml",
		"policy.d/30-c.yaml.rpmnew: ignored by patchgate (only policy.d/*.yaml files are read); remove it, or rename it to .yaml if it is a policy file",
		"policy.d/extra: a directory: ignored by patchgate (only policy.d/*.yaml files are read); move its files into policy.d/",
		"nodes/.hidden.yaml: ignored by patchgate (only nodes/<node name>.yaml files are read, each by the node of that name, never names that begin with a dot); remove it, or rename it without the dot",
		"nodes/README: ignored by patchgate (only nodes/<node name>.yaml files are read, each by the node of that name); remove it, or rename it to .yaml if it is a policy file",
		"nodes/worker-2.yml: ignored by patchgate (only nodes/<node name>.yaml files are read, each by the node of that name); rename it to worker-2.yaml",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Unread:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if nodes, err := Overlays(dir); err != nil || !slices.Equal(nodes, []string{"worker-1"}) {
		t.Errorf("Overlays: %q, %v", nodes, err)
	}
	// A policy.d that is not a directory is skipped by Load too.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, DropInDir), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if unread, err := Unread(other); err != nil || len(unread) != 1 || !strings.Contains(unread[0].Msg, "not a directory") {
		t.Errorf("policy.d a file: %+v, %v", unread, err)
	}
	if nodes, err := Overlays(other); err != nil || nodes != nil {
		t.Errorf("no nodes/: %q, %v", nodes, err)
	}
}
