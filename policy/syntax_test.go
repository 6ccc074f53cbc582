package policy

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// lines joins numbered lines so that a test can say which line holds the
// mistake; the numbers are checked, not only written.
func lines(t *testing.T, ls ...string) string {
	t.Helper()
	return strings.Join(ls, "\n") + "\n"
}

// TestErrorsPointAtTheLineToFix writes malformed policy files and loads
// them with Load, as `patchgate policy validate` does, asserting the exact
// file:line of every error. The first case is the one issue 13 saw: yaml
// reported an indentation mistake on line 9 as "line 6" (the line, counted
// from zero, where the enclosing mapping began).
func TestErrorsPointAtTheLineToFix(t *testing.T) {
	head := []string{
		"apiVersion: patchgate.dev/v1alpha1", // 1
		"kind: NodePolicy",                   // 2
		"metadata:",                          // 3
		"  name: broken",                     // 4
		"spec:",                              // 5
		"  defaultAction: enforce",           // 6
	}
	for _, tc := range []struct {
		name string
		body []string // lines 7 and on
		want []string // file:line: message, "F" standing for the file
	}{
		{"indentation: key dedented inside a mapping (issue 13)", []string{
			"  rules:",                         // 7
			"    runAsRoot: {action: warn}",    // 8
			"   privileged: {action: enforce}", // 9
		}, []string{"F:9: did not find expected key (check this line's indentation against the keys above it)"}},
		{"indentation: key indented under a scalar", []string{
			"  kernel:",             // 7
			"    onUnknown: warn",   // 8
			"      action: enforce", // 9
		}, []string{"F:9: mapping values are not allowed in this context"}},
		{"indentation: list item dedented", []string{
			"  exemptions:",                   // 7
			"    - name: a",                   // 8
			"      namespaces: [kube-system]", // 9
			"   - name: b",                    // 10
		}, []string{"F:10: did not find expected key (check this line's indentation against the keys above it)"}},
		{"indentation: list item in a mapping", []string{
			"  kernel:",           // 7
			"    onUnknown: warn", // 8
			"    - a",             // 9
		}, []string{"F:9: did not find expected key (check this line's indentation against the keys above it)"}},
		{"tab in indentation", []string{
			"  kernel:",           // 7
			"    onUnknown: warn", // 8
			"\taction: enforce",   // 9
		}, []string{"F:9: found a tab character that violates indentation (indent with spaces: YAML does not allow tabs in indentation)"}},
		{"tab after spaces", []string{
			"  kernel:",             // 7
			"    onUnknown: warn",   // 8
			"  \t  action: enforce", // 9
		}, []string{"F:9: found a tab character that violates indentation (indent with spaces: YAML does not allow tabs in indentation)"}},
		{"unclosed quote", []string{
			"  kernel:",            // 7
			`    onUnknown: "warn`, // 8
			"    action: enforce",  // 9
			"  audit: {}",          // 10
		}, []string{"F:8: found unexpected end of stream"}},
		{"unclosed bracket", []string{
			"  kernel:",                  // 7
			"    requiredPatches: [a, b", // 8
			"    action: enforce",        // 9
			"  audit: {}",                // 10
		}, []string{"F:8: did not find expected ',' or ']'"}},
		{"missing colon", []string{
			"  kernel",            // 7
			"    action: enforce", // 8
		}, []string{"F:7: could not find expected ':'"}},
		{"undefined alias", []string{
			"  kernel:",            // 7
			"    onUnknown: *warn", // 8
		}, []string{"F:8: unknown anchor 'warn' referenced"}},
		{"syntax error in a second document", []string{
			"---",    // 7
			"a: b",   // 8
			"  c: d", // 9
		}, []string{"F:9: mapping values are not allowed in this context"}},
		{"duplicate key", []string{
			"  kernel:",            // 7
			"    onUnknown: warn",  // 8
			"    action: enforce",  // 9
			"    onUnknown: audit", // 10
		}, []string{"F:10: spec.kernel.onUnknown: duplicate key"}},
		{"unknown key", []string{
			"  kernel:",           // 7
			"    action: enforce", // 8
			"    onUnkown: warn",  // 9
		}, []string{"F:9: spec.kernel.onUnkown: unknown key (known keys: action, denyWhenUpdatesPending, maxStateAge, minimumVersion, onUnknown, provider, requiredCVEs, requiredPatches, tools)"}},
		{"wrong type", []string{
			"  audit:",             // 7
			"    path: /var/log/a", // 8
			"    maxSizeMB: 100MB", // 9
			"    sync:",            // 10
			"      - true",         // 11
		}, []string{
			`F:9: spec.audit.maxSizeMB: expected an integer, got string "100MB"`,
			"F:11: spec.audit.sync: expected true or false, got a list",
		}},
		{"bad duration", []string{
			"  kernel:",                   // 7
			"    maxStateAge: 10 minutes", // 8
			"  remediation:",              // 9
			"    timeout: -5m",            // 10
		}, []string{
			`F:8: spec.kernel.maxStateAge: invalid duration "10 minutes" (want a Go duration such as 30s, 10m, 1h)`,
			`F:10: spec.remediation.timeout: duration "-5m" must not be negative`,
		}},
		{"empty list item", []string{
			"  exemptions:",                   // 7
			"    -",                           // 8
			"    - name: a",                   // 9
			"      namespaces: [kube-system]", // 10
			"      images: [~]",               // 11
		}, []string{
			"F:8: spec.exemptions[0]: expected a value",
			"F:11: spec.exemptions[1].images[0]: expected a value",
			"F:11: spec.exemptions[1].images[0]: empty image pattern",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"p.yaml": lines(t, append(slices.Clone(head), tc.body...)...)})
			file := filepath.Join(dir, "p.yaml")
			_, err := Load(file, "")
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			var got []string
			for _, e := range ve.Errors {
				got = append(got, strings.Replace(e.Error(), file, "F", 1))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestSyntaxLineCountsLikeYAML: the line number of a syntax error counts
// line breaks as the yaml parser does (CR LF, CR, NEL, LS, PS), so that it
// agrees with the lines of decode errors in the same file.
func TestSyntaxLineCountsLikeYAML(t *testing.T) {
	for _, tc := range []struct {
		name, brk string
	}{{"LF", "\n"}, {"CRLF", "\r\n"}, {"CR", "\r"}, {"NEL", "\u0085"}, {"LS", "\u2028"}, {"PS", "\u2029"}} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Join([]string{
				"apiVersion: patchgate.dev/v1alpha1", "kind: NodePolicy", "spec:",
				"  kernel:", "    action: warn", "   onUnknown: warn", "",
			}, tc.brk)
			_, err := LoadBytes("x.yaml", []byte(doc))
			if err == nil || !strings.HasPrefix(err.Error(), "x.yaml:6: did not find expected key") {
				t.Errorf("err = %v, want x.yaml:6", err)
			}
			// A decode error in the same layout, from the node's own line.
			doc = strings.Replace(doc, "   onUnknown", "    onUnknown: warn"+tc.brk+"    nope", 1)
			_, err = LoadBytes("x.yaml", []byte(doc))
			if err == nil || !strings.HasPrefix(err.Error(), "x.yaml:7: spec.kernel.nope: unknown key") {
				t.Errorf("err = %v, want x.yaml:7", err)
			}
		})
	}
}

