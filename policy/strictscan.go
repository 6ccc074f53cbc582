package policy

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// errStrictSyntax is the hand scanner's one syntax error: CheckStrictJSON
// then asks encoding/json's tokenizer, which says what is wrong.
var errStrictSyntax = errors.New("JSON syntax error")

// strictMaxDepth is encoding/json's own nesting limit.
const strictMaxDepth = 10000

// strictScanner walks a JSON document once, checking its syntax as
// encoding/json does and the keys of every object as CheckStrictJSON
// describes. Keys are compared after unescaping exactly as encoding/json
// unescapes them (invalid UTF-8 and lone surrogates become U+FFFD), since
// that is what it matches against struct fields.
type strictScanner struct {
	data []byte
	pos  int
	st   strictStack
	key  []byte // scratch for unescaping a key
}

// document scans the top-level value. Like the token-based check it stops
// there: trailing data is the caller's to refuse. A document of only
// white space passes too (the decoder after it refuses it).
func (s *strictScanner) document() error {
	s.space()
	if s.pos == len(s.data) {
		return nil
	}
	return s.value()
}

func (s *strictScanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value scans one value starting at s.pos (white space already skipped).
func (s *strictScanner) value() error {
	if s.pos >= len(s.data) {
		return errStrictSyntax
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.container(true)
	case c == '[':
		return s.container(false)
	case c == '"':
		s.pos++
		return s.skipString()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	default:
		return errStrictSyntax
	}
}

// container scans an object (obj) or an array starting at its opening
// bracket: its members or elements separated by commas, up to the
// closing bracket.
func (s *strictScanner) container(obj bool) error {
	if s.st.n >= strictMaxDepth {
		return errStrictSyntax
	}
	closing := byte(']')
	if obj {
		closing = '}'
	}
	s.pos++ // the opening bracket
	s.st.push(obj)
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == closing {
		s.pos++
		s.st.pop()
		return nil
	}
	for {
		next := s.value
		if obj {
			next = s.member
		}
		if err := next(); err != nil {
			return err
		}
		s.space()
		if s.pos >= len(s.data) {
			return errStrictSyntax
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			if !obj {
				s.st.top().idx++
			}
			s.space()
		case closing:
			s.pos++
			s.st.pop()
			return nil
		default:
			return errStrictSyntax
		}
	}
}

// member scans `"key": value` of the innermost object, refusing a key that
// collides with an earlier one.
func (s *strictScanner) member() error {
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return errStrictSyntax
	}
	s.pos++
	key, err := s.keyString()
	if err != nil {
		return err
	}
	top := s.st.top()
	if prev, dup := top.add(key); dup {
		return ambiguousKey(&s.st, key, prev)
	}
	top.key = key
	s.space()
	if s.pos >= len(s.data) || s.data[s.pos] != ':' {
		return errStrictSyntax
	}
	s.pos++
	s.space()
	return s.value()
}

func (s *strictScanner) literal(word string) error {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return errStrictSyntax
	}
	s.pos += len(word)
	return nil
}

// number scans JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *strictScanner) number() error {
	d := s.data
	if d[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(d) && d[s.pos] == '0':
		s.pos++
	case s.pos < len(d) && '1' <= d[s.pos] && d[s.pos] <= '9':
		s.digits()
	default:
		return errStrictSyntax
	}
	if s.pos < len(d) && d[s.pos] == '.' {
		s.pos++
		if !s.digits() {
			return errStrictSyntax
		}
	}
	if s.pos < len(d) && (d[s.pos] == 'e' || d[s.pos] == 'E') {
		s.pos++
		if s.pos < len(d) && (d[s.pos] == '+' || d[s.pos] == '-') {
			s.pos++
		}
		if !s.digits() {
			return errStrictSyntax
		}
	}
	return nil
}

func (s *strictScanner) digits() bool {
	start := s.pos
	for s.pos < len(s.data) && '0' <= s.data[s.pos] && s.data[s.pos] <= '9' {
		s.pos++
	}
	return s.pos > start
}

// skipString scans a string value after its opening quote: control
// characters and unknown escapes are syntax errors, as in encoding/json.
func (s *strictScanner) skipString() error {
	d := s.data
	for s.pos < len(d) {
		c := d[s.pos]
		switch {
		case c == '"':
			s.pos++
			return nil
		case c == '\\':
			if _, err := s.escape(); err != nil {
				return err
			}
		case c < 0x20:
			return errStrictSyntax
		default:
			s.pos++
		}
	}
	return errStrictSyntax
}

// keyString scans an object key after its opening quote and returns it
// unescaped as encoding/json does. A key without escapes or non-ASCII
// bytes (every key of a real spec but annotations') is returned as is.
func (s *strictScanner) keyString() (string, error) {
	d := s.data
	start := s.pos
	for s.pos < len(d) {
		c := d[s.pos]
		if c == '"' {
			k := string(d[start:s.pos])
			s.pos++
			return k, nil
		}
		if c == '\\' || c >= utf8.RuneSelf {
			break
		}
		if c < 0x20 {
			return "", errStrictSyntax
		}
		s.pos++
	}
	// The slow way: unescape into s.key.
	s.key = append(s.key[:0], d[start:s.pos]...)
	for s.pos < len(d) {
		c := d[s.pos]
		switch {
		case c == '"':
			s.pos++
			return string(s.key), nil
		case c == '\\':
			r, err := s.escape()
			if err != nil {
				return "", err
			}
			s.key = utf8.AppendRune(s.key, r)
		case c < 0x20:
			return "", errStrictSyntax
		case c < utf8.RuneSelf:
			s.key = append(s.key, c)
			s.pos++
		default:
			r, size := utf8.DecodeRune(d[s.pos:])
			s.pos += size // an invalid byte: size 1, r is U+FFFD
			s.key = utf8.AppendRune(s.key, r)
		}
	}
	return "", errStrictSyntax
}

// escape scans an escape sequence at s.pos (the backslash) and returns the
// rune it stands for: a \u escape of a surrogate pairs with a following
// \u escape of its other half, else it is U+FFFD (encoding/json's unquote).
func (s *strictScanner) escape() (rune, error) {
	d := s.data
	if s.pos+1 >= len(d) {
		return 0, errStrictSyntax
	}
	c := d[s.pos+1]
	s.pos += 2
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
		r, ok := hex4(d, s.pos)
		if !ok {
			return 0, errStrictSyntax
		}
		s.pos += 4
		if !utf16.IsSurrogate(r) {
			return r, nil
		}
		if s.pos+6 <= len(d) && d[s.pos] == '\\' && d[s.pos+1] == 'u' {
			if r2, ok := hex4(d, s.pos+2); ok {
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					s.pos += 6
					return dec, nil
				}
			}
		}
		return utf8.RuneError, nil
	default:
		return 0, errStrictSyntax
	}
}

// hex4 reads four hex digits at d[i:].
func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
