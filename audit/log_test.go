package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"
)

func quietLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// shortDir returns a temporary directory with a short path (unix socket
// paths are limited to 107 bytes).
func shortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "pga")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func openLog(t testing.TB, cfg Config) *Log {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func readAllUUIDs(t testing.TB, path string) map[string]int {
	t.Helper()
	files, err := LogFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, f := range files {
		for _, r := range checkLogFile(t, f) {
			n[r.UUID]++
		}
	}
	return n
}

func TestWriteAndRotate(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "audit.log")
	l := openLog(t, Config{Path: path, MaxSizeBytes: 4096, MaxBackups: 1000})
	ctx := context.Background()
	var sent []string
	for i := 0; i < 200; i++ {
		r := blockedRecord(t, SourceNRI, fmt.Sprintf("c%03d", i))
		if err := l.Write(ctx, r); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, r.UUID)
	}
	files, _ := LogFiles(path)
	if len(files) < 10 {
		t.Fatalf("expected many rotated files, got %v", files)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 4096 {
			t.Errorf("%s is %d bytes, over MaxSizeBytes", f, fi.Size())
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	got := readAllUUIDs(t, path)
	for _, u := range sent {
		if got[u] != 1 {
			t.Fatalf("record %s present %d times", u, got[u])
		}
	}
	if len(got) != len(sent) {
		t.Fatalf("log holds %d records, sent %d", len(got), len(sent))
	}
	recs, problems, err := ReadAll(ctx, path, ReadOptions{})
	if err != nil || len(problems) > 0 || len(recs) != 200 {
		t.Fatalf("ReadAll: %d records, problems %v, err %v", len(recs), problems, err)
	}
	for i := range recs {
		if recs[i].Container.Name != fmt.Sprintf("c%03d", i) {
			t.Fatalf("record %d is %s: not in time order", i, recs[i].Container.Name)
		}
	}
	if h := l.Health(); !h.OK || h.Records != 200 || h.Failures != 0 {
		t.Fatalf("health %+v", h)
	}
}

func TestMaxBackupsDropsOldest(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "audit.log")
	l := openLog(t, Config{Path: path, MaxSizeBytes: 2048, MaxBackups: 2})
	var sent []string
	for i := 0; i < 40; i++ {
		r := blockedRecord(t, SourceNRI, "c")
		if err := l.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, r.UUID)
	}
	files, _ := LogFiles(path)
	if len(files) != 3 || files[0] != path {
		t.Fatalf("files = %v, want the current file and 2 backups", files)
	}
	for _, f := range files[1:] {
		if _, ok := backupTime(path, f); !ok {
			t.Fatalf("%s is not named %s.<%s>", f, path, BackupLayout)
		}
	}
	if files[1] <= files[2] {
		t.Fatalf("backups not newest first: %v", files)
	}
	// What is kept is the newest records, each once, in one unbroken run.
	got := readAllUUIDs(t, path)
	kept := 0
	for i := len(sent) - 1; i >= 0 && got[sent[i]] == 1; i-- {
		kept++
	}
	if kept != len(got) || kept == 0 || kept == len(sent) {
		t.Fatalf("kept %d newest of %d; log holds %d", kept, len(sent), len(got))
	}
}

func TestSecondOwnerRefused(t *testing.T) {
	dir := shortDir(t)
	cfg := Config{Path: filepath.Join(dir, "audit.log"), Logger: quietLogger()}
	openLog(t, cfg)
	if _, err := Open(cfg); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: err = %v, want ErrLocked", err)
	}
}

func TestOpenConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Path: "relative/audit.log"},
		{Path: "/tmp/x/audit.log", MaxSizeBytes: -1},
		{Path: "/tmp/x/audit.log", SpoolPath: "/tmp/x/audit.log"},
		{Path: "/tmp/x/audit.log", SpoolPath: "spool"},
	} {
		if _, err := Open(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("Open(%+v): err = %v, want ErrConfig", cfg, err)
		}
	}
}

func TestTornTailRepairedOnOpen(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "audit.log")
	l := openLog(t, Config{Path: path})
	r := blockedRecord(t, SourceNRI, "a")
	if err := l.Write(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	// A crash in the middle of a write leaves a fragment without '\n'.
	r2 := blockedRecord(t, SourceNRI, "b")
	line, _ := r2.Marshal()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	_, _ = f.Write(line[:100])
	_ = f.Close()

	l = openLog(t, Config{Path: path})
	r3 := blockedRecord(t, SourceNRI, "c")
	if err := l.Write(context.Background(), r3); err != nil {
		t.Fatal(err)
	}
	got := readAllUUIDs(t, path) // fails on any line that does not parse
	if got[r.UUID] != 1 || got[r3.UUID] != 1 || len(got) != 2 {
		t.Fatalf("log records %v", got)
	}
	rej, err := os.ReadFile(SpoolPathFor(path) + ".rejected")
	if err != nil || !bytes.Equal(bytes.TrimSpace(rej), line[:100]) {
		t.Fatalf("torn fragment not kept in the rejected file: %q %v", rej, err)
	}
}
