package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/policy"
)

// writeAuditFixture writes real records through audit.Log (with rotation):
// blocked root+hostNetwork pods in "payments", flagged ones in "web", and an
// old record; then appends a corrupt line to the current file.
func writeAuditFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	lg := logrus.New()
	lg.SetOutput(io.Discard)
	l, err := audit.Open(audit.Config{Path: path, MaxSizeBytes: 3000, MaxBackups: 20, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	write := func(ns, name string, w *policy.Workload, when time.Time) {
		w.Pod = policy.PodIdentity{Namespace: ns, Name: name + "-pod"}
		w.Container = policy.ContainerIdentity{ID: "c-" + name, Name: name, Image: "busybox:1.36"}
		d := policy.Evaluate(policy.Default(), w, nil, now)
		r := audit.NewRecord(audit.SourceNRI, w, &d, nil, nil)
		r.Time = audit.Time{Time: when}
		if err := l.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		write("payments", fmt.Sprintf("root%d", i), &policy.Workload{Seen: policy.FieldsAll, HostNamespaces: []string{"network"},
			SeccompUnconfined: true, MaskedPaths: []string{"/proc/kcore"}}, now.Add(time.Duration(i)*time.Second))
	}
	for i := 0; i < 2; i++ {
		write("web", fmt.Sprintf("web%d", i), &policy.Workload{Seen: policy.FieldUser | policy.FieldSeccomp, User: policy.User{UID: 1000},
			SeccompUnconfined: true}, now.Add(time.Duration(10+i)*time.Second))
	}
	write("old", "ancient", &policy.Workload{Seen: policy.FieldUser}, now.Add(-48*time.Hour))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("{this is not a record}\n"); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	return path
}

func TestAuditCommandTable(t *testing.T) {
	path := writeAuditFixture(t)
	if files, _ := audit.LogFiles(path); len(files) < 2 {
		t.Fatalf("fixture did not rotate: %v", files)
	}
	var out, errb bytes.Buffer
	if code := dispatch([]string{"audit", "--path", path}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s := out.String()
	for _, want := range []string{"TIME", "payments/root0-pod", "web/web1-pod", "old/ancient-pod", "BY RULE", "BY NAMESPACE",
		"; 1 corrupt lines skipped"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if !strings.Contains(errb.String(), path+":") || !strings.Contains(errb.String(), "corrupt line skipped") {
		t.Errorf("corrupt line not reported with file:line: %q", errb.String())
	}
	// Time order: the old record comes first, root0 before web1.
	if strings.Index(s, "ancient") > strings.Index(s, "root0") || strings.Index(s, "root0") > strings.Index(s, "web1") {
		t.Errorf("not in time order:\n%s", s)
	}
}

func TestAuditCommandFiltersJSON(t *testing.T) {
	path := writeAuditFixture(t)
	run := func(args ...string) auditOutput {
		t.Helper()
		var out, errb bytes.Buffer
		if code := dispatch(append([]string{"audit", "--path", path, "-o", "json"}, args...), &out, &errb); code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		var res auditOutput
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out.String())
		}
		return res
	}
	all := run()
	if all.Summary.Total != 6 || len(all.Problems) != 1 || all.Problems[0].Line == 0 {
		t.Fatalf("all: total %d problems %+v", all.Summary.Total, all.Problems)
	}
	if got := run("--namespace", "payments"); got.Summary.Total != 3 || got.Summary.ByNamespace["payments"] != 3 {
		t.Fatalf("--namespace: %+v", got.Summary)
	}
	if got := run("--since", "1h"); got.Summary.Total != 5 {
		t.Fatalf("--since 1h: %+v", got.Summary)
	}
	if got := run("--since", "3d"); got.Summary.Total != 6 {
		t.Fatalf("--since 3d: %+v", got.Summary)
	}
	blocked := run("--action", "blocked")
	for _, r := range blocked.Records {
		if r.Action != "blocked" {
			t.Fatalf("--action blocked returned %s", r.Action)
		}
	}
	if blocked.Summary.Total == 0 {
		t.Fatal("no blocked records")
	}
	rule := run("--rule", "hostNamespaces")
	if rule.Summary.Total != 3 || rule.Summary.ByRule["hostNamespaces"] != 3 {
		t.Fatalf("--rule: %+v", rule.Summary)
	}
}

func TestAuditCommandBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"audit", "--action", "denied"}, {"audit", "-o", "xml"}, {"audit", "--since", "yesterday"}, {"audit", "extra"},
	} {
		var out, errb bytes.Buffer
		if code := dispatch(args, &out, &errb); code != exitInvalid {
			t.Errorf("%v: exit %d, want %d", args, code, exitInvalid)
		}
	}
}

