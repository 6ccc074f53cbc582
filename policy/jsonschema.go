package policy

//go:generate go run ./internal/genschema -src . -o ../docs/policy.schema.json

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

// SchemaID is the $id of docs/policy.schema.json: where the file of the main
// branch is served.
const SchemaID = "https://raw.githubusercontent.com/patchgate/patchgate/main/docs/policy.schema.json"

// JSONSchema returns the JSON Schema (draft 2020-12) of one policy file,
// generated from the Go types the strict decoder decodes into, for editors
// (yaml-language-server) and CI linters. The decoder stays the authority:
// the schema says what it can express of the decoder's checks (unknown
// keys, types, closed sets, formats), and a file the schema accepts can
// still be refused (a duplicate exemption name, admitWait over timeout).
//
// docs maps "Type.Field" to the field's description: its Go doc comment,
// which a binary does not carry (policy/internal/godoc reads them). Every
// field must have one, and a field whose Go type the generator does not
// know is an error, so that no key of the policy goes without a schema.
func JSONSchema(docs map[string]string) ([]byte, error) {
	g := &schemaGen{docs: docs, used: map[string]bool{}}
	root := g.object(reflect.TypeOf(Policy{}), "", reflect.ValueOf(basePolicy()).Elem())
	for path := range schemaExtra {
		if !g.used[path] {
			g.errs = append(g.errs, fmt.Sprintf("%s: schema constraint for a key the policy does not have", path))
		}
	}
	if len(g.errs) > 0 {
		sort.Strings(g.errs)
		return nil, fmt.Errorf("policy schema: %s", strings.Join(g.errs, "; "))
	}
	doc := obj{
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"$id", SchemaID},
		{"title", "patchgate NodePolicy (" + APIVersion + ")"},
		{"description", "One patchgate policy file: policy.yaml, a policy.d drop-in or a nodes/<name>.yaml overlay. " +
			"Generated from the Go types in policy/ (go generate ./policy); patchgate's loader is the authority, see docs/policy.md."},
	}
	doc = append(doc, root...)
	var buf bytes.Buffer
	if err := writeJSON(&buf, doc); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("policy schema: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// obj is a JSON object that keeps its keys in the order they were set, so
// that the schema reads in the order of the Go types.
type obj []kv

type kv struct {
	k string
	v any
}

func (o *obj) set(k string, v any) {
	for i := range *o {
		if (*o)[i].k == k {
			(*o)[i].v = v
			return
		}
	}
	*o = append(*o, kv{k, v})
}

func (o obj) get(k string) (any, bool) {
	for _, e := range o {
		if e.k == k {
			return e.v, true
		}
	}
	return nil, false
}

// writeJSON writes v compactly, without escaping <, > and & (descriptions
// name <kubeletDir> and the like).
func writeJSON(buf *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case obj:
		buf.WriteByte('{')
		for i, e := range v {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, e.k); err != nil {
				return err
			}
			buf.WriteByte(':')
			if err := writeJSON(buf, e.v); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	case []any:
		buf.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("policy schema: %w", err)
	}
	buf.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	return nil
}

type schemaGen struct {
	docs map[string]string
	used map[string]bool
	errs []string
}

// object is the schema of a struct decoded from a mapping: its keys as
// schemaFields lists them (embedded structs flattened), and no other key,
// as the decoder refuses unknown keys. def is the struct's built-in default.
func (g *schemaGen) object(t reflect.Type, path string, def reflect.Value) obj {
	props := obj{}
	for _, f := range schemaFields(t) {
		owner := t
		for _, i := range f.index[:len(f.index)-1] {
			owner = owner.Field(i).Type
		}
		sf := t.FieldByIndex(f.index)
		p := joinPath(path, f.name)
		s := g.value(sf.Type, p, def.FieldByIndex(f.index))
		if d := g.docs[owner.Name()+"."+sf.Name]; d != "" {
			// "MaxStateAge is how old ..." reads "maxStateAge is how old ...".
			if rest, ok := strings.CutPrefix(d, sf.Name); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, ":")) {
				d = f.name + rest
			}
			s.set("description", d)
		} else {
			g.errs = append(g.errs, fmt.Sprintf("%s: %s.%s has no doc comment (it is the key's description in the schema)", p, owner.Name(), sf.Name))
		}
		if dv, ok := schemaDefault(def.FieldByIndex(f.index)); ok {
			s.set("default", dv)
		}
		if !schemaRequired[p] && !schemaNotNull[p] {
			// An empty key (key: or key: ~) keeps the built-in default.
			s = nullable(s)
		}
		props.set(f.name, s)
	}
	o := obj{{"type", "object"}, {"properties", props}, {"additionalProperties", false}}
	return g.extra(path, o)
}

