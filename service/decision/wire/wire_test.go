package wire

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func TestBundleRequestStrict(t *testing.T) {
	good := `{"v":2,"kind":"bundle","id":"x","containerID":"c","bundle":"/b","pid":1,"ociVersion":"1.0.2","status":"creating","identityFrom":"none","hostRoot":"/","budgetMs":900}` + "\n"
	var req BundleRequest
	if err := ReadMessage(bufio.NewReader(strings.NewReader(good)), &req); err != nil || req.Bundle != "/b" || req.Pid != 1 {
		t.Fatalf("%+v %v", req, err)
	}
	for name, bad := range map[string]string{
		"unknown key":   `{"v":2,"kind":"bundle","extra":1}`,
		"trailing data": `{"v":2,"kind":"bundle"} {}`,
		"wrong type":    `{"v":2,"pid":"1"}`,
		"not an object": `[2]`,
	} {
		var req BundleRequest
		if err := ReadMessage(bufio.NewReader(strings.NewReader(bad+"\n")), &req); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %v, want a protocol error", name, err)
		}
	}
	if err := ReadMessage(bufio.NewReader(strings.NewReader(`{"v":2}`)), &req); !errors.Is(err, ErrProtocol) {
		t.Errorf("unterminated line: %v", err)
	}
}

func TestMessageVersion(t *testing.T) {
	for line, want := range map[string]int{`{"v":1,"id":"x"}`: 1, `{"v":2,"kind":"bundle"}`: 2} {
		if v, err := MessageVersion([]byte(line)); err != nil || v != want {
			t.Errorf("%s: %d %v", line, v, err)
		}
	}
	for _, bad := range []string{`{"id":"x"}`, `{"v":"2"}`, `nope`, `[]`} {
		if _, err := MessageVersion([]byte(bad)); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: %v, want a protocol error", bad, err)
		}
	}
}

// FuzzBundleRequest: any line decodes to a request or a protocol error,
// never a panic, and what decodes re-encodes to a request that decodes the
// same.
func FuzzBundleRequest(f *testing.F) {
	f.Add([]byte(`{"v":2,"kind":"bundle","id":"x","containerID":"c","bundle":"/b","pid":1,"ociVersion":"1.0.2","status":"creating","identityFrom":"none","hostRoot":"/","budgetMs":900}`))
	f.Add([]byte(`{"v":1,"seen":0}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		_, _ = MessageVersion(line)
		var req BundleRequest
		if err := Decode(line, &req); err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		var sb strings.Builder
		if err := WriteMessage(&sb, &req); err != nil {
			t.Fatal(err)
		}
		var again BundleRequest
		if err := ReadMessage(bufio.NewReader(strings.NewReader(sb.String())), &again); err != nil || again != req {
			t.Fatalf("round trip: %+v -> %+v (%v)", req, again, err)
		}
	})
}