// A log that is not there is an error (exit 2), not "0 records": a typo
// in --path must not read as a node where nothing was refused.
func TestAuditCommandMissingLog(t *testing.T) {
	for _, path := range []string{filepath.Join(t.TempDir(), "none.log"), "/nonexistent/audit.log"} {
		var out, errb bytes.Buffer
		if code := dispatch([]string{"audit", "--path", path}, &out, &errb); code != exitInvalid {
			t.Fatalf("%s: exit %d: %s", path, code, errb.String())
		}
		if out.Len() != 0 || !strings.Contains(errb.String(), "no audit log at "+path) {
			t.Fatalf("%s: stdout %q stderr %q", path, out.String(), errb.String())
		}
	}
	// Rotated backups alone are a log.
	dir := t.TempDir()
	src := writeAuditFixture(t)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(path+"."+time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(audit.BackupLayout), data, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := dispatch([]string{"audit", "--path", path}, &out, &errb); code != exitOK {
		t.Fatalf("backups only: exit %d: %s", code, errb.String())
	}
}

// --rule takes a rule ID; a typo is an error that lists the valid ones.
func TestAuditCommandUnknownRule(t *testing.T) {
	path := writeAuditFixture(t)
	var out, errb bytes.Buffer
	if code := dispatch([]string{"audit", "--path", path, "--rule", "runasroot"}, &out, &errb); code != exitInvalid {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{`--rule "runasroot" is not a rule`, "runAsRoot", "privileged", "kernelPatches", "auditUnavailable"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr %q lacks %q", errb.String(), want)
		}
	}
	for _, id := range policy.RuleIDs() {
		out.Reset()
		errb.Reset()
		if code := dispatch([]string{"audit", "--path", path, "--rule", id}, &out, &errb); code != exitOK {
			t.Errorf("--rule %s: exit %d: %s", id, code, errb.String())
		}
	}
}

// Without --path or --policy, audit reads the log the node service writes
// (its status file), and says so.
func TestAuditCommandLogFromService(t *testing.T) {
	logPath := writeAuditFixture(t)
	status := filepath.Join(t.TempDir(), "status.json")
	doc := `{"pid": 1, "policy": {"name": "p", "digest": "sha256:x"}, "audit": {"ok": true, "path": "` + logPath + `"}, "kernel": {}}`
	if err := os.WriteFile(status, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := dispatch([]string{"audit", "--status-file", status, "-o", "json"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res auditOutput
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Log.Path != logPath || res.Log.From != fromService || len(res.Records) == 0 {
		t.Fatalf("log %+v, %d records", res.Log, len(res.Records))
	}
	out.Reset()
	if code := dispatch([]string{"audit", "--status-file", status}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "audit log: "+logPath+" (the log the node service writes)") {
		t.Fatalf("text output does not say which log:\n%s", out.String())
	}
}

func TestAuditCommandPathFromPolicy(t *testing.T) {
	logPath := writeAuditFixture(t)
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	doc := "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: p}\nspec:\n  audit:\n    path: " + logPath + "\n"
	if err := os.WriteFile(pol, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := dispatch([]string{"audit", "--policy", pol, "-o", "json"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res auditOutput
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Summary.Total != 6 {
		t.Fatalf("read %d records through the policy's audit path, want 6", res.Summary.Total)
	}
	// A policy that does not load is an error, not a silent default path.
	if code := dispatch([]string{"audit", "--policy", filepath.Join(t.TempDir(), "missing.yaml")}, &out, &errb); code != exitInvalid {
		t.Fatalf("missing policy: exit %d", code)
	}
}

// Names come from whoever creates the container: a newline, carriage
// return, tab or terminal escape in them must not forge table lines or
// reach the terminal raw.
func TestAuditTableEscapesControlCharacters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	lg := logrus.New()
	lg.SetOutput(io.Discard)
	l, err := audit.Open(audit.Config{Path: path, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	w := &policy.Workload{Seen: policy.FieldsAll, User: policy.User{UID: 0},
		Pod:       policy.PodIdentity{Namespace: "evil\n2026-01-01T00:00:00Z  blocked", Name: "p\r"},
		Container: policy.ContainerIdentity{ID: "c1", Name: "x\x1b[2J\x1b]0;owned\x07", Image: "img\tcol\u202e"}}
	d := policy.Evaluate(policy.Default(), w, nil, time.Now())
	if err := l.Write(context.Background(), audit.NewRecord(audit.SourceNRI, w, &d, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := dispatch(append([]string{"audit"}, []string{"--path", path}...), &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	got := out.String()
	for _, bad := range []string{"\x1b", "\r", "\x07", "\u202e", "\t", "\nevil", "\n2026-01-01"} {
		if strings.Contains(got, bad) {
			t.Errorf("table contains %q raw:\n%s", bad, got)
		}
	}
	for _, want := range []string{`"evil\n2026-01-01T00:00:00Z  blocked/p\r"`, `"x\x1b[2J\x1b]0;owned\a"`, `"img\tcol\u202e"`} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %s:\n%s", want, got)
		}
	}
	// One header line and one record line before the summary.
	if table := strings.SplitN(got, "\n\n", 2)[0]; strings.Count(table, "\n") != 1 {
		t.Errorf("record spans several lines:\n%s", table)
	}
}
