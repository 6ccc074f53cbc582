// Package containerdconf reads a node's containerd configuration the way
// containerd loads it (the main file, then its imports, breadth first, each
// file once) and says whether the NRI default validator's required_plugins
// names patchgate: only then does containerd refuse containers while
// patchgate is not registered (docs/containerd.md).
//
// Where the setting lives is the same in config versions 2 (containerd 1.7,
// and 2.x after migration), 3 (2.0 to 2.2) and 4 (2.4): the NRI plugin's
// own table,
//
//	[plugins."io.containerd.nri.v1.nri".default_validator]
//	  enable = true
//	  required_plugins = ["patchgate"]
//
// which no config migration renames. The top-level required_plugins is
// another thing (containerd plugins that must start) and is never read
// here. containerd 1.7, 2.0 and 2.1 (NRI v0.8.0) have no default validator
// at all; the caller says so from the runtime's reported NRI version.
//
// Merging follows containerd 2.x (cmd/containerd/server/config, mergeConfig):
// tables merge key by key, a later file's value replaces an earlier one,
// and a list nested in a plugin table (required_plugins) set in two files
// is the later file's alone: containerd 2.4.2's own `config dump` of the
// trees in testdata/merge says so (TestMergeMatchesContainerd). The
// defaults' import of /etc/containerd/conf.d/*.toml is not followed by
// containerd's LoadConfig, so only the files' own imports are. Whatever
// cannot be read or interpreted makes the answer "unknown", never "ok".
package containerdconf

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/patchgate/patchgate/internal/hostpath"
)

// DefaultPath is containerd's default config file on the node.
const DefaultPath = "/etc/containerd/config.toml"

// NRIPlugin is the NRI plugin's key under [plugins].
const NRIPlugin = "io.containerd.nri.v1.nri"

// Status values of a Report.
const (
	// OK: the default validator is enabled and required_plugins names the
	// plugin.
	OK = "ok"
	// Missing: the config was read and does not make containerd require
	// the plugin (Reason says what is missing).
	Missing = "missing"
	// Absent: no config file; containerd runs on its defaults, which
	// require no NRI plugin.
	Absent = "absent"
	// Unknown: the config could not be read or interpreted (Reason says
	// why); it is not known whether containerd requires the plugin.
	Unknown = "unknown"
)

// Limits on what is read: containerd configs are a few KiB.
const (
	maxFileBytes = 1 << 20
	maxFiles     = 256
)

// Report is the answer for one node.
type Report struct {
	// File is the main config, as a path on the node.
	File string `json:"file"`
	// Files are the files read, in containerd's order (node paths).
	Files  []string `json:"files,omitempty"`
	Plugin string   `json:"plugin"`
	Status string   `json:"status"`
	Reason string   `json:"reason,omitempty"`
	// ValidatorEnabled and RequiredPlugins are the merged settings
	// (when the files were read).
	ValidatorEnabled bool     `json:"defaultValidatorEnabled"`
	RequiredPlugins  []string `json:"requiredPlugins,omitempty"`
	// Root and State are containerd's root and state directories, the
	// merged top-level root and state, else containerd's defaults (when the
	// files were read, or there are none).
	Root  string `json:"root,omitempty"`
	State string `json:"state,omitempty"`
}

// containerd's root and state directories when the config names none
// (cmd/containerd/server/config defaults, v2.4.2).
const (
	DefaultRoot  = "/var/lib/containerd"
	DefaultState = "/run/containerd"
)

// Check reads the config at path (a path on the node; hostRoot is where
// the node's / is, "" or "/" for this machine's) and judges whether
// containerd requires the NRI plugin named plugin.
func Check(hostRoot, path, plugin string) Report {
	if path == "" {
		path = DefaultPath
	}
	r := Report{File: path, Plugin: plugin}
	files := &fileSet{root: hostRoot}
	merged, err := load(files, path)
	r.Files = files.read
	if err != nil {
		if errors.Is(err, errMainAbsent) {
			r.Root, r.State = DefaultRoot, DefaultState
			r.Status = Absent
			r.Reason = "no containerd config at " + path + ": containerd's defaults require no NRI plugin"
			return r
		}
		r.Status, r.Reason = Unknown, err.Error()
		return r
	}
	judge(&r, merged)
	return r
}

