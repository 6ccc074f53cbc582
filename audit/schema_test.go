package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// The schema's source of truth is the example line in docs/audit.md; these
// helpers check records against its keys.

var docExample = sync.OnceValues(func() ([]byte, error) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "audit.md"))
	if err != nil {
		return nil, err
	}
	_, after, ok := bytes.Cut(doc, []byte("```json audit-example\n"))
	if !ok {
		return nil, os.ErrNotExist
	}
	line, _, ok := bytes.Cut(after, []byte("\n```"))
	if !ok {
		return nil, os.ErrNotExist
	}
	return line, nil
})

// optionalKeys may be missing from a record although the example has them.
var optionalKeys = map[string]bool{"remediation": true, "remediation.reason": true}

func keyPaths(v any, prefix string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, vv := range x {
			p := prefix + k
			out[p] = true
			keyPaths(vv, p+".", out)
		}
	case []any:
		if len(x) > 0 {
			p := strings.TrimSuffix(prefix, ".") + "[]"
			out[p] = true
			for _, e := range x {
				keyPaths(e, p+".", out)
			}
		}
	}
}

func pathsOf(t testing.TB, line []byte) map[string]bool {
	t.Helper()
	var v any
	if err := json.Unmarshal(line, &v); err != nil {
		t.Fatalf("line does not parse as JSON: %v\n%s", err, line)
	}
	m := map[string]bool{}
	keyPaths(v, "", m)
	return m
}

func parent(p string) string {
	if i := strings.LastIndexAny(p, "."); i >= 0 {
		return p[:i]
	}
	return ""
}

// checkSchema fails unless line has exactly the documented keys: none beyond
// the example's, and every example key whose parent is present (optional
// ones aside).
func checkSchema(t testing.TB, line []byte) {
	t.Helper()
	ex, err := docExample()
	if err != nil {
		t.Fatalf("docs/audit.md example: %v", err)
	}
	want, got := pathsOf(t, ex), pathsOf(t, line)
	var extra, missing []string
	for p := range got {
		// "x[]" marks a non-empty array: fine wherever the example has the
		// array x (the example's exemptions list is empty).
		if arr, ok := strings.CutSuffix(p, "[]"); ok && want[arr] {
			continue
		}
		if !want[p] {
			extra = append(extra, p)
		}
	}
	for p := range want {
		if got[p] || optionalKeys[p] || strings.HasSuffix(p, "[]") { // "x[]" only marks a non-empty array
			continue
		}
		if par := parent(p); par == "" || got[par] {
			missing = append(missing, p)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	if len(extra)+len(missing) > 0 {
		t.Fatalf("record does not match the docs/audit.md example: extra keys %v, missing keys %v\n%s", extra, missing, line)
	}
}

// checkLogFile parses every line of a file as a record, checks its schema and
// returns the records.
func checkLogFile(t testing.TB, path string) []Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 {
			if i != len(bytes.Split(data, []byte("\n")))-1 {
				t.Fatalf("%s:%d: empty line", path, i+1)
			}
			continue
		}
		r, err := ParseRecord(line)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, i+1, err)
		}
		checkSchema(t, line)
		recs = append(recs, r)
	}
	return recs
}

func TestDocExampleParses(t *testing.T) {
	ex, err := docExample()
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRecord(ex)
	if err != nil {
		t.Fatalf("docs/audit.md example is not a valid record: %v", err)
	}
	// Re-marshalling the example gives back the same bytes: the doc shows
	// exactly what the writer writes.
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(b), ex) {
		t.Fatalf("example is not in canonical form:\n got %s\nwant %s", b, ex)
	}
	checkSchema(t, ex)
}

func TestCheckSchemaCatchesDrift(t *testing.T) {
	ex, _ := docExample()
	var m map[string]any
	if err := json.Unmarshal(ex, &m); err != nil {
		t.Fatal(err)
	}
	m["extra"] = 1
	delete(m, "hostname")
	b, _ := json.Marshal(m)
	ft := &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		checkSchema(ft, b)
	}()
	if !ft.failed {
		t.Fatal("checkSchema accepted a record with an extra and a missing key")
	}
}

type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(string, ...any) {
	f.failed = true
	panic("fatal")
}
