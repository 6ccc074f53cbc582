package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// AppendSpool appends one marshalled record line to the spool file at path,
// for a sender that cannot reach the daemon. It creates the file (0600) and
// its directory if needed.
//
// Protocol (shared with IngestSpool): under an exclusive flock on the open
// file, the sender checks that the file it holds is still the one named path
// (the daemon renames the spool away before ingesting it) and then appends the
// whole line with one O_APPEND write. A write cut short (disk full) is
// truncated off again, and a fragment left by a sender that died mid-write is
// closed with a '\n' first, so records are never split or glued together.
func AppendSpool(ctx context.Context, path string, line []byte) error {
	if len(line) == 0 || line[len(line)-1] != '\n' {
		line = append(append([]byte(nil), line...), '\n')
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("spool directory: %w", err)
	}
	for attempt := 0; ; attempt++ {
		if attempt > 100 {
			return fmt.Errorf("spool %s: file keeps being replaced", path)
		}
		done, err := appendSpoolOnce(ctx, path, line)
		if err != nil || done {
			return err
		}
	}
}

func appendSpoolOnce(ctx context.Context, path string, line []byte) (done bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return false, fmt.Errorf("open spool: %w", err)
	}
	// A file system may report a failed write only at close (NFS, quota):
	// a record is spooled only when the close succeeds too. A retry after
	// such a failure may spool it twice; IngestSpool drops the duplicate.
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			done, err = false, fmt.Errorf("close spool: %w", cerr)
		}
	}()
	fd := int(f.Fd())
	if err := flock(ctx, fd, syscall.LOCK_EX); err != nil {
		return false, fmt.Errorf("lock spool: %w", err)
	}
	defer func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }()
	var held, named syscall.Stat_t
	if err := syscall.Fstat(fd, &held); err != nil {
		return false, fmt.Errorf("stat spool: %w", err)
	}
	if err := syscall.Stat(path, &named); err != nil || named.Ino != held.Ino || named.Dev != held.Dev {
		return false, nil // renamed away for ingestion: open the new one
	}
	buf := line
	if held.Size > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], held.Size-1); err == nil && last[0] != '\n' {
			buf = append([]byte{'\n'}, line...)
		}
	}
	n, err := f.Write(buf)
	if err != nil {
		if n > 0 {
			if terr := f.Truncate(held.Size); terr != nil {
				// The fragment stays; the next sender starts with '\n' and
				// ingest moves the fragment to the rejected file.
				return false, fmt.Errorf("write spool: %w (and cutting off the partial line: %v)", err, terr)
			}
		}
		return false, fmt.Errorf("write spool: %w", err)
	}
	return true, nil
}

// flock takes a lock, polling without blocking so that ctx bounds the wait.
func flock(ctx context.Context, fd, how int) error {
	delay := 50 * time.Microsecond
	for {
		err := syscall.Flock(fd, how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, time.Millisecond)
	}
}

// IngestStats says what one IngestSpool call did.
type IngestStats struct {
	Ingested, Duplicates, Rejected int
}

// IngestSpool takes records from the spool into the log. Open calls it; a
// Server calls it periodically. It returns how many records were written.
//
// The spool is first renamed to SpoolPath+".ingest" (senders then start a new
// spool), an exclusive flock on it waits for senders still writing, and its
// records are written to the log, skipping UUIDs the log already holds. The
// log is fsynced before the ingest file is removed. A crash at any point
// leaves the ingest file in place; the next Open scans the whole log for its
// UUIDs and takes in only the missing ones.
func (l *Log) IngestSpool(ctx context.Context) (IngestStats, error) {
	l.ingestMu.Lock()
	defer l.ingestMu.Unlock()
	var total IngestStats
	ing := l.ingestPath()
	add := func(st IngestStats) {
		total.Ingested += st.Ingested
		total.Duplicates += st.Duplicates
		total.Rejected += st.Rejected
	}
	// First what a previous ingest left (a crash, or a write error), then the
	// current spool. The rename never replaces an existing ingest file.
	if _, err := os.Lstat(ing); err == nil {
		st, err := l.ingestFile(ctx, ing)
		add(st)
		if err != nil {
			return total, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return total, fmt.Errorf("spool: %w", err)
	}
	if err := os.Rename(l.cfg.SpoolPath, ing); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return total, fmt.Errorf("spool: %w", err)
		}
	} else {
		st, err := l.ingestFile(ctx, ing)
		add(st)
		if err != nil {
			return total, err
		}
	}
	if total.Ingested+total.Duplicates+total.Rejected > 0 {
		l.log.WithFields(map[string]any{
			"ingested": total.Ingested, "duplicates": total.Duplicates, "rejected": total.Rejected,
		}).Info("audit spool ingested")
	}
	return total, nil
}

func (l *Log) ingestFile(ctx context.Context, path string) (IngestStats, error) {
	var st IngestStats
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return st, fmt.Errorf("open spool: %w", err)
	}
	defer func() { _ = f.Close() }()
	fd := int(f.Fd())
	// Barrier: senders that locked the file before the rename finish first;
	// later ones see the rename and write to the new spool.
	if err := flock(ctx, fd, syscall.LOCK_EX); err != nil {
		return st, fmt.Errorf("lock spool: %w", err)
	}
	_ = syscall.Flock(fd, syscall.LOCK_UN)
	var fi syscall.Stat_t
	if err := syscall.Fstat(fd, &fi); err != nil {
		return st, fmt.Errorf("stat spool: %w", err)
	}
	if fi.Mode&syscall.S_IFMT != syscall.S_IFREG || fi.Mode&0o022 != 0 || !slices.Contains(l.cfg.AllowedUIDs, fi.Uid) {
		return st, fmt.Errorf("%w: %s (uid %d, mode %#o)", ErrSpoolInsecure, path, fi.Uid, fi.Mode&0o7777)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	for lineNo := 1; ; lineNo++ {
		line, rerr := readLine(br)
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, errLineTooLong) {
			return st, fmt.Errorf("read spool: %w", rerr)
		}
		if len(trimNL(line)) > 0 {
			if err := l.ingestLine(line, rerr, path, lineNo, &st); err != nil {
				return st, err
			}
		}
		if rerr != nil && errors.Is(rerr, io.EOF) {
			break
		}
	}
	if st.Ingested > 0 {
		if err := l.syncFile(); err != nil {
			return st, err
		}
	}
	if err := os.Remove(path); err != nil {
		return st, fmt.Errorf("remove ingested spool: %w", err)
	}
	return st, nil
}

func (l *Log) ingestLine(line []byte, rerr error, path string, lineNo int, st *IngestStats) error {
	var rec Record
	err := rerr
	if !errors.Is(err, errLineTooLong) {
		rec, err = ParseRecord(line)
	}
	if err != nil {
		if aerr := appendLine(l.rejectedPath(), line); aerr != nil {
			return fmt.Errorf("keep rejected spool line: %w", aerr)
		}
		st.Rejected++
		l.rejects.Add(1)
		l.log.WithError(err).WithField("line", fmt.Sprintf("%s:%d", path, lineNo)).
			Warn("invalid record in audit spool; kept in " + l.rejectedPath())
		return nil
	}
	out, err := rec.Marshal()
	if err != nil {
		return err
	}
	wrote, err := l.writeLine(out, rec.UUID, false, true)
	if err != nil {
		return err
	}
	if wrote {
		st.Ingested++
		l.ingested.Add(1)
	} else {
		st.Duplicates++
		l.duplicates.Add(1)
	}
	return nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
