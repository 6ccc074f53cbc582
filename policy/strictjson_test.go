package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCheckStrictJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"process":{},"process":{}}`, `process appears twice`},
		{`{"process":{},"Process":{}}`, `Process appears also as "process"`},
		{`{"linux":{"devices":[{"path":"/dev/null"},{"path":"/dev/a","PATH":"/dev/b"}]}}`, `linux.devices[1].PATH appears`},
		{`{"process":{"user":{"uid":1000,"uid":0}}}`, `process.user.uid appears twice`},
		// encoding/json folds Unicode: the Kelvin sign is k, the long s is s.
		{`{"linux":{"seccomp":{}, "ſeccomp":null}}`, `linux."ſeccomp" appears`},
		{"{\"linux\":{\"maskedPaths\":[],\"mas\u212aedPaths\":null}}", `maskedPaths`},
		// An escaped key is the same key.
		{`{"process":{},"proc\u0065ss":{}}`, `process appears twice`},
		{`{"annotations":{"io.kubernetes.cri.sandbox-namespace":"a","io.kubernetes.cri.sandbox-namespace":"kube-system"}}`, `annotations."io.kubernetes.cri.sandbox-namespace" appears twice`},
		{`[{"a":1},{"b":{"c":1,"c":2}}]`, `[1].b.c appears twice`},
		// A key cannot forge a line in the message.
		{"{\"x\\ny\":1,\"x\\nY\":2}", `"x\ny"`},
	} {
		err := CheckStrictJSON([]byte(tc.in))
		if !errors.Is(err, ErrAmbiguousKey) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want %q", tc.in, err, tc.want)
		}
		if _, err := ParseSpec([]byte(tc.in)); !errors.Is(err, ErrAmbiguousKey) {
			t.Errorf("ParseSpec(%s) = %v", tc.in, err)
		}
	}
	// Same keys in different objects, and values that repeat, are fine.
	for _, in := range []string{
		`{"a":{"x":1},"b":{"x":1},"c":[{"x":1},{"x":1}],"d":["x","x","X"]}`,
		`{"annotations":{"a":"process","b":"Process"}}`,
		`{"sysctl":{"net.ipv4.ip_forward":"1","net.ipv4.ip_local_port_range":"1 2"}}`,
		`{}`, `[]`, `"s"`, `1`,
	} {
		if err := CheckStrictJSON([]byte(in)); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
	for _, in := range []string{`{"a":`, `{"a" 1}`, `{1:2}`, `[1,]`} {
		if err := CheckStrictJSON([]byte(in)); err == nil || errors.Is(err, ErrAmbiguousKey) {
			t.Errorf("%s: %v, want a syntax error", in, err)
		}
	}
	// A large object (a crafted annotations map) stays linear and is
	// still checked.
	var b strings.Builder
	b.WriteString(`{"annotations":{`)
	for i := 0; i < 20000; i++ {
		b.WriteString(strconv.Quote("k" + strconv.Itoa(i)))
		b.WriteString(`:"v",`)
	}
	b.WriteString(`"K19999":"x"}}`)
	if err := CheckStrictJSON([]byte(b.String())); err == nil || !strings.Contains(err.Error(), `K19999 appears also as "k19999"`) {
		t.Errorf("large object: %v", err)
	}
}

// Every recorded real spec passes.
func TestCheckStrictJSONRecordedSpecs(t *testing.T) {
	files, _ := filepath.Glob("testdata/specs/*/*.json")
	more, _ := filepath.Glob("../hook/testdata/*/*/config.json")
	more2, _ := filepath.Glob("../hook/testdata/*/config.json")
	files = append(append(files, more...), more2...)
	if len(files) < 20 {
		t.Fatalf("only %d recorded specs found", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckStrictJSON(data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// largestSpec is the largest recorded containerd spec (about 20 KB).
func largestSpec(tb testing.TB) []byte {
	data, err := os.ReadFile("testdata/specs/hostPathMounts-pass-runtime/config.json")
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func BenchmarkCheckStrictJSON(b *testing.B) {
	data := largestSpec(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := CheckStrictJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSpec(b *testing.B) {
	data := largestSpec(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParseSpec(data); err != nil {
			b.Fatal(err)
		}
	}
}

// objectKeys is an independent oracle: every object's keys, compared
// pairwise with bytes.EqualFold as encoding/json matches them. It reports
// whether any object has two matching keys, and the top-level keys.
func objectKeys(data []byte) (dup bool, top []string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	type fr struct {
		obj     bool
		wantKey bool
		keys    []string
	}
	var stack []*fr
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return dup, top, true
		}
		if err != nil {
			return dup, top, false
		}
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].wantKey {
			if tok == json.Delim('}') {
				stack = stack[:n-1]
			} else {
				k := tok.(string)
				for _, p := range stack[n-1].keys {
					if bytes.EqualFold([]byte(p), []byte(k)) {
						dup = true
					}
				}
				stack[n-1].keys = append(stack[n-1].keys, k)
				stack[n-1].wantKey = false
				if n == 1 {
					top = append(top, k)
				}
				continue
			}
		} else {
			switch tok {
			case json.Delim('{'):
				stack = append(stack, &fr{obj: true, wantKey: true})
				continue
			case json.Delim('['):
				stack = append(stack, &fr{})
				continue
			case json.Delim(']'):
				stack = stack[:len(stack)-1]
			}
		}
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].wantKey = true
		}
		if len(stack) == 0 {
			return dup, top, true
		}
	}
}

// FuzzParseSpecStrict: never a panic; a document with matching keys in one
// object is always refused; and a spec that was accepted, given a second,
// case-swapped copy of one of its top-level keys, is refused.
func FuzzParseSpecStrict(f *testing.F) {
	f.Add(largestSpec(f))
	f.Add([]byte(`{"process":{},"Process":{}}`))
	f.Add([]byte(`{"a":[{"b":1,"B":2}]}`))
	f.Add([]byte("{\"\u212a\":1,\"k\":2}"))
	f.Add([]byte(`{"ociVersion":"1.0.2","process":{"user":{"uid":0}},"linux":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ParseSpec(data)
		dup, top, ok := objectKeys(data)
		if ok && dup && err == nil {
			t.Fatalf("accepted matching keys: %q", data)
		}
		if err != nil || len(top) == 0 {
			return
		}
		i := bytes.IndexByte(data, '{')
		k := []rune(top[0])
		for j, r := range k {
			if r >= 'a' && r <= 'z' {
				k[j] = r - 'a' + 'A'
			} else if r >= 'A' && r <= 'Z' {
				k[j] = r - 'A' + 'a'
			}
		}
		mutated := append(append(append([]byte{}, data[:i+1]...), []byte(strconv.Quote(string(k))+`:null,`)...), data[i+1:]...)
		if _, err := ParseSpec(mutated); err == nil {
			t.Fatalf("accepted a duplicate of %q: %q", top[0], mutated)
		}
	})
}

