package audit

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
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

// TestReadAllDuringRotation: while a writer keeps rotating the log, every
// ReadAll snapshot holds every record whose Write returned before the
// snapshot started (backups are never deleted here), each once.
func TestReadAllDuringRotation(t *testing.T) {
	dir := shortDir(t)
	path := dir + "/audit.log"
	l := openLog(t, Config{Path: path, MaxSizeBytes: 8000, MaxBackups: 100000})
	rec := blockedRecord(t, SourceNRI, "api")
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r := rec
			r.UUID = NewUUID()
			if err := l.Write(context.Background(), r); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			acked = append(acked, r.UUID)
			mu.Unlock()
		}
	}()
	last := 0
	for round := 0; ; round++ {
		// Let the writer get ahead between snapshots (rotating meanwhile).
		var before []string
		for spins := 0; ; spins++ {
			mu.Lock()
			before = append(before[:0], acked...)
			mu.Unlock()
			if len(before) >= last+40 || spins > 200000 {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		last = len(before)
		if len(before) >= 300 && round >= 6 {
			break
		}
		recs, problems, err := ReadAll(context.Background(), path, ReadOptions{})
		if err != nil || len(problems) > 0 {
			t.Fatalf("ReadAll: %v %v", err, problems)
		}
		have := make(map[string]int, len(recs))
		for _, r := range recs {
			have[r.UUID]++
		}
		for _, u := range before {
			if have[u] != 1 {
				close(stop)
				<-done
				t.Fatalf("round %d: acknowledged record %s seen %d times (%d acked, %d read)", round, u, have[u], len(before), len(recs))
			}
		}
	}
	close(stop)
	<-done
	files, _ := LogFiles(path)
	if len(files) < 10 {
		t.Fatalf("only %d files: rotation not exercised", len(files))
	}
}