// value is the schema of a value of type t at path (a key path as in
// errors: spec.kernel.tools, spec.exemptions[]).
func (g *schemaGen) value(t reflect.Type, path string, def reflect.Value) obj {
	var s obj
	switch {
	case t == reflect.TypeOf(Action("")):
		s = obj{{"type", "string"}, {"enum", []any{string(ActionEnforce), string(ActionWarn), string(ActionAudit), string(ActionOff)}}}
	case t == reflect.TypeOf(Duration(0)):
		s = durationSchema(positiveDurations[path])
	case t.Kind() == reflect.Struct:
		if !def.IsValid() {
			def = reflect.New(t).Elem()
		}
		return g.object(t, path, def)
	case t.Kind() == reflect.Slice:
		s = obj{{"type", "array"}, {"items", g.value(t.Elem(), path+"[]", reflect.Value{})}}
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		s = obj{{"type", "object"}, {"propertyNames", obj{{"minLength", 1}}}, {"additionalProperties", g.value(t.Elem(), path+".*", reflect.Value{})}}
	case t.Kind() == reflect.String:
		// The decoder takes any scalar's text for a string: `name: 2024`,
		// `minimumVersion: 6.1` are the strings "2024" and "6.1".
		s = obj{{"type", []any{"string", "number", "boolean"}}}
	case t.Kind() == reflect.Bool:
		s = obj{{"type", "boolean"}}
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64 || t.Kind() == reflect.Int32:
		s = obj{{"type", "integer"}}
	default:
		g.errs = append(g.errs, fmt.Sprintf("%s: no schema for Go type %s", path, t))
		return obj{}
	}
	return g.extra(path, s)
}

// extra applies schemaExtra[path] over s: each keyword replaces s's.
func (g *schemaGen) extra(path string, s obj) obj {
	x, ok := schemaExtra[path]
	if !ok {
		return s
	}
	g.used[path] = true
	out := append(obj{}, s...)
	for _, e := range x {
		out.set(e.k, e.v)
	}
	return out
}

// nullable lets s also be null.
func nullable(s obj) obj {
	out := append(obj{}, s...)
	if e, ok := out.get("enum"); ok {
		out.set("enum", append(append([]any{}, e.([]any)...), nil))
	}
	if c, ok := out.get("const"); ok {
		out = slicesDeleteKey(out, "const")
		out.set("enum", []any{c, nil})
	}
	switch t, _ := out.get("type"); t := t.(type) {
	case string:
		out.set("type", []any{t, "null"})
	case []any:
		out.set("type", append(append([]any{}, t...), "null"))
	}
	return out
}

func slicesDeleteKey(o obj, k string) obj {
	out := obj{}
	for _, e := range o {
		if e.k != k {
			out = append(out, e)
		}
	}
	return out
}

// schemaDefault is the built-in default of a key, when it says something:
// not for mappings of keys (their keys carry their own), nor for the empty
// action that means "inherit".
func schemaDefault(v reflect.Value) (any, bool) {
	if !v.IsValid() {
		return nil, false
	}
	if d, ok := v.Interface().(Duration); ok {
		return d.String(), true
	}
	switch v.Kind() {
	case reflect.String:
		if v.String() == "" {
			return nil, false
		}
		return v.String(), true
	case reflect.Bool:
		return v.Bool(), true
	case reflect.Int, reflect.Int64, reflect.Int32:
		return v.Int(), true
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return nil, false
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = v.Index(i).String()
		}
		return out, true
	}
	return nil, false
}

// durationUnit and durationNumber follow time.ParseDuration.
const (
	durationUnit   = `(?:ns|us|µs|μs|ms|s|m|h)`
	durationNumber = `(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)`
)

// durationSchema: a Go duration string that is not negative ("30s",
// "1h30m", "0"), or the integer 0 (YAML reads `0` as a number; the decoder
// takes its text). positive refuses every zero duration too.
func durationSchema(positive bool) obj {
	nonNeg := `^(?:[-+]?0|\+?(?:` + durationNumber + durationUnit + `)+)$`
	s := obj{
		{"type", []any{"string", "integer"}},
		{"pattern", nonNeg},
		{"minimum", 0},
		{"maximum", 0},
	}
	if positive {
		zero := `^[-+]?(?:0|(?:(?:0+(?:\.0*)?|\.0+)` + durationUnit + `)+)$`
		s = obj{{"type", "string"}, {"pattern", nonNeg}, {"not", obj{{"type", "string"}, {"pattern", zero}}}}
	}
	return s
}