// TestSyntaxLineIsTheFirstFailingPrefix checks the property syntaxLine
// promises on every malformed file in the tests above and on files with
// the mistake moved down line by line.
func TestSyntaxLineIsTheFirstFailingPrefix(t *testing.T) {
	base := header + "spec:\n  kernel:\n    action: warn\n"
	for _, bad := range []string{"   onUnknown: warn\n", "\tonUnknown: warn\n", "    x: [a\n", "    y: 'a\n", "    - a\n", "    z: *a\n"} {
		for pad := 0; pad < 40; pad += 7 {
			doc := base + strings.Repeat("    # comment\n", pad) + bad + "  audit: {}\n"
			want := strings.Count(base, "\n") + pad + 1
			_, _, err := parseDocuments([]byte(doc))
			if err == nil {
				t.Fatalf("%q parses", doc)
			}
			if got := syntaxLine([]byte(doc), err); got != want {
				t.Errorf("%q after %d comment lines: line %d, want %d", bad, pad, got, want)
			}
			checkSyntaxLine(t, []byte(doc))
		}
	}
}

// checkSyntaxLine asserts, for data that does not parse, that the file cut
// after the reported line fails with the same error and the file cut
// before it does not.
func checkSyntaxLine(t *testing.T, data []byte) {
	t.Helper()
	_, _, err := parseDocuments(data)
	if err == nil {
		return
	}
	l := syntaxLine(data, err)
	if l == 0 {
		return // UTF-16
	}
	ends := lineEnds(data)
	if l < 1 || l > len(ends) {
		t.Fatalf("line %d of %d", l, len(ends))
	}
	if _, _, e := parseDocuments(data[:ends[l-1]]); e == nil || e.Error() != err.Error() {
		t.Fatalf("line %d: the file up to it gives %v, not %v", l, e, err)
	}
	if l > 1 {
		if _, _, e := parseDocuments(data[:ends[l-2]]); e != nil && e.Error() == err.Error() {
			t.Fatalf("line %d: the file up to the line before fails the same way", l)
		}
	}
}

// TestExamplesSyntaxErrorsByTruncation cuts every example policy in the
// middle of each line and checks that the reported line exists.
func TestExamplesSyntaxErrorsByTruncation(t *testing.T) {
	files, _ := filepath.Glob("../examples/policies/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n := len(lineEnds(data))
		for i := 0; i < len(data); i += 13 {
			mangled := append(append(slices.Clone(data[:i]), "\t: [\n"...), data[i:]...)
			_, err := LoadBytes("x.yaml", mangled)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				continue
			}
			for _, e := range ve.Errors {
				if e.Line < 0 || e.Line > n+1 {
					t.Errorf("%s cut at %d: line %d of %d", f, i, e.Line, n+1)
				}
			}
			checkSyntaxLine(t, mangled)
		}
	}
}
