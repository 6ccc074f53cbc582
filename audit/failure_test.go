package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	logtest "github.com/sirupsen/logrus/hooks/test"
)

func countMessages(h *logtest.Hook, msg string) int {
	n := 0
	for _, e := range h.AllEntries() {
		if e.Message == msg {
			n++
		}
	}
	return n
}

// mustMount mounts or fails; under CI=true a missing capability is a failure,
// elsewhere a skip.
func mustMount(t *testing.T, source, target, fstype string, flags uintptr, data string) {
	t.Helper()
	if err := syscall.Mount(source, target, fstype, flags, data); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount %s on %s: %v", fstype, target, err)
		}
		t.Skipf("cannot mount (%v); this test needs root with CAP_SYS_ADMIN", err)
	}
}

// TestReadOnlyDirectory: the log directory is a read-only bind mount (as
// root, chmod would not stop us). Open still returns a Log, writes fail and
// are counted, Health reports it and Blocks() with failClosed; once the
// directory is writable again the next write succeeds.
func TestReadOnlyDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	mustMount(t, dir, dir, "", syscall.MS_BIND, "")
	mounted := true
	unmount := func() {
		if mounted {
			if err := syscall.Unmount(dir, 0); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
			}
			mounted = false
		}
	}
	t.Cleanup(unmount)
	mustMount(t, "", dir, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, "")

	logger, hook := logtest.NewNullLogger()
	l := openLog(t, Config{Path: filepath.Join(dir, "audit.log"), FailClosed: true, Logger: logger})
	h := l.Health()
	if h.OK || !h.Blocks() || !strings.Contains(h.LastError, "read-only file system") {
		t.Fatalf("health on a read-only directory: %+v", h)
	}
	for i := 0; i < 3; i++ {
		err := l.Write(context.Background(), blockedRecord(t, SourceNRI, "api"))
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.EROFS) {
			t.Fatalf("write %d: err = %v, want ErrUnavailable wrapping EROFS", i, err)
		}
	}
	if h := l.Health(); h.Failures != 3 || h.Records != 0 || h.Err() == nil {
		t.Fatalf("failures not counted: %+v", h)
	}
	// Logged once per interval (a minute), not once per record.
	if n := countMessages(hook, "audit record not written"); n != 1 {
		t.Fatalf("%d log lines for 3 failed records, want 1", n)
	}

	unmount()
	r := blockedRecord(t, SourceNRI, "api")
	if err := l.Write(context.Background(), r); err != nil {
		t.Fatalf("write after the directory became writable: %v", err)
	}
	if h := l.Health(); !h.OK || h.Blocks() || h.Records != 1 {
		t.Fatalf("health did not recover: %+v", h)
	}
	if n := countMessages(hook, "audit log writable again"); n != 1 {
		t.Fatalf("recovery logged %d times, want 1", n)
	}
	if got := readAllUUIDs(t, filepath.Join(dir, "audit.log")); got[r.UUID] != 1 || len(got) != 1 {
		t.Fatalf("log = %v", got)
	}
}

// TestFullDisk uses a real 64 KiB tmpfs: writes fail with ENOSPC once it is
// full, nothing torn is left behind (a short write is cut off), failures are
// counted, and after space is freed writing resumes. The spool sender behaves
// the same way on the full file system.
func TestFullDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	mustMount(t, "tmpfs", dir, "tmpfs", 0, "size=64k,mode=0750")
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 24<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.log")
	l := openLog(t, Config{Path: path, Sync: true})
	ctx := context.Background()
	var written []string
	var werr error
	for i := 0; i < 500 && werr == nil; i++ {
		r := blockedRecord(t, SourceNRI, "api")
		if werr = l.Write(ctx, r); werr == nil {
			written = append(written, r.UUID)
		}
	}
	if !errors.Is(werr, ErrUnavailable) || !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("filling the disk: err = %v, want ErrUnavailable wrapping ENOSPC", werr)
	}
	if len(written) == 0 {
		t.Fatal("no record fit")
	}
	// Several more attempts on the full disk: each fails, each is counted.
	for i := 0; i < 5; i++ {
		if err := l.Write(ctx, blockedRecord(t, SourceNRI, "api")); err == nil {
			t.Fatal("write succeeded on a full disk")
		}
	}
	if h := l.Health(); h.OK || h.Failures != 6 || !strings.Contains(h.LastError, "no space left") {
		t.Fatalf("health on a full disk: %+v", h)
	}
	got := readAllUUIDs(t, path) // every line parses: no torn record
	if len(got) != len(written) {
		t.Fatalf("log holds %d records, %d writes succeeded", len(got), len(written))
	}

	// The spool on a full disk: an error, and no torn line either.
	spool := filepath.Join(dir, "spool")
	var serr error
	n := 0
	for i := 0; i < 100 && serr == nil; i++ {
		r := blockedRecord(t, SourceHook, "api")
		line, _ := r.Marshal()
		if serr = AppendSpool(ctx, spool, line); serr == nil {
			n++
		}
	}
	if !errors.Is(serr, syscall.ENOSPC) {
		t.Fatalf("spool on a full disk: %v", serr)
	}
	if n > 0 {
		if recs := checkLogFile(t, spool); len(recs) != n {
			t.Fatalf("spool holds %d records, %d appends succeeded", len(recs), n)
		}
	}
	_ = os.Remove(spool)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	r := blockedRecord(t, SourceNRI, "api")
	if err := l.Write(ctx, r); err != nil {
		t.Fatalf("write after freeing space: %v", err)
	}
	if h := l.Health(); !h.OK || h.Records != uint64(len(written)+1) {
		t.Fatalf("health after freeing space: %+v", h)
	}
	if got := readAllUUIDs(t, path); got[r.UUID] != 1 || len(got) != len(written)+1 {
		t.Fatalf("log after recovery holds %d records", len(got))
	}
}
