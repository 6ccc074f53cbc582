package policy

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// schemaKeys lists every key path of the policy schema: "spec.kernel.tools",
// "spec.exemptions[].name", ...
func schemaKeys(t reflect.Type, prefix string) []string {
	var out []string
	for _, f := range schemaFields(t) {
		ft := t.FieldByIndex(f.index).Type
		p := joinPath(prefix, f.name)
		out = append(out, p)
		switch {
		case ft.Kind() == reflect.Struct && ft != reflect.TypeOf(Duration(0)):
			out = append(out, schemaKeys(ft, p)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, schemaKeys(ft.Elem(), p+"[]")...)
		}
	}
	return out
}

// TestEveryKeyIsDocumented checks that docs/policy.md names every key of the
// schema as `path`, and every rule ID.
func TestEveryKeyIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	keys := schemaKeys(reflect.TypeOf(Policy{}), "")
	if len(keys) < 60 {
		t.Fatalf("only %d schema keys found: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !strings.Contains(text, "`"+k+"`") {
			t.Errorf("docs/policy.md does not document `%s`", k)
		}
	}
	for _, id := range RuleIDs() {
		if !strings.Contains(text, "`"+id+"`") {
			t.Errorf("docs/policy.md does not name rule `%s`", id)
		}
	}
}