// Judge judges one file's content alone (no imports): the fuzz target's
// entry, and what Check does per file.
func Judge(name string, data []byte, plugin string) Report {
	r := Report{File: name, Plugin: plugin, Files: []string{name}}
	doc, err := decode(name, data)
	if err != nil {
		r.Status, r.Reason = Unknown, err.Error()
		return r
	}
	if _, err := imports(name, doc); err != nil {
		r.Status, r.Reason = Unknown, err.Error()
		return r
	}
	nri, err := nriTable(name, doc)
	if err != nil {
		r.Status, r.Reason = Unknown, err.Error()
		return r
	}
	judge(&r, nri)
	return r
}

// nriSettings are the NRI table's settings that matter here, and
// containerd's top-level root and state directories.
type nriSettings struct {
	root, state      string // "": not set
	present          bool   // some file has the NRI table
	disable          bool
	disableKnown     bool // this file sets disable
	validatorPresent bool
	enable           bool
	enableKnown      bool // this file sets enable
	required         []string
}

func judge(r *Report, s nriSettings) {
	r.ValidatorEnabled, r.RequiredPlugins = s.enable, s.required
	r.Root, r.State = cmp.Or(s.root, DefaultRoot), cmp.Or(s.state, DefaultState)
	var missing []string
	if s.disable {
		missing = append(missing, "NRI is disabled (disable = true)")
	}
	switch {
	case !s.validatorPresent:
		missing = append(missing, "no [plugins.\""+NRIPlugin+"\".default_validator] table")
	default:
		if !s.enable {
			missing = append(missing, "the default validator is not enabled (enable = true)")
		}
		if !slices.Contains(s.required, r.Plugin) {
			if len(s.required) == 0 {
				missing = append(missing, "required_plugins is empty")
			} else {
				missing = append(missing, fmt.Sprintf("required_plugins %q does not name %q", s.required, r.Plugin))
			}
		}
	}
	if len(missing) == 0 {
		r.Status = OK
		return
	}
	r.Status = Missing
	r.Reason = strings.Join(missing, "; ")
}

var errMainAbsent = errors.New("main config absent")

// fileSet reads node files under root, and remembers which it read.
type fileSet struct {
	root string
	read []string
}

// open reads the node path p under root, symlinks resolved inside root.
func (f *fileSet) readFile(p string) ([]byte, error) {
	resolved, err := hostpath.Resolve(f.root, p)
	if err != nil {
		return nil, err
	}
	fh, err := os.Open(filepath.Join(rootDir(f.root), resolved))
	if err != nil {
		return nil, err
	}
	defer func() { _ = fh.Close() }() // read-only
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	data, err := io.ReadAll(io.LimitReader(fh, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", p, maxFileBytes)
	}
	f.read = append(f.read, p)
	return data, nil
}

// glob matches a node path pattern under root, sorted as filepath.Glob
// sorts (containerd's resolveImports uses it).
func (f *fileSet) glob(pattern string) ([]string, error) {
	root := rootDir(f.root)
	matches, err := filepath.Glob(filepath.Join(root, pattern))
	if err != nil {
		return nil, fmt.Errorf("import %q: %w", pattern, err)
	}
	out := make([]string, 0, len(matches))
	for _, m := range matches {
		rel, err := filepath.Rel(root, m)
		if err != nil || strings.HasPrefix(rel, "..") {
			return nil, fmt.Errorf("import %q: match %s outside the host root", pattern, m)
		}
		out = append(out, "/"+filepath.ToSlash(rel))
	}
	return out, nil
}

func rootDir(root string) string {
	if root == "" {
		return "/"
	}
	return root
}

// load reads main and its imports as containerd's LoadConfig does and
// returns the merged NRI settings.
func load(files *fileSet, main string) (nriSettings, error) {
	var merged nriSettings
	loaded := map[string]bool{}
	pending := []string{main}
	for len(pending) > 0 {
		p := pending[0]
		pending = pending[1:]
		if loaded[p] {
			continue
		}
		if len(loaded) >= maxFiles {
			return merged, fmt.Errorf("more than %d config files through imports", maxFiles)
		}
		data, err := files.readFile(p)
		if err != nil {
			if p == main && errors.Is(err, os.ErrNotExist) {
				return merged, errMainAbsent
			}
			// containerd does not start with an import it cannot open.
			return merged, fmt.Errorf("cannot read %s: %w", p, err)
		}
		doc, err := decode(p, data)
		if err != nil {
			return merged, err
		}
		nri, err := nriTable(p, doc)
		if err != nil {
			return merged, err
		}
		merged = merge(merged, nri)
		imps, err := imports(p, doc)
		if err != nil {
			return merged, err
		}
		loaded[p] = true
		for _, imp := range imps {
			if strings.Contains(imp, "*") {
				m, err := files.glob(imp)
				if err != nil {
					return merged, err
				}
				pending = append(pending, m...)
			} else {
				pending = append(pending, imp)
			}
		}
	}
	return merged, nil
}

// merge lays a later file's settings over the earlier ones, key by key.
func merge(to, from nriSettings) nriSettings {
	to.root, to.state = cmp.Or(from.root, to.root), cmp.Or(from.state, to.state)
	if !from.present {
		return to
	}
	to.present = true
	if from.disableKnown {
		to.disable, to.disableKnown = from.disable, true
	}
	if from.validatorPresent {
		to.validatorPresent = true
		if from.enableKnown {
			to.enable, to.enableKnown = from.enable, true
		}
		if from.required != nil {
			to.required = from.required
		}
	}
	return to
}

// decode parses one TOML file; errors name the file and line.
func decode(name string, data []byte) (map[string]any, error) {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("%s:%d:%d: %s", name, row, col, oneLine(de.Error()))
		}
		return nil, fmt.Errorf("%s: %s", name, oneLine(err.Error()))
	}
	return doc, nil
}

