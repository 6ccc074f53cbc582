package livepatch

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// splitReference is what lineSplitter must emit for in, however it is
// cut into writes: each line without its newline (and a "\r" before it),
// cut into pieces of maxLine, and a last line without a newline.
func splitReference(in []byte) []string {
	var out []string
	segs := bytes.Split(in, []byte("\n"))
	for i, seg := range segs {
		if i == len(segs)-1 && len(seg) == 0 {
			break
		}
		for len(seg) > maxLine {
			out = append(out, string(seg[:maxLine]))
			seg = seg[maxLine:]
		}
		out = append(out, string(bytes.TrimSuffix(seg, []byte("\r"))))
	}
	return out
}

// FuzzLineSplitter: a tool's output (untrusted bytes) comes out as the
// same lines whatever the writes' sizes, none longer than maxLine, and the
// output limit still holds.
func FuzzLineSplitter(f *testing.F) {
	f.Add([]byte("loading patch module: x.ko\nwaiting...\r\ndone"), uint8(3))
	f.Add([]byte("\n\n\r\n"), uint8(1))
	f.Add(bytes.Repeat([]byte("a"), 2*maxLine+5), uint8(200))
	f.Add(append(bytes.Repeat([]byte("b"), maxLine), '\n'), uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		var got []string
		s := &lineSplitter{emit: func(stream, text string) {
			if stream != "stdout" {
				t.Fatalf("stream %q", stream)
			}
			got = append(got, text)
		}}
		buf := &limitedBuffer{max: 1000}
		w := s.writer("stdout", buf)
		n := int(step)%97 + 1
		for rest := in; len(rest) > 0; {
			k := min(n, len(rest))
			if m, err := w.Write(rest[:k]); err != nil || m != k {
				t.Fatalf("Write = %d, %v", m, err)
			}
			rest = rest[k:]
		}
		s.flush()
		if want := splitReference(in); !slices.Equal(got, want) {
			t.Fatalf("lines %q, want %q", got, want)
		}
		for _, l := range got {
			if len(l) > maxLine || strings.Contains(l, "\n") {
				t.Fatalf("line %q", l)
			}
		}
		if len(buf.Bytes()) > 1000 || buf.truncated != (len(in) > 1000) {
			t.Fatalf("buffer %d bytes, truncated %v", len(buf.Bytes()), buf.truncated)
		}
	})
}

// BenchmarkToolRun: the cost of following a run (each line to a callback,
// or the output through a log file) next to a plain run, for the recorded
// kcarectl --info of ubuntu20-kernelcare. Compare the sub-benchmarks as
// ratios.
func BenchmarkToolRun(b *testing.B) {
	root := copyTree(b, "ubuntu20-kernelcare")
	env := &Env{HostRoot: root}
	argv := []string{"kcarectl", "--info"}
	for _, c := range []struct {
		name  string
		hooks func(b *testing.B) *runHooks
	}{
		{"plain", func(*testing.B) *runHooks { return nil }},
		{"lines", func(*testing.B) *runHooks {
			return &runHooks{line: func(string, string) {}, started: func(int) {}, exited: func(int) {}}
		}},
		{"logfile", func(b *testing.B) *runHooks {
			f, err := createLogIn(b.TempDir(), "run.log")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				if err := f.Close(); err != nil {
					b.Error(err)
				}
			})
			return &runHooks{line: func(string, string) {}, started: func(int) {}, exited: func(int) {}, log: f}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := c.hooks(b)
			for b.Loop() {
				res, err := env.runArgvFollowed(context.Background(), time.Minute, argv, h)
				if err != nil || res.ExitCode != 0 || len(res.Stdout) == 0 {
					b.Fatalf("%v %+v", err, res)
				}
			}
		})
	}
}
