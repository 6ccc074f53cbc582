package audit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type child struct {
	cmd *exec.Cmd
	out *bufio.Scanner
}

func startRole(t *testing.T, dir, role string, env ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "PATCHGATE_AUDIT_TEST_ROLE="+role, "PATCHGATE_AUDIT_TEST_DIR="+dir)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return &child{cmd: cmd, out: bufio.NewScanner(out)}
}

// poll calls cond every few milliseconds until it is true or the deadline
// passes (then the test fails with what).
func poll(t *testing.T, deadline time.Time, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte("\n"))
}

// TestManyWriterProcesses: 16 writer processes send 1,000 records each to a
// daemon process over the socket, with the log rotating every 256 KiB. In
// the middle the daemon is killed with SIGKILL; the writers fall back to the
// spool; a new daemon process takes the spool in. Afterwards every record is
// in the log exactly once and every line parses.
func TestManyWriterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test skipped in -short mode")
	}
	const writers, perWriter = 16, 1000
	dir := shortDir(t)
	path := filepath.Join(dir, "audit.log")
	spool := SpoolPathFor(path)
	deadline := time.Now().Add(5 * time.Minute)

	d1 := startRole(t, dir, "daemon")
	waitReady(t, d1.out)
	var ws []*child
	for w := 0; w < writers; w++ {
		ws = append(ws, startRole(t, dir, "writer",
			fmt.Sprintf("PATCHGATE_AUDIT_TEST_WRITER=%d", w), fmt.Sprintf("PATCHGATE_AUDIT_TEST_COUNT=%d", perWriter)))
	}
	c, _ := NewClient(WithClientSocket(filepath.Join(dir, "audit.sock")))
	poll(t, deadline, "3,000 records in the first daemon", func() bool {
		h, err := c.Health(context.Background())
		return err == nil && h.Records >= 3000
	})
	if err := d1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = d1.cmd.Wait()
	poll(t, deadline, "writers to spool 500 records", func() bool { return countLines(spool) >= 500 })
	spooled := countLines(spool)

	d2 := startRole(t, dir, "daemon")
	waitReady(t, d2.out)
	for i, w := range ws {
		if err := w.cmd.Wait(); err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if err := d2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d2.cmd.Wait(); err != nil {
		t.Fatalf("second daemon: %v", err)
	}

	files, err := LogFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	total := 0
	for _, f := range files {
		for _, r := range checkLogFile(t, f) { // every line parses and matches the schema
			seen[r.Container.ID]++
			total++
		}
	}
	for w := 0; w < writers; w++ {
		for i := 0; i < perWriter; i++ {
			id := fmt.Sprintf("w%02d-%04d", w, i)
			if seen[id] != 1 {
				t.Errorf("record %s present %d times", id, seen[id])
			}
		}
	}
	if total != writers*perWriter {
		t.Errorf("log holds %d records, want %d", total, writers*perWriter)
	}
	if len(files) < 10 {
		t.Errorf("only %d log files: rotation was not exercised", len(files))
	}
	for _, p := range []string{spool, spool + ".ingest"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
	rejected := countLines(spool + ".rejected")
	t.Logf("%d records in %d files; %d spooled while the daemon was down (at restart); %d torn fragments kept in .rejected",
		total, len(files), spooled, rejected)
	if rejected > 0 {
		b, _ := os.ReadFile(spool + ".rejected")
		if strings.Count(string(b), "\n") != rejected {
			t.Fatal("rejected file malformed")
		}
	}
}
