package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// FuzzAuditCommand runs `patchgate audit` on an arbitrary log file: it never
// panics, exits 0, and every non-empty line is either shown or reported.
func FuzzAuditCommand(f *testing.F) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "audit.md"))
	if err != nil {
		f.Fatal(err)
	}
	_, after, _ := strings.Cut(string(doc), "```json audit-example\n")
	example, _, _ := strings.Cut(after, "\n```")
	f.Add([]byte(example + "\n"))
	f.Add([]byte("garbage\n" + example + "\n" + example[:40]))
	f.Add([]byte{0, '\n', 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "audit.log")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		if code := dispatch([]string{"audit", "--path", path, "-o", "json"}, &out, &errb); code != exitOK {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		var res auditOutput
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("output is not JSON: %v", err)
		}
		lines := 0
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimRight(l, "\r")) > 0 {
				lines++
			}
		}
		// Repeated UUIDs are shown once, so records can be fewer than valid lines.
		if len(res.Records)+len(res.Problems) > lines || (lines > 0 && len(res.Records)+len(res.Problems) == 0) {
			t.Fatalf("%d records + %d problems for %d lines", len(res.Records), len(res.Problems), lines)
		}
		// The table: one line per record, and no control character but
		// the newlines that end them.
		out.Reset()
		errb.Reset()
		if code := dispatch([]string{"audit", "--path", path}, &out, &errb); code != exitOK {
			t.Fatalf("table: exit %d: %s", code, errb.String())
		}
		for _, r := range out.String() + errb.String() {
			if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
				t.Fatalf("raw control character %q in the output:\n%s%s", r, out.String(), errb.String())
			}
		}
		if table, _, _ := strings.Cut(out.String(), "\n\n"); strings.Count(table, "\n") != len(res.Records) {
			t.Fatalf("%d table lines for %d records:\n%s", strings.Count(table, "\n"), len(res.Records), table)
		}
	})
}
