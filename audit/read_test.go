package audit

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestScanLongLines(t *testing.T) {
	r := blockedRecord(t, SourceNRI, "api")
	r.Violations[0].Detail = strings.Repeat("d", 200<<10) // a valid 200 KiB record
	big, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	small := blockedRecord(t, SourceNRI, "b")
	smallLine, _ := small.Marshal()
	var data bytes.Buffer
	data.Write(big)
	data.WriteString(strings.Repeat("x", 2<<20) + "\n") // over MaxLineBytes
	data.Write(smallLine)
	var got []Record
	var problems []Problem
	if err := Scan(context.Background(), &data, "f", func(r Record) { got = append(got, r) },
		func(p Problem) { problems = append(problems, p) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].UUID != r.UUID || got[1].UUID != small.UUID {
		t.Fatalf("records %d", len(got))
	}
	if len(problems) != 1 || problems[0].Line != 2 || !errors.Is(problems[0].Err, errLineTooLong) {
		t.Fatalf("problems %v", problems)
	}
}
