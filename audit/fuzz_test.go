package audit

import (
	"bytes"
	"context"
	"testing"
)

func seedLines(f *testing.F) {
	ex, err := docExample()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ex)
	f.Add([]byte(""))
	f.Add([]byte("null"))
	f.Add([]byte("{}"))
	f.Add([]byte(`{"time":"2026-11-27T14:03:07Z","uuid":"a","source":"nri","action":"blocked","result":"fail"}`))
	f.Add(append(append([]byte{}, ex[:len(ex)/2]...), '\n'))
	f.Add(bytes.Repeat([]byte("{\"a\":["), 50))
}

// FuzzParseRecord: arbitrary bytes never panic; whatever parses re-marshals to
// a line that parses to the same record.
func FuzzParseRecord(f *testing.F) {
	seedLines(f)
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseRecord(line)
		if err != nil {
			return
		}
		out, err := r.Marshal()
		if err != nil {
			t.Fatalf("parsed record does not marshal: %v", err)
		}
		if bytes.Count(out, []byte("\n")) != 1 || out[len(out)-1] != '\n' {
			t.Fatalf("marshalled record is not one line: %q", out)
		}
		r2, err := ParseRecord(out)
		if err != nil {
			t.Fatalf("re-marshalled record does not parse: %v\n%s", err, out)
		}
		out2, _ := r2.Marshal()
		if !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}

// FuzzScan reads an arbitrary log file: no panic, and every non-empty line is
// either a record or a problem with its line number.
func FuzzScan(f *testing.F) {
	ex, _ := docExample()
	f.Add(append(append([]byte{}, ex...), '\n'))
	f.Add([]byte("garbage\n\n" + string(ex) + "\n{\"time\":"))
	f.Add([]byte("\r\n\n\x00\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var recs, problems int
		lastLine := 0
		err := Scan(context.Background(), bytes.NewReader(data), "fuzz.log", func(Record) { recs++ }, func(p Problem) {
			if p.Line <= lastLine || p.File != "fuzz.log" {
				t.Fatalf("bad problem position %+v after line %d", p, lastLine)
			}
			lastLine = p.Line
			problems++
		})
		if err != nil {
			t.Fatalf("Scan of an in-memory reader failed: %v", err)
		}
		nonEmpty := 0
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimRight(l, "\r")) > 0 {
				nonEmpty++
			}
		}
		if recs+problems != nonEmpty {
			t.Fatalf("%d records + %d problems != %d non-empty lines", recs, problems, nonEmpty)
		}
	})
}
