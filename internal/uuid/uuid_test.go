package uuid

import (
	"strings"
	"testing"
)

func TestV4(t *testing.T) {
	var b [16]byte
	for i := range b {
		b[i] = 0xff
	}
	if got, want := V4(b), "ffffffff-ffff-4fff-bfff-ffffffffffff"; got != want {
		t.Errorf("V4 = %s, want %s", got, want)
	}
	if got, want := V4([16]byte{}), "00000000-0000-4000-8000-000000000000"; got != want {
		t.Errorf("V4 = %s, want %s", got, want)
	}
}

func TestValid(t *testing.T) {
	var b [16]byte
	for _, s := range []string{V4(b), "a", "A-z-0"} {
		if !Valid(s) {
			t.Errorf("Valid(%q) = false", s)
		}
	}
	for _, s := range []string{"", strings.Repeat("a", 65), "a b", "a\n", "../x", "a/b", "é"} {
		if Valid(s) {
			t.Errorf("Valid(%q) = true", s)
		}
	}
}
