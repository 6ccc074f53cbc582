// Package uuid formats random version 4 UUIDs (RFC 4122) and checks audit
// record IDs (Valid). It links only the standard library's encoding/hex, so the thin hook can use it.
package uuid

import "encoding/hex"

// V4 sets the version and variant bits of b, 16 random bytes, and formats
// it as 8-4-4-4-12 lower-case hex.
func V4(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// Valid reports whether s may stand as an audit record's UUID: 1 to 64
// characters of [0-9a-zA-Z-]. It accepts more than V4 writes (an ID
// another tool made), never a character that could break a line or a
// path.
func Valid(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return false
		}
	}
	return true
}
