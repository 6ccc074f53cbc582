package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDispatchUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch([]string{"no-such-command"}, &out, &errb); code != exitInvalid {
		t.Fatalf("exit code = %d, want %d", code, exitInvalid)
	}
	if !strings.Contains(errb.String(), `unknown command "no-such-command"`) {
		t.Fatalf("stderr = %q", errb.String())
	}
}

func TestDispatchVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch([]string{"version"}, &out, &errb); code != exitOK {
		t.Fatalf("exit code = %d, stderr %q", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "patchgate ") {
		t.Fatalf("stdout = %q", out.String())
	}
	for _, want := range []string{"\ncommit: ", "\ndate: ", "\ngo: go"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout %q lacks %q", out.String(), want)
		}
	}
}
