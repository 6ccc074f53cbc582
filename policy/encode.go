package policy

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"strconv"

	yaml "go.yaml.in/yaml/v3"
)

// MarshalYAML returns the policy as a YAML document with every key of the
// schema, in schema order: what `patchgate policy show` prints. Decoding the
// output gives the same effective policy.
func (p *Policy) MarshalYAML() ([]byte, error) {
	n, err := encodeNode(reflect.ValueOf(p).Elem())
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("policy: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("policy: encode: %w", err)
	}
	return buf.Bytes(), nil
}

func scalar(tag, v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v}
}

func encodeNode(v reflect.Value) (*yaml.Node, error) {
	if d, ok := v.Interface().(Duration); ok {
		return scalar("!!str", d.String()), nil
	}
	switch v.Kind() {
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, f := range schemaFields(v.Type()) {
			c, err := encodeNode(v.FieldByIndex(f.index))
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, scalar("!!str", f.name), c)
		}
		return n, nil
	case reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		if len(keys) == 0 {
			n.Style = yaml.FlowStyle
		}
		for _, k := range keys {
			c, err := encodeNode(v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())))
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, scalar("!!str", k), c)
		}
		return n, nil
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if v.Len() == 0 || v.Type().Elem().Kind() == reflect.String {
			n.Style = yaml.FlowStyle
		}
		for i := 0; i < v.Len(); i++ {
			c, err := encodeNode(v.Index(i))
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		return n, nil
	case reflect.String:
		return scalar("!!str", v.String()), nil
	case reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(v.Bool())), nil
	case reflect.Int, reflect.Int32, reflect.Int64:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10)), nil
	}
	return nil, fmt.Errorf("policy: cannot encode %s", v.Type())
}