// ciPattern spells the ASCII letters of s as [xX], for a case-insensitive
// match in both Go's and ECMA-262's regular expressions (editors use the
// latter, which has no (?i)).
func ciPattern(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z':
			fmt.Fprintf(&b, "[%c%c]", r, r+'a'-'A')
		case r >= 'a' && r <= 'z':
			fmt.Fprintf(&b, "[%c%c]", r-'a'+'A', r)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	return b.String()
}

func enumOf(list []string) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = s
	}
	return out
}

// Path patterns. rootOnly matches what path.Clean makes "/".
const (
	absPath  = `^/`
	rootOnly = `^/(?:(?:\.{1,2})?/)*(?:\.{1,2})?$`
)

func absPathNotRoot() obj {
	return obj{{"type", "string"}, {"pattern", absPath}, {"not", obj{{"type", "string"}, {"pattern", rootOnly}}}}
}

// devNumPattern follows parseDevNum: "c" or "b", a major from 0 to 4095,
// a minor from 0 to 1048575 or *.
// (strconv.ParseInt takes a sign, so "+10" and "-0" are numbers too).
const devNumPattern = `^[ \t]*[cb][ \t]+(?:-0+|\+?0*(?:[0-9]{1,3}|[0-3][0-9]{3}|40[0-8][0-9]|409[0-5])):` +
	`(?:\*|-0+|\+?0*(?:[0-9]{1,6}|10[0-3][0-9]{4}|104[0-7][0-9]{3}|1048[0-4][0-9]{2}|10485[0-6][0-9]|104857[0-5]))[ \t]*$`

// schemaRequired are the keys that must be set, and not to null.
var schemaRequired = map[string]bool{
	"apiVersion": true, "kind": true,
	"spec.exemptions[].name": true, "spec.rules.hostPathMounts.allowed[].path": true,
}

// schemaNotNull are the keys that may be left out but not written without a
// value: an exemption's matchers, annotation and rules (left out, they
// match everything; the decoder refuses key: and key: ~ there).
var schemaNotNull = map[string]bool{
	"spec.exemptions[].namespaces": true, "spec.exemptions[].images": true, "spec.exemptions[].containers": true,
	"spec.exemptions[].podLabels": true, "spec.exemptions[].annotation": true, "spec.exemptions[].rules": true,
}

// nonSpace matches a string with a character that is not white space as
// unicode.IsSpace has it (strings.TrimSpace leaves something). The
// characters are written out, not as \s, which differs between regular
// expression engines.
const nonSpace = "[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"

// notBlank: a scalar the decoder reads as a string that is not empty or
// white space only.
func notBlank() obj {
	return obj{{"type", []any{"string", "number", "boolean"}}, {"minLength", 1}, {"pattern", nonSpace}}
}

// positiveDurations must be greater than zero.
var positiveDurations = map[string]bool{"spec.kernel.maxStateAge": true, "spec.remediation.timeout": true}

