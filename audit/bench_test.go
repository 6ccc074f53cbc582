package audit

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkAuditRecord measures one record from a built Record to "handed to
// the OS": in the daemon's process (Log.Write, with and without fsync), from
// another process's point of view over the unix socket (Client.Send: dial,
// send, daemon writes, reply), and the spool fallback (AppendSpool). Records
// are rotated every 64 MiB. NewRecord is measured separately.
func BenchmarkAuditRecord(b *testing.B) {
	ctx := context.Background()
	rec := blockedRecord(b, SourceHook, "api")
	b.Run("new-record", func(b *testing.B) {
		w, k := rootHostNet("api"), kernelState(rec.Time.Time)
		b.ReportAllocs()
		for b.Loop() {
			r := NewRecord(SourceNRI, w, nil, k, nil)
			_ = r
		}
	})
	b.Run("in-process", func(b *testing.B) {
		l := openLog(b, Config{Path: filepath.Join(shortDir(b), "audit.log"), MaxSizeBytes: 64 << 20})
		b.ReportAllocs()
		for b.Loop() {
			rec.UUID = NewUUID()
			if err := l.Write(ctx, rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("in-process-sync", func(b *testing.B) {
		l := openLog(b, Config{Path: filepath.Join(shortDir(b), "audit.log"), MaxSizeBytes: 64 << 20, Sync: true})
		b.ReportAllocs()
		for b.Loop() {
			rec.UUID = NewUUID()
			if err := l.Write(ctx, rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("socket", func(b *testing.B) {
		dir := shortDir(b)
		path, sock := filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit.sock")
		d := startDaemon(b, Config{Path: path, MaxSizeBytes: 64 << 20}, sock)
		c, err := NewClient(WithClientSocket(sock), WithSpool(SpoolPathFor(path)))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			rec.UUID = NewUUID()
			if err := c.Send(ctx, rec); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if h := d.log.Health(); h.Records != uint64(b.N) {
			b.Fatalf("daemon wrote %d records, sent %d (spool used?)", h.Records, b.N)
		}
	})
	b.Run("spool", func(b *testing.B) {
		spool := filepath.Join(shortDir(b), "spool")
		b.ReportAllocs()
		for b.Loop() {
			rec.UUID = NewUUID()
			line, err := rec.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			if err := AppendSpool(ctx, spool, line); err != nil {
				b.Fatal(err)
			}
		}
	})
}
