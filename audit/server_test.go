package audit

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type daemon struct {
	log    *Log
	srv    *Server
	cancel context.CancelFunc
	done   chan error
}

func startDaemon(t testing.TB, cfg Config, socket string, opts ...ServerOption) *daemon {
	t.Helper()
	l := openLog(t, cfg)
	srv, err := NewServer(l, append([]ServerOption{WithSocket(socket)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{log: l, srv: srv, cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- srv.Serve(ctx) }()
	t.Cleanup(d.stop)
	return d
}

func (d *daemon) stop() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	<-d.done
	d.cancel = nil
	_ = d.log.Close()
}

func TestSocketDelivery(t *testing.T) {
	dir := shortDir(t)
	path, sock := filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit.sock")
	startDaemon(t, Config{Path: path}, sock)
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket mode %v, want socket 0600", fi.Mode())
	}
	c, err := NewClient(WithClientSocket(sock), WithSpool(SpoolPathFor(path)))
	if err != nil {
		t.Fatal(err)
	}
	r := blockedRecord(t, SourceHook, "api")
	if err := c.Send(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	// Sent twice (a retry after a lost reply): still one record.
	if err := c.Send(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(SpoolPathFor(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("spool used although the daemon is up: %v", err)
	}
	if got := readAllUUIDs(t, path); got[r.UUID] != 1 || len(got) != 1 {
		t.Fatalf("log = %v", got)
	}
	h, err := c.Health(context.Background())
	if err != nil || !h.OK || h.Records != 1 || h.Path != path {
		t.Fatalf("health over the socket: %+v %v", h, err)
	}
}

func TestSocketRefusesOtherUIDs(t *testing.T) {
	dir := shortDir(t)
	path, sock := filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit.sock")
	// We run as root; allow only uid 4242, so the real SO_PEERCRED check
	// must refuse us.
	startDaemon(t, Config{Path: path, AllowedUIDs: []uint32{4242}}, sock)
	c, _ := NewClient(WithClientSocket(sock), WithSpool(filepath.Join(dir, "spool")))
	var rep reply
	if err := c.exchange(context.Background(), []byte("health\n"), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Error != ErrPeer.Error() {
		t.Fatalf("reply = %+v, want refusal", rep)
	}
	// Send falls back to the spool: the record is kept, not lost.
	r := blockedRecord(t, SourceHook, "api")
	if err := c.Send(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "spool"))
	if !strings.Contains(string(data), r.UUID) {
		t.Fatal("refused record not spooled")
	}
	if got := readAllUUIDs(t, path); len(got) != 0 {
		t.Fatalf("refused peer's record written: %v", got)
	}
}

func TestSocketRejectsInvalidRecord(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "audit.sock")
	startDaemon(t, Config{Path: filepath.Join(dir, "audit.log")}, sock)
	c, _ := NewClient(WithClientSocket(sock))
	var rep reply
	if err := c.exchange(context.Background(), []byte(`{"time":"2026-01-01T00:00:00Z"}`+"\n"), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.OK || !strings.Contains(rep.Error, "invalid audit record") {
		t.Fatalf("reply = %+v", rep)
	}
}

func TestSpoolWhenDaemonDownThenIngested(t *testing.T) {
	dir := shortDir(t)
	path, sock := filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit.sock")
	c, _ := NewClient(WithClientSocket(sock), WithSpool(SpoolPathFor(path)), WithTimeout(time.Second))
	var sent []string
	var wg sync.WaitGroup
	var mu sync.Mutex
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				r := blockedRecord(t, SourceHook, "api")
				if err := c.Send(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				sent = append(sent, r.UUID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fi, err := os.Stat(SpoolPathFor(path))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("spool: %v %v", fi, err)
	}
	d := startDaemon(t, Config{Path: path}, sock)
	if h := d.log.Health(); h.SpoolIngested != 400 {
		t.Fatalf("ingested %d, want 400", h.SpoolIngested)
	}
	got := readAllUUIDs(t, path)
	for _, u := range sent {
		if got[u] != 1 {
			t.Fatalf("%s present %d times", u, got[u])
		}
	}
	if _, err := os.Stat(SpoolPathFor(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("spool still there after ingest")
	}
}

func TestStaleSocketReplacedLiveOneRefused(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "audit.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l := openLog(t, Config{Path: filepath.Join(dir, "audit.log")})
	if _, err := NewServer(l, WithSocket(sock)); err == nil || !strings.Contains(err.Error(), "another process is listening") {
		t.Fatalf("NewServer over a live socket: %v", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = ln.Close()
	s, err := NewServer(l, WithSocket(sock))
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	_ = s.ln.Close()
}

// TestSendAfterDeadlineStillSpools: a caller whose deadline has passed (the
// daemon did not answer in time) still gets its record into the spool, even
// while another sender holds the spool's lock for a moment.
func TestSendAfterDeadlineStillSpools(t *testing.T) {
	dir := shortDir(t)
	spool := filepath.Join(dir, "spool")
	c, _ := NewClient(WithClientSocket(filepath.Join(dir, "none.sock")), WithSpool(spool), WithTimeout(5*time.Second))
	// Hold the spool's lock briefly, as a concurrent sender would.
	f, err := os.OpenFile(spool, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fd := int(f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	unlocked := make(chan struct{})
	go func() {
		defer close(unlocked)
		time.Sleep(50 * time.Millisecond)
		_ = syscall.Flock(fd, syscall.LOCK_UN)
	}()
	defer func() { <-unlocked; _ = f.Close() }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := blockedRecord(t, SourceHook, "api")
	if err := c.Send(ctx, r); err != nil {
		t.Fatalf("Send with a done context: %v", err)
	}
	if recs := checkLogFile(t, spool); len(recs) != 1 || recs[0].UUID != r.UUID {
		t.Fatalf("spool holds %d records", len(recs))
	}
}

// TestWriteSkipsUUIDAlreadyIngested: the hook gave up on the decision
// socket, decided locally and sent its record through the audit socket;
// then the service's own Write for the same request (same UUID) arrives.
// The log must hold the record once (REVIEW C1/F2).
func TestWriteSkipsUUIDAlreadyIngested(t *testing.T) {
	dir := shortDir(t)
	path, sock := filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit.sock")
	d := startDaemon(t, Config{Path: path}, sock)
	c, err := NewClient(WithClientSocket(sock), WithSpool(SpoolPathFor(path)))
	if err != nil {
		t.Fatal(err)
	}
	r := blockedRecord(t, SourceHook, "api")
	if err := c.Send(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	late := r
	late.Source = SourceNRI
	if err := d.log.Write(context.Background(), late); err != nil {
		t.Fatal(err)
	}
	// And Write then Write (a service retry after its in-memory set was reset).
	if err := d.log.Write(context.Background(), late); err != nil {
		t.Fatal(err)
	}
	// A record without a UUID gets a fresh one and is written.
	fresh := blockedRecord(t, SourceNRI, "db")
	fresh.UUID = ""
	if err := d.log.Write(context.Background(), fresh); err != nil {
		t.Fatal(err)
	}
	got := readAllUUIDs(t, path)
	if got[r.UUID] != 1 || len(got) != 2 {
		t.Fatalf("log = %v, want %s once plus one fresh record", got, r.UUID)
	}
	if h := d.log.Health(); h.Records != 2 {
		t.Fatalf("health counts %d records, want 2", h.Records)
	}
}
