package audit

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the processes of the multi-process test: with
// PATCHGATE_AUDIT_TEST_ROLE set it runs that role instead of the tests.
func TestMain(m *testing.M) {
	switch os.Getenv("PATCHGATE_AUDIT_TEST_ROLE") {
	case "":
		os.Exit(m.Run())
	case "daemon":
		os.Exit(roleDaemon(os.Getenv("PATCHGATE_AUDIT_TEST_DIR")))
	case "writer":
		n, _ := strconv.Atoi(os.Getenv("PATCHGATE_AUDIT_TEST_WRITER"))
		count, _ := strconv.Atoi(os.Getenv("PATCHGATE_AUDIT_TEST_COUNT"))
		os.Exit(roleWriter(os.Getenv("PATCHGATE_AUDIT_TEST_DIR"), n, count))
	default:
		fmt.Fprintln(os.Stderr, "unknown role")
		os.Exit(3)
	}
}

// Sizes of the multi-process test: small files so that rotation happens many
// times while 16 writers send.
const (
	mpMaxSize    = 256 << 10
	mpMaxBackups = 1000
)

// roleDaemon owns the log in dir and serves the socket until SIGTERM; it
// prints "ready" once the socket is bound.
func roleDaemon(dir string) int {
	l, err := Open(Config{Path: filepath.Join(dir, "audit.log"), MaxSizeBytes: mpMaxSize, MaxBackups: mpMaxBackups,
		Logger: quietLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "daemon:", err)
		return 1
	}
	srv, err := NewServer(l, WithSocket(filepath.Join(dir, "audit.sock")), WithIngestInterval(50*time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, "daemon:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fmt.Println("ready")
	if err := srv.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "daemon:", err)
		return 1
	}
	if err := l.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "daemon:", err)
		return 1
	}
	return 0
}

// roleWriter sends count records whose container ID is "w<n>-<i>".
func roleWriter(dir string, n, count int) int {
	c, err := NewClient(WithClientSocket(filepath.Join(dir, "audit.sock")),
		WithSpool(SpoolPathFor(filepath.Join(dir, "audit.log"))), WithTimeout(5*time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		return 1
	}
	for i := 0; i < count; i++ {
		r, err := makeBlockedRecord(SourceHook, "api")
		if err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			return 1
		}
		r.Container.ID = fmt.Sprintf("w%02d-%04d", n, i)
		if err := c.Send(context.Background(), r); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			return 1
		}
	}
	return 0
}

// waitReady reads the child's stdout until "ready".
func waitReady(t *testing.T, sc *bufio.Scanner) {
	t.Helper()
	for sc.Scan() {
		if sc.Text() == "ready" {
			return
		}
	}
	t.Fatal("daemon exited before it was ready")
}
