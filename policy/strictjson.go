package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrAmbiguousKey is wrapped by CheckStrictJSON's errors.
var ErrAmbiguousKey = errors.New("ambiguous JSON key")

// CheckStrictJSON refuses a JSON document in which one object has the same
// key twice, or two keys that differ only in case ("process" and
// "Process"), at any depth. encoding/json matches a key to a struct field
// without regard to case (Unicode simple folding: "proceſs" is "process"
// too) and keeps the last value, while another runtime may keep the first
// or match only the exact name: patchgate would then judge a spec other
// than the one that runs. The error names the key's path
// (`linux.devices[2].path`). Syntax errors are reported too; values are
// not decoded.
//
// It scans the document once by hand (a config.json is read for every
// container start); on any syntax error it hands over to the token-based
// check, whose messages are encoding/json's own. FuzzCheckStrictJSON holds
// the two equal.
func CheckStrictJSON(data []byte) error {
	sc := strictScanner{data: data}
	err := sc.document()
	if err == errStrictSyntax {
		return checkStrictJSONTokens(data)
	}
	return err
}

// checkStrictJSONTokens is CheckStrictJSON with encoding/json's tokenizer:
// the reference the hand scanner is fuzzed against, and the source of its
// syntax error messages.
func checkStrictJSONTokens(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers stay text: no float parsing
	var st strictStack
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if st.n > 0 {
				return fmt.Errorf("%w: unexpected end of JSON input", ErrInvalidSpec)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidSpec, err)
		}
		top := st.top()
		switch {
		case top != nil && top.obj && top.wantKey && tok == json.Delim('}'):
			st.pop()
		case top != nil && top.obj && top.wantKey:
			key, ok := tok.(string)
			if !ok { // the decoder never returns this; kept for safety
				return fmt.Errorf("%w: object key is not a string", ErrInvalidSpec)
			}
			if prev, dup := top.add(key); dup {
				return ambiguousKey(&st, key, prev)
			}
			top.key = key
			top.wantKey = false
			continue
		case tok == json.Delim('{'):
			st.push(true)
			continue
		case tok == json.Delim('['):
			st.push(false)
			continue
		case tok == json.Delim(']'):
			st.pop()
		}
		// A value (scalar, or a closed array or object) is complete.
		if top := st.top(); top != nil {
			if top.obj {
				top.wantKey = true
			} else {
				top.idx++
			}
		}
		if st.n == 0 {
			// The top-level value is complete: trailing data is the
			// caller's to refuse.
			return nil
		}
	}
}

// ambiguousKey is the error for key, which collides with prev in the
// innermost object of st.
func ambiguousKey(st *strictStack, key, prev string) error {
	what := "twice"
	if prev != key {
		what = fmt.Sprintf("also as %s (keys differing only in case)", strconv.Quote(prev))
	}
	return fmt.Errorf("%w: %s appears %s; refusing a spec that runtimes may read differently", ErrAmbiguousKey, st.path(key), what)
}

// strictFrame is one open object or array.
type strictFrame struct {
	obj     bool
	wantKey bool
	key     string // the object's current key
	idx     int    // the array's current index
	raw     []string
	set     map[string]int // folded key -> index, once the object is large
}

// add records key and returns the earlier key it collides with.
func (f *strictFrame) add(key string) (string, bool) {
	if f.set != nil {
		k := foldKey(key)
		if i, ok := f.set[k]; ok {
			return f.raw[i], true
		}
		f.set[k] = len(f.raw)
		f.raw = append(f.raw, key)
		return "", false
	}
	for _, p := range f.raw {
		if foldEqual(p, key) {
			return p, true
		}
	}
	f.raw = append(f.raw, key)
	if len(f.raw) > 32 {
		// Linear search stays cheap for the small objects of a spec; a
		// huge one (a crafted annotations map) gets a map.
		f.set = make(map[string]int, 2*len(f.raw))
		for i, p := range f.raw {
			f.set[foldKey(p)] = i
		}
	}
	return "", false
}

// foldEqual is foldKey(a) == foldKey(b) without building either.
func foldEqual(a, b string) bool {
	for a != "" && b != "" {
		var ra, rb rune
		if a[0] < utf8.RuneSelf {
			ra, a = rune(a[0]), a[1:]
		} else {
			r, n := utf8.DecodeRuneInString(a)
			ra, a = r, a[n:]
		}
		if b[0] < utf8.RuneSelf {
			rb, b = rune(b[0]), b[1:]
		} else {
			r, n := utf8.DecodeRuneInString(b)
			rb, b = r, b[n:]
		}
		if ra != rb && foldRune(ra) != foldRune(rb) {
			return false
		}
	}
	return a == b
}

// strictStack reuses its frames' slices across objects at the same depth.
type strictStack struct {
	frames []strictFrame
	n      int
}

func (s *strictStack) top() *strictFrame {
	if s.n == 0 {
		return nil
	}
	return &s.frames[s.n-1]
}

func (s *strictStack) push(obj bool) {
	if s.n == len(s.frames) {
		s.frames = append(s.frames, strictFrame{})
	}
	f := &s.frames[s.n]
	f.obj, f.wantKey, f.key, f.idx = obj, obj, "", 0
	f.raw, f.set = f.raw[:0], nil
	s.n++
}

func (s *strictStack) pop() {
	if s.n > 0 {
		s.n--
	}
}

// path is the key path of key in the innermost object, e.g.
// linux.devices[2].path.
func (s *strictStack) path(key string) string {
	var b strings.Builder
	for i := 0; i < s.n-1; i++ {
		f := &s.frames[i]
		if f.obj {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(pathKey(f.key))
		} else {
			fmt.Fprintf(&b, "[%d]", f.idx)
		}
	}
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.WriteString(pathKey(key))
	return b.String()
}

// pathKey writes a key plainly when it is a simple name, else quoted, so a
// key cannot forge a path or a line.
func pathKey(k string) string {
	if k == "" {
		return `""`
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return strconv.Quote(k)
		}
	}
	return k
}

// foldKey maps a key to one representative of its case-folding class, so
// that two keys are equal under encoding/json's matching (bytes.EqualFold:
// Unicode simple folding) exactly when their foldKeys are equal.
func foldKey(s string) string {
	lower := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			lower = false
			break
		}
	}
	if lower {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldRune is the representative of r's simple folding orbit: its smallest
// rune, lower-cased when that is an ASCII letter ('K', 'k' and the Kelvin
// sign all give 'k'; 'S', 's' and 'ſ' give 's').
func foldRune(r rune) rune {
	if r >= utf8.RuneSelf {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		r = m
	}
	if 'A' <= r && r <= 'Z' {
		return r - 'A' + 'a'
	}
	return r
}