// schemaExtra holds, per key path, the keywords that say more than the Go
// type: closed sets, formats, and the checks of validate.go that a schema
// can express. Each keyword replaces the generated one.
var schemaExtra = map[string]obj{
	"":           {{"required", []any{"apiVersion", "kind"}}},
	"apiVersion": {{"type", "string"}, {"const", APIVersion}},
	"kind":       {{"type", "string"}, {"const", Kind}},

	"spec.kernel.provider":          {{"type", "string"}, {"enum", enumOf(providers)}},
	"spec.kernel.tools.*":           {{"type", "string"}, {"pattern", absPath}},
	"spec.kernel.requiredPatches[]": {{"type", []any{"string", "number"}}, {"pattern", `^[^/ \t\n]+$`}},
	"spec.kernel.requiredCVEs[]":    {{"type", "string"}, {"pattern", "^" + ciPattern("CVE") + `-[0-9]{4}-[0-9]{4,}$`}},

	"spec.remediation.command": {{"prefixItems", []any{obj{{"type", "string"}, {"pattern", absPath}}}}},

	"spec.rules.capabilities.allowed[]": {{"type", "string"}, {"anyOf", []any{
		obj{{"enum", enumOf(capabilityNames)}},
		obj{{"pattern", "^(?:" + ciPattern("CAP_") + ")?(?:" + ciAlternatives(capabilityNames) + ")$"}},
	}}},
	"spec.rules.hostNamespaces.namespaces[]":           {{"type", "string"}, {"enum", enumOf(namespaceTypes)}},
	"spec.rules.hostPathMounts.allowed[].path":         {{"type", "string"}, {"pattern", absPath}, {"not", obj{{"type", "string"}, {"pattern", protectedPattern()}}}},
	"spec.rules.hostPathMounts.denied[]":               {{"type", "string"}, {"pattern", absPath}},
	"spec.rules.hostPathMounts.allowReadOnly":          {{"const", false}, {"deprecated", true}},
	"spec.rules.hostPathMounts.runtimeDirs[]":          absPathNotRoot(),
	"spec.rules.hostPathMounts.kubeletDir":             {{"type", "string"}, {"pattern", `^(?:/|$)`}, {"not", obj{{"type", "string"}, {"pattern", rootOnly}}}},
	"spec.rules.hostPathMounts.kubeletVolumePlugins[]": {{"type", "string"}, {"pattern", "^[^/\x00]+$"}, {"not", obj{{"type", "string"}, {"enum", []any{".", ".."}}}}},
	"spec.rules.hostPathMounts.allowed[]":              {{"required", []any{"path"}}},
	"spec.rules.hostDevices.allowed[]":                 {{"type", "string"}, {"pattern", devNumPattern}},
	"spec.rules.seccomp.mustBlock[]":                   {{"type", "string"}, {"enum", enumOf(seccompJudged)}},
	"spec.rules.sysctls.allowed[]":                     {{"type", []any{"string", "number", "boolean"}}, {"pattern", `^[^ \t\n=]+$`}},
	"spec.rules.procMount.maskedPaths[]":               absPathNotRoot(),
	"spec.rules.procMount.readonlyPaths[]":             absPathNotRoot(),

	// An exemption names itself and matches on something; an annotation
	// exemption lists the namespaces that may use it.
	"spec.exemptions[]": {
		{"required", []any{"name"}},
		{"anyOf", []any{
			nonEmptyKey("namespaces", "array"), nonEmptyKey("images", "array"),
			nonEmptyKey("containers", "array"), nonEmptyKey("podLabels", "object"),
		}},
		{"if", obj{{"required", []any{"annotation"}}, {"properties", obj{{"annotation", obj{{"type", "string"}, {"minLength", 1}}}}}}},
		{"then", nonEmptyKey("namespaces", "array")},
	},
	"spec.exemptions[].name":         notBlank(),
	"spec.exemptions[].namespaces[]": notBlank(),
	"spec.exemptions[].images[]":     notBlank(),
	"spec.exemptions[].containers[]": notBlank(),
	"spec.exemptions[].podLabels":    {{"propertyNames", obj{{"minLength", 1}, {"pattern", nonSpace}}}},
	"spec.exemptions[].annotation":   {{"type", "string"}, {"anyOf", []any{obj{{"maxLength", 0}}, obj{{"pattern", nonSpace}}}}},
	"spec.exemptions[].rules[]":      {{"type", "string"}, {"enum", enumOf(RuleIDs())}},

	"spec.audit.path":       {{"type", "string"}, {"pattern", `^(?:/|$)`}},
	"spec.audit.maxSizeMB":  {{"type", "integer"}, {"minimum", 0}},
	"spec.audit.maxBackups": {{"type", "integer"}, {"minimum", 0}},

	"spec.hook.onError": {{"type", "string"}, {"enum", []any{OnErrorDeny, OnErrorAllow}}},
}

// nonEmptyKey: the object has key, and its value is a non-empty list or
// mapping (kind "array" or "object").
func nonEmptyKey(key, kind string) obj {
	size := "minItems"
	if kind == "object" {
		size = "minProperties"
	}
	return obj{{"required", []any{key}}, {"properties", obj{{key, obj{{"type", kind}, {size, 1}}}}}}
}

func ciAlternatives(list []string) string {
	alts := make([]string, len(list))
	for i, s := range list {
		alts[i] = ciPattern(s)
	}
	return strings.Join(alts, "|")
}

// protectedPattern matches a path inside one of protectedHostPaths, /var/run
// standing for /run as canonRun has it. It does not clean the path first, as
// the loader does: a path spelled with // or .. is left to the loader.
func protectedPattern() string {
	alts := make([]string, len(protectedHostPaths))
	for i, p := range protectedHostPaths {
		q := regexp.QuoteMeta(p)
		if rest, ok := strings.CutPrefix(p, "/run/"); ok {
			q = "(?:/var)?/run/" + regexp.QuoteMeta(rest)
		}
		alts[i] = q
	}
	return "^(?:" + strings.Join(alts, "|") + ")(?:/|$)"
}
