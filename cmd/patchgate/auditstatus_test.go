package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/audit"
)

func TestAuditStatusFromDaemon(t *testing.T) {
	dir, err := os.MkdirTemp("", "pgs")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "audit.sock")

	st := queryAuditStatus(context.Background(), sock, time.Second)
	var out bytes.Buffer
	writeAuditStatus(&out, st)
	if st.Reachable || !strings.Contains(out.String(), "unknown: no daemon on "+sock) {
		t.Fatalf("no daemon: %+v %q", st, out.String())
	}

	lg := logrus.New()
	lg.SetOutput(io.Discard)
	l, err := audit.Open(audit.Config{Path: filepath.Join(dir, "audit.log"), Logger: lg, FailClosed: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srv, err := audit.NewServer(l, audit.WithSocket(sock))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	st = queryAuditStatus(context.Background(), sock, time.Second)
	out.Reset()
	writeAuditStatus(&out, st)
	if !st.Reachable || !st.Health.OK || !strings.Contains(out.String(), "ok: "+filepath.Join(dir, "audit.log")) {
		t.Fatalf("healthy daemon: %+v %q", st, out.String())
	}

	// A failing log, as the daemon reports it (audit's TestReadOnlyDirectory
	// and TestFullDisk produce such a Health from real mounts).
	h := audit.Health{OK: false, Path: "/var/log/patchgate/audit.log", FailClosed: true, Failures: 3,
		LastError: "write audit log: no space left on device", LastErrorAt: time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)}
	out.Reset()
	writeAuditStatus(&out, auditStatus{Socket: sock, Reachable: true, Health: &h})
	want := "audit log          FAILING: /var/log/patchgate/audit.log: write audit log: no space left on device (3 write failures since 2026-11-27T15:00:00Z); failClosed: containers are blocked\n"
	if out.String() != want {
		t.Fatalf("failing:\n got %q\nwant %q", out.String(), want)
	}
}
