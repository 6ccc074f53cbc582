package policy

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Sentinel errors. Every error Load returns wraps one of them.
var (
	// ErrInvalid: the policy does not decode or validate. The error is a
	// *ValidationError listing every problem with its file and line.
	ErrInvalid = errors.New("invalid policy")
	// ErrInsecure: a policy file or directory is writable by group or
	// others, or not owned by root (or the user patchgate runs as).
	ErrInsecure = errors.New("insecure policy file")
)

// PosError is one problem in a policy file.
type PosError struct {
	File string
	Line int
	Msg  string
}

func (e PosError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// ValidationError lists every problem found in a policy, in file order and
// then line order. It wraps ErrInvalid.
type ValidationError struct {
	Errors []PosError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, pe := range e.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(pe.Error())
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// scalarDecoder is implemented by schema types that parse and check their own
// scalar value (Action, Duration).
type scalarDecoder interface {
	decodeScalar(s string) error
}

// nodeValidator is implemented by schema structs with checks that span keys.
// It is called after the struct was decoded from mapping node n.
type nodeValidator interface {
	validateNode(n *yaml.Node, report func(at *yaml.Node, format string, args ...any))
}

// decoder decodes a yaml.v3 node tree into the schema strictly: unknown keys,
// duplicate keys, wrong types, aliases and invalid values are errors with the
// file and line of the node. It never stops at the first error.
type decoder struct {
	files map[*yaml.Node]string
	errs  []PosError
}

func (d *decoder) report(at *yaml.Node, format string, args ...any) {
	pe := PosError{Msg: fmt.Sprintf(format, args...)}
	if at != nil {
		pe.File = d.files[at]
		pe.Line = at.Line
	}
	d.errs = append(d.errs, pe)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// checkTag reports an explicit YAML tag the decoder does not honour and
// returns false. Left alone, a tag is ignored or changes the value's
// meaning unseen: `!!null 6.1.0` decoded as empty and kept the default,
// `!x enforce` as enforce. Allowed are the standard tags that say what
// the value already is: !!map on a mapping, !!seq on a list, !!str on any
// scalar (it only forces a string), and !!int, !!float, !!bool and !!null
// on a scalar that reads as one without the tag.
func (d *decoder) checkTag(n *yaml.Node, path string) bool {
	if n.Style&yaml.TaggedStyle == 0 {
		return true
	}
	tag := n.Tag
	switch n.Kind {
	case yaml.MappingNode:
		if tag == "!!map" {
			return true
		}
	case yaml.SequenceNode:
		if tag == "!!seq" {
			return true
		}
	case yaml.ScalarNode:
		// ShortTag of an untagged node resolves the value as a plain
		// scalar: what it reads as without the tag.
		plain := (&yaml.Node{Kind: yaml.ScalarNode, Value: n.Value}).ShortTag()
		switch tag {
		case "!!str":
			return true
		case "!!int", "!!bool", "!!null":
			if plain == tag {
				return true
			}
			d.report(n, "%s: YAML tag %s does not fit the value %q", path, tag, n.Value)
			return false
		case "!!float":
			if plain == "!!float" || plain == "!!int" {
				return true
			}
			d.report(n, "%s: YAML tag %s does not fit the value %q", path, tag, n.Value)
			return false
		}
	}
	d.report(n, "%s: unsupported YAML tag %s", path, tag)
	return false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.ShortTag() {
	case "!!str":
		return fmt.Sprintf("string %q", n.Value)
	case "!!bool":
		return "boolean " + n.Value
	case "!!int":
		return "integer " + n.Value
	case "!!float":
		return "number " + n.Value
	}
	return fmt.Sprintf("%q", n.Value)
}

// decode decodes n into v (settable). A null node leaves v as it is, so that
// an empty key keeps the default.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.report(n, "%s: YAML anchors and aliases are not supported", path)
		return
	}
	if !d.checkTag(n, path) {
		return
	}
	if isNull(n) {
		return
	}
	if sd, ok := v.Addr().Interface().(scalarDecoder); ok {
		if n.Kind != yaml.ScalarNode {
			d.report(n, "%s: expected a string, got %s", path, kindName(n))
			return
		}
		if err := sd.decodeScalar(n.Value); err != nil {
			d.report(n, "%s: %v", path, err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.report(n, "%s: expected a list, got %s", path, kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			ip := fmt.Sprintf("%s[%d]", path, i)
			if !d.checkTag(c, ip) {
				continue
			}
			if isNull(c) {
				// An empty item ("- " alone, "- ~") would decode as the
				// zero value: an exemption matching every container and
				// lifting every rule, an empty path or name.
				d.report(c, "%s: expected a value", ip)
				continue
			}
			d.decode(c, s.Index(i), ip)
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.report(n, "%s: expected a string, got %s", path, kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.report(n, "%s: expected true or false, got %s", path, kindName(n))
			return
		}
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err != nil {
			d.report(n, "%s: expected true or false, got %s", path, kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.report(n, "%s: expected an integer, got %s", path, kindName(n))
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, v.Type().Bits())
		if err != nil {
			d.report(n, "%s: integer %s out of range", path, n.Value)
			return
		}
		v.SetInt(i)
	default:
		d.report(n, "%s: cannot decode into %s", path, v.Type())
	}
}

// schemaField is one key of a schema struct: its name and the index path of
// the Go field (embedded structs are flattened, as encoding/json does).
type schemaField struct {
	name  string
	index []int
}

func schemaFields(t reflect.Type) []schemaField {
	var out []schemaField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for _, sf := range schemaFields(f.Type) {
				out = append(out, schemaField{name: sf.name, index: append([]int{i}, sf.index...)})
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, schemaField{name: name, index: []int{i}})
	}
	return out
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.report(n, "%s: expected a mapping, got %s", path, kindName(n))
		return
	}
	fields := schemaFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			d.report(k, "%s: keys must be plain strings (merge keys are not supported)", path)
			continue
		}
		key := k.Value
		kp := joinPath(path, key)
		if !d.checkTag(k, kp) {
			continue
		}
		if seen[key] {
			d.report(k, "%s: duplicate key", kp)
			continue
		}
		seen[key] = true
		var f *schemaField
		for j := range fields {
			if fields[j].name == key {
				f = &fields[j]
				break
			}
		}
		if f == nil {
			names := make([]string, len(fields))
			for j := range fields {
				names[j] = fields[j].name
			}
			sort.Strings(names)
			d.report(k, "%s: unknown key (known keys: %s)", kp, strings.Join(names, ", "))
			continue
		}
		d.decode(val, v.FieldByIndex(f.index), kp)
	}
	if nv, ok := v.Addr().Interface().(nodeValidator); ok {
		nv.validateNode(n, func(at *yaml.Node, format string, args ...any) {
			if at == nil {
				at = n
			}
			msg := fmt.Sprintf(format, args...)
			if path != "" {
				sep := ": "
				for _, f := range fields {
					if rest, ok := strings.CutPrefix(msg, f.name); ok && rest != "" && strings.ContainsRune(":[.", rune(rest[0])) {
						sep = "."
						break
					}
				}
				msg = path + sep + msg
			}
			d.report(at, "%s", msg)
		})
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.report(n, "%s: expected a mapping, got %s", path, kindName(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.report(n, "%s: cannot decode into %s", path, v.Type())
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			d.report(k, "%s: keys must be plain strings (merge keys are not supported)", path)
			continue
		}
		kp := joinPath(path, k.Value)
		if !d.checkTag(k, kp) {
			continue
		}
		if seen[k.Value] {
			d.report(k, "%s: duplicate key", kp)
			continue
		}
		seen[k.Value] = true
		if k.Value == "" {
			d.report(k, "%s: empty key", path)
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		if !d.checkTag(val, kp) {
			continue
		}
		if isNull(val) {
			d.report(val, "%s: expected a value", kp)
			continue
		}
		d.decode(val, elem, kp)
		v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mappingValue returns the value node of key in mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// mappingKey returns the key node of key in mapping n, or n.
func mappingKey(n *yaml.Node, key string) *yaml.Node {
	if n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i]
			}
		}
	}
	return n
}

// seqItem returns item i of sequence n (or n itself when it is not a list of
// that length), for error positions.
func seqItem(n *yaml.Node, i int) *yaml.Node {
	if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i]
	}
	return n
}
