package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeSpoolFile(t *testing.T, path string, recs []Record, extra ...string) {
	t.Helper()
	var b strings.Builder
	for _, r := range recs {
		line, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
	}
	for _, e := range extra {
		b.WriteString(e)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCrashMidIngest: the daemon died after writing the first half of an
// ingest file to the log (and rotating), before removing it. Open must take in
// exactly the missing half.
func TestCrashMidIngest(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "audit.log")
	var recs []Record
	for i := 0; i < 40; i++ {
		recs = append(recs, blockedRecord(t, SourceHook, "api"))
	}
	cfg := Config{Path: path, MaxSizeBytes: 8 << 10, MaxBackups: 100}
	l := openLog(t, cfg)
	for _, r := range recs[:20] {
		if err := l.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	// Live records written after the half-finished ingest.
	for i := 0; i < 30; i++ {
		if err := l.Write(context.Background(), blockedRecord(t, SourceNRI, "live")); err != nil {
			t.Fatal(err)
		}
	}
	_ = l.Close()
	writeSpoolFile(t, SpoolPathFor(path)+".ingest", recs)
	// And new records spooled since.
	more := []Record{blockedRecord(t, SourceHook, "late")}
	writeSpoolFile(t, SpoolPathFor(path), more)

	// Shrink the tail window to one file, so the records taken in before the
	// crash lie beyond it: only the full scan for the ingest file's UUIDs
	// can find them.
	defer func(w int64) { seenWindowBytes = w }(seenWindowBytes)
	seenWindowBytes = 4096
	l = openLog(t, cfg)
	h := l.Health()
	if h.SpoolIngested != 21 || h.SpoolDuplicates != 20 {
		t.Fatalf("ingested %d duplicates %d, want 21 and 20", h.SpoolIngested, h.SpoolDuplicates)
	}
	got := readAllUUIDs(t, path)
	for _, r := range append(recs, more...) {
		if got[r.UUID] != 1 {
			t.Fatalf("%s present %d times", r.UUID, got[r.UUID])
		}
	}
	if len(got) != 40+30+1 {
		t.Fatalf("log holds %d records", len(got))
	}
	for _, p := range []string{SpoolPathFor(path), SpoolPathFor(path) + ".ingest"} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s left behind", p)
		}
	}
}

// TestSpoolRecordAlreadyLogged: a sender whose acknowledgement was lost
// spools a record the daemon had written; after a restart the tail window
// recognises it.
func TestSpoolRecordAlreadyLogged(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "audit.log")
	l := openLog(t, Config{Path: path})
	r := blockedRecord(t, SourceHook, "api")
	if err := l.Write(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	writeSpoolFile(t, SpoolPathFor(path), []Record{r})
	l = openLog(t, Config{Path: path})
	if h := l.Health(); h.SpoolDuplicates != 1 || h.SpoolIngested != 0 {
		t.Fatalf("health %+v", h)
	}
	if got := readAllUUIDs(t, path); got[r.UUID] != 1 {
		t.Fatalf("present %d times", got[r.UUID])
	}
}

// TestSpoolCorruptLinesKept: garbage and a fragment glued by a crashed sender
// are moved to the rejected file; the valid records around them get in.
func TestSpoolCorruptLinesKept(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "audit.log")
	spool := SpoolPathFor(path)
	a, b := blockedRecord(t, SourceHook, "a"), blockedRecord(t, SourceHook, "b")
	writeSpoolFile(t, spool, []Record{a}, "not json\n", `{"time":"cut short`)
	// The next sender closes the fragment with '\n' before its record.
	line, _ := b.Marshal()
	if err := AppendSpool(context.Background(), spool, line); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, Config{Path: path})
	if h := l.Health(); h.SpoolIngested != 2 || h.SpoolRejected != 2 {
		t.Fatalf("health %+v", h)
	}
	got := readAllUUIDs(t, path)
	if got[a.UUID] != 1 || got[b.UUID] != 1 {
		t.Fatalf("log %v", got)
	}
	rej, _ := os.ReadFile(spool + ".rejected")
	if string(rej) != "not json\n{\"time\":\"cut short\n" {
		t.Fatalf("rejected file %q", rej)
	}
}

// TestSpoolInsecureNotIngested: a spool writable by others is left alone.
func TestSpoolInsecureNotIngested(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "audit.log")
	spool := SpoolPathFor(path)
	writeSpoolFile(t, spool, []Record{blockedRecord(t, SourceHook, "a")})
	if err := os.Chmod(spool, 0o666); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, Config{Path: path})
	if _, err := l.IngestSpool(context.Background()); err == nil || !strings.Contains(err.Error(), "insecure") {
		t.Fatalf("IngestSpool: %v", err)
	}
	if got := readAllUUIDs(t, path); len(got) != 0 {
		t.Fatal("insecure spool ingested")
	}
	if _, err := os.Stat(spool + ".ingest"); err != nil {
		t.Fatal("insecure spool not kept for inspection")
	}
}

// TestSpoolSymlinkRefused: a spool path that is a symlink is not followed.
func TestSpoolSymlinkRefused(t *testing.T) {
	dir := shortDir(t)
	target := filepath.Join(dir, "elsewhere")
	spool := filepath.Join(dir, "spool")
	if err := os.Symlink(target, spool); err != nil {
		t.Fatal(err)
	}
	r := blockedRecord(t, SourceHook, "api")
	line, _ := r.Marshal()
	if err := AppendSpool(context.Background(), spool, line); err == nil {
		t.Fatal("AppendSpool followed a symlink")
	}
	if _, err := os.Stat(target); err == nil {
		t.Fatal("symlink target created")
	}
}