// strictCorpus is the documents the hand scanner and the token-based check
// are compared on, before fuzzing adds more: the cases above, recorded
// specs, and the corners of encoding/json's unquoting.
func strictCorpus(tb testing.TB) [][]byte {
	docs := []string{
		`{"process":{},"process":{}}`, `{"process":{},"Process":{}}`,
		`{"process":{},"proc\u0065ss":{}}`, `{"linux":{"seccomp":{}, "ſeccomp":null}}`,
		"{\"linux\":{\"maskedPaths\":[],\"mas\u212aedPaths\":null}}",
		`[{"a":1},{"b":{"c":1,"c":2}}]`, "{\"x\\ny\":1,\"x\\nY\":2}",
		`{}`, `[]`, `"s"`, `1`, ``, ` `, `{"a":`, `{"a" 1}`, `{1:2}`, `[1,]`, `{"a":1,}`,
		`{"a":1} trailing`, `{"a":1}{"a":1}`, `nul`, `-`, `-0.5e+7`, `01`, `1.`, `1e`, `[1.5E-3]`,
		// Lone and paired surrogates: both lone ones are U+FFFD, one key.
		`{"\ud800":1,"\udc00":2}`, `{"\ud83d\ude00":1,"\ud83d\ude01":2}`, `{"\ud83d\u0041":1,"\ufffdA":2}`,
		// Invalid UTF-8 is U+FFFD too.
		"{\"\xff\":1,\"\xfe\":2}", "{\"a\xff\":1,\"a\\ufffd\":2}",
		`{"a\/b":1,"a/b":2}`, `{"\b\f\n\r\t\"\\":1}`, `{"\x":1}`, `{"\u12":1}`, `{"\u12G4":1}`,
		"{\"a\x01\":1}", "[\"a\x1f\"]", `{"a":"\u00e9","b":[true,false,null]}`,
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
	}
	var out [][]byte
	for _, d := range docs {
		out = append(out, []byte(d))
	}
	files, _ := filepath.Glob("testdata/specs/*/*.json")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// sameStrictVerdict fails unless the hand scanner and the token-based check
// agree on data: both pass, or both refuse with the same message.
func sameStrictVerdict(t testing.TB, data []byte) {
	fast, slow := CheckStrictJSON(data), checkStrictJSONTokens(data)
	if (fast == nil) != (slow == nil) || fast != nil && (fast.Error() != slow.Error() || errors.Is(fast, ErrAmbiguousKey) != errors.Is(slow, ErrAmbiguousKey)) {
		t.Fatalf("%q: hand scanner %v, token-based %v", data, fast, slow)
	}
}

func TestCheckStrictJSONScannerAgrees(t *testing.T) {
	corpus := strictCorpus(t)
	if len(corpus) < 60 {
		t.Fatalf("corpus of %d documents: the recorded specs are missing", len(corpus))
	}
	for _, d := range corpus {
		sameStrictVerdict(t, d)
	}
}

func FuzzCheckStrictJSON(f *testing.F) {
	for _, d := range strictCorpus(f) {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameStrictVerdict(t, data)
	})
}

// The hand scanner against the token-based check it replaced, in one run.
func BenchmarkCheckStrictJSONTokens(b *testing.B) {
	data := largestSpec(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := checkStrictJSONTokens(data); err != nil {
			b.Fatal(err)
		}
	}
}