// imports are the file's imports as containerd resolves them: cleaned,
// relative ones against the file's directory.
func imports(name string, doc map[string]any) ([]string, error) {
	v, ok := doc["imports"]
	if !ok {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: imports is a %s, not a list of paths", name, typeName(v))
	}
	var out []string
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%s: imports holds a %s, not a path", name, typeName(e))
		}
		p := filepath.Clean(s)
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(name), p)
		}
		out = append(out, p)
	}
	return out, nil
}

// nriTable reads the NRI plugin's table of one file, checking the types
// containerd's NRI config would decode.
func nriTable(name string, doc map[string]any) (nriSettings, error) {
	var s nriSettings
	for _, d := range []struct {
		key string
		to  *string
	}{{"root", &s.root}, {"state", &s.state}} {
		v, ok := doc[d.key]
		if !ok {
			continue
		}
		str, ok := v.(string)
		if !ok {
			return s, fmt.Errorf("%s: %s is a %s, not a path", name, d.key, typeName(v))
		}
		if !filepath.IsAbs(str) {
			return s, fmt.Errorf("%s: %s %q is not an absolute path", name, d.key, str)
		}
		*d.to = filepath.Clean(str)
	}
	pv, ok := doc["plugins"]
	if !ok {
		return s, nil
	}
	plugins, ok := pv.(map[string]any)
	if !ok {
		return s, fmt.Errorf("%s: plugins is a %s, not a table", name, typeName(pv))
	}
	nv, ok := plugins[NRIPlugin]
	if !ok {
		return s, nil
	}
	nri, ok := nv.(map[string]any)
	if !ok {
		return s, fmt.Errorf("%s: plugins.%q is a %s, not a table", name, NRIPlugin, typeName(nv))
	}
	s.present = true
	if v, ok := nri["disable"]; ok {
		b, ok := v.(bool)
		if !ok {
			return s, fmt.Errorf("%s: plugins.%q.disable is a %s, not a boolean", name, NRIPlugin, typeName(v))
		}
		s.disable, s.disableKnown = b, true
	}
	dv, ok := nri["default_validator"]
	if !ok {
		return s, nil
	}
	dvt, ok := dv.(map[string]any)
	if !ok {
		return s, fmt.Errorf("%s: plugins.%q.default_validator is a %s, not a table", name, NRIPlugin, typeName(dv))
	}
	s.validatorPresent = true
	if v, ok := dvt["enable"]; ok {
		b, ok := v.(bool)
		if !ok {
			return s, fmt.Errorf("%s: default_validator.enable is a %s, not a boolean", name, typeName(v))
		}
		s.enable = b
		s.enableKnown = true
	}
	if v, ok := dvt["required_plugins"]; ok {
		list, ok := v.([]any)
		if !ok {
			return s, fmt.Errorf("%s: default_validator.required_plugins is a %s, not a list of names", name, typeName(v))
		}
		s.required = []string{}
		for _, e := range list {
			str, ok := e.(string)
			if !ok {
				return s, fmt.Errorf("%s: default_validator.required_plugins holds a %s, not a name", name, typeName(e))
			}
			s.required = append(s.required, str)
		}
	}
	return s, nil
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case int64, float64:
		return "number"
	case []any:
		return "list"
	case map[string]any:
		return "table"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
