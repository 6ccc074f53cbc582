package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// Defaults for Config.
const (
	DefaultPath          = "/var/log/patchgate/audit.log"
	DefaultSocket        = "/run/patchgate/audit.sock"
	DefaultMaxSizeBytes  = 100 << 20
	DefaultMaxBackups    = 5
	DefaultErrorInterval = time.Minute
	// MaxLineBytes bounds one record; longer lines are rejected.
	MaxLineBytes = 1 << 20
	seenLimit    = 1 << 16
)

// seenWindowBytes is how much of the log tail Open reads to learn the UUIDs of
// recent records (see "Guarantees" in the package doc); a variable for tests.
var seenWindowBytes int64 = 16 << 20

// Sentinel errors.
var (
	// ErrUnavailable means the audit log cannot be written right now.
	ErrUnavailable = errors.New("audit log unavailable")
	// ErrLocked means another process owns the audit log.
	ErrLocked = errors.New("audit log is owned by another process")
	// ErrClosed is returned by Write after Close.
	ErrClosed = errors.New("audit log closed")
	// ErrConfig is returned by Open for an invalid Config.
	ErrConfig = errors.New("invalid audit config")
	// ErrSpoolInsecure means a spool file is not owned by an allowed user or
	// is writable by group or others; it is left alone, not ingested.
	ErrSpoolInsecure = errors.New("audit spool file is insecure")
)

// Config is the audit log's configuration. Front ends map the policy's
// spec.audit block onto it (maxSizeMB * 1<<20 -> MaxSizeBytes).
type Config struct {
	// Path is the log file; backups are Path.<UTC time of rotation>.
	Path string
	// MaxSizeBytes rotates the log before a record would take it past this
	// size (0: DefaultMaxSizeBytes).
	MaxSizeBytes int64
	// MaxBackups is how many rotated files are kept (0: DefaultMaxBackups).
	MaxBackups int
	// RecordAllowed also records allowed decisions (see ShouldRecord).
	RecordAllowed bool
	// Sync calls fsync after every record. Without it a record is handed to
	// the OS (write(2)) before Write returns, which survives a crash of the
	// process but not of the machine.
	Sync bool
	// FailClosed asks front ends to block containers while the log cannot be
	// written (Health().Blocks()).
	FailClosed bool
	// SpoolPath is where senders append when the daemon is unreachable
	// (default SpoolPathFor(Path)).
	SpoolPath string
	// AllowedUIDs may send records over the socket and own spool files
	// (default: uid 0 only).
	AllowedUIDs []uint32
	// ErrorInterval is the minimum time between two operational log lines
	// about write failures (default DefaultErrorInterval).
	ErrorInterval time.Duration
	// Logger receives operational logs (default logrus.StandardLogger()).
	Logger logrus.FieldLogger
}

// SpoolPathFor returns the default spool path for a log path: a hidden file
// next to the log, so that shippers tailing "audit.log*" never see it.
func SpoolPathFor(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".spool")
}

func (c *Config) setDefaults() error {
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if !filepath.IsAbs(c.Path) {
		return fmt.Errorf("%w: path %q is not absolute", ErrConfig, c.Path)
	}
	c.Path = filepath.Clean(c.Path)
	if c.MaxSizeBytes < 0 || c.MaxBackups < 0 {
		return fmt.Errorf("%w: maxSize and maxBackups must not be negative", ErrConfig)
	}
	if c.MaxSizeBytes == 0 {
		c.MaxSizeBytes = DefaultMaxSizeBytes
	}
	if c.MaxBackups == 0 {
		c.MaxBackups = DefaultMaxBackups
	}
	if c.SpoolPath == "" {
		c.SpoolPath = SpoolPathFor(c.Path)
	}
	if !filepath.IsAbs(c.SpoolPath) {
		return fmt.Errorf("%w: spool path %q is not absolute", ErrConfig, c.SpoolPath)
	}
	if c.SpoolPath == c.Path {
		return fmt.Errorf("%w: spool path equals log path", ErrConfig)
	}
	if len(c.AllowedUIDs) == 0 {
		c.AllowedUIDs = []uint32{0}
	}
	if c.ErrorInterval <= 0 {
		c.ErrorInterval = DefaultErrorInterval
	}
	if c.Logger == nil {
		c.Logger = logrus.StandardLogger()
	}
	return nil
}

// Health is the state of the audit log, for metrics, `patchgate check` and
// the failClosed gate.
type Health struct {
	// OK is false after a failed write until the next successful one.
	OK         bool   `json:"ok"`
	Path       string `json:"path"`
	FailClosed bool   `json:"failClosed"`
	// Records counts records written since Open (live and from the spool).
	Records uint64 `json:"records"`
	// Failures counts records that could not be written since Open.
	Failures    uint64    `json:"failures"`
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// SpoolIngested counts records taken in from the spool; SpoolDuplicates
	// those skipped because the log already held them; SpoolRejected lines
	// that were not valid records (kept in the ".rejected" file).
	SpoolIngested   uint64 `json:"spoolIngested"`
	SpoolDuplicates uint64 `json:"spoolDuplicates"`
	SpoolRejected   uint64 `json:"spoolRejected"`
}

// Blocks reports whether front ends must block containers: failClosed is set
// and the log cannot be written.
func (h Health) Blocks() bool { return h.FailClosed && !h.OK }

// Err returns nil when the log is writable, else an error wrapping
// ErrUnavailable with the last failure.
func (h Health) Err() error {
	if h.OK {
		return nil
	}
	return fmt.Errorf("%w: %s: %s", ErrUnavailable, h.Path, h.LastError)
}

type errInfo struct {
	msg string
	at  time.Time
}

// Log is the audit log owned by one process (the daemon). It is safe for
// concurrent use.
type Log struct {
	cfg Config
	log logrus.FieldLogger

	mu       sync.Mutex // guards everything below, and the file's contents
	f        *os.File
	size     int64
	needNL   bool // the file ends in a torn fragment: start the next write with '\n'
	seen     *seenSet
	lockF    *os.File
	closed   bool
	lastLog  time.Time
	quiet    uint64 // failures not logged since lastLog
	ingestMu sync.Mutex

	healthy                       atomic.Bool
	records, failures             atomic.Uint64
	ingested, duplicates, rejects atomic.Uint64
	lastErr                       atomic.Pointer[errInfo]
}

// Open opens (creating if needed) the audit log and takes in any spool left
// by senders. It returns an error only for an invalid Config or when another
// live process owns the log (ErrLocked); an unwritable log (read-only or full
// file system) still yields a *Log whose Health reports the failure, so that
// decisions go ahead.
func Open(cfg Config) (*Log, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	l := &Log{cfg: cfg, log: cfg.Logger.WithField("audit_log", cfg.Path), seen: newSeenSet(seenLimit)}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o750); err != nil {
		l.fail(fmt.Errorf("create log directory: %w", err))
	}
	if err := l.lock(); err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, err
		}
		l.fail(err)
	}
	l.mu.Lock()
	err := l.openFile()
	l.mu.Unlock()
	if err != nil {
		l.fail(err)
	} else {
		l.healthy.Store(true)
	}
	// After a crash in the middle of an ingest the whole log is scanned, so
	// that nothing already taken in is taken in twice.
	_, ingestErr := os.Lstat(l.ingestPath())
	l.loadSeen(ingestErr == nil)
	if _, err := l.IngestSpool(context.Background()); err != nil {
		l.log.WithError(err).Error("audit spool not ingested")
	}
	return l, nil
}

// Config returns the configuration in effect (with defaults applied).
func (l *Log) Config() Config { return l.cfg }

func (l *Log) lockPath() string {
	return filepath.Join(filepath.Dir(l.cfg.Path), "."+filepath.Base(l.cfg.Path)+".lock")
}
func (l *Log) ingestPath() string   { return l.cfg.SpoolPath + ".ingest" }
func (l *Log) rejectedPath() string { return l.cfg.SpoolPath + ".rejected" }

// lock takes an exclusive flock on a lock file next to the log: one owner per
// log. The kernel releases it when the owner dies.
func (l *Log) lock() error {
	f, err := os.OpenFile(l.lockPath(), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%w: %s", ErrLocked, l.lockPath())
		}
		return fmt.Errorf("lock %s: %w", l.lockPath(), err)
	}
	l.lockF = f
	return nil
}

// openFile opens the current log file for appending and repairs a torn last
// line left by a crash in the middle of a write. Called with l.mu held.
func (l *Log) openFile() error {
	f, err := os.OpenFile(l.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("stat audit log: %w", err)
	}
	l.f, l.size, l.needNL = f, st.Size(), false
	if l.size > 0 {
		l.repairTail()
	}
	return nil
}

// repairTail moves a final fragment without '\n' (a write cut short by a
// crash; its sender had no acknowledgement and spooled the record) into the
// rejected file and truncates it off, so every line of the log parses.
func (l *Log) repairTail() {
	r, err := os.Open(l.cfg.Path)
	if err != nil {
		l.needNL = true
		return
	}
	defer func() { _ = r.Close() }()
	n := min(l.size, int64(4*MaxLineBytes))
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, l.size-n); err != nil {
		l.needNL = true
		return
	}
	if buf[len(buf)-1] == '\n' {
		return
	}
	i := bytes.LastIndexByte(buf, '\n')
	if i < 0 && n < l.size {
		l.needNL = true // fragment longer than we are willing to read: keep it, start a new line
		return
	}
	frag := buf[i+1:]
	if err := appendLine(l.rejectedPath(), frag); err != nil {
		l.needNL = true
		return
	}
	keep := l.size - int64(len(frag))
	if err := l.f.Truncate(keep); err != nil {
		l.needNL = true
		return
	}
	l.size = keep
	l.log.WithField("bytes", len(frag)).Warn("audit log ended in a torn line; moved it to " + l.rejectedPath())
}

// Write appends one record and returns once write(2) has handed it to the OS
// (and fsync has returned, with Sync). The record is written even when ctx is
// already done: the decision it describes has been made. An error means the
// record is not in the log; it is counted, logged at most once per
// ErrorInterval, and shown by Health. The caller's decision goes ahead unless
// Config.FailClosed asks it to block.
//
// A record whose UUID the caller supplied is skipped (nil error) when the
// log has already written that UUID, exactly as for records arriving over
// the socket or from the spool: the hook may have sent its own record for
// the same decision first, or the caller may be retrying. A record without
// a UUID gets a fresh one and is always written.
func (l *Log) Write(ctx context.Context, r Record) error {
	_ = ctx
	dedup := r.UUID != ""
	if !dedup {
		r.UUID = NewUUID()
	}
	line, err := r.Marshal()
	if err != nil {
		return err
	}
	_, err = l.writeLine(line, r.UUID, l.cfg.Sync, dedup)
	return err
}

// writeLine writes one marshalled line. With dedup, a line whose UUID the log
// has already seen is skipped (returns false, nil).
func (l *Log) writeLine(line []byte, uuid string, sync, dedup bool) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false, ErrClosed
	}
	if dedup && l.seen.has(uuid) {
		return false, nil
	}
	if l.f == nil {
		if l.lockF == nil { // Open could not take ownership (e.g. read-only directory then)
			if err := l.lock(); err != nil {
				return false, l.failLocked(err)
			}
		}
		if err := l.openFile(); err != nil {
			return false, l.failLocked(err)
		}
	}
	if l.size > 0 && l.size+int64(len(line)) > l.cfg.MaxSizeBytes {
		if err := l.rotateLocked(); err != nil {
			// Keep writing to the current file rather than lose the record.
			l.warnLocked(fmt.Errorf("rotate: %w", err))
			if l.f == nil {
				return false, l.failLocked(err)
			}
		}
	}
	buf := line
	if l.needNL {
		buf = append([]byte{'\n'}, line...)
	}
	n, err := l.f.Write(buf)
	if err != nil {
		// Never leave a torn line: cut a partial write off again.
		if n > 0 {
			if terr := l.f.Truncate(l.size); terr != nil {
				l.size += int64(n)
				l.needNL = true
			}
		}
		return false, l.failLocked(fmt.Errorf("write audit log: %w", err))
	}
	l.size += int64(n)
	l.needNL = false
	l.seen.add(uuid)
	if sync {
		if err := l.f.Sync(); err != nil {
			return true, l.failLocked(fmt.Errorf("fsync audit log: %w", err))
		}
	}
	l.records.Add(1)
	if !l.healthy.Swap(true) {
		l.log.WithField("failures", l.failures.Load()).Info("audit log writable again")
	}
	return true, nil
}

// BackupLayout is the time suffix of a rotated file: Path + "." + the UTC
// time of the rotation. It has a fixed width, so names sort like times.
const BackupLayout = "2006-01-02T15-04-05.000000000Z"

// rotateLocked renames Path to Path.<time> and opens a new Path, then deletes
// the oldest backups beyond MaxBackups. A backup never changes its name again,
// so a reader that lists the directory while the log rotates misses at most
// the one file just renamed (and sees the current file change). Each record is
// written whole to exactly one file under l.mu, so rotation neither loses nor
// repeats one.
func (l *Log) rotateLocked() error {
	if err := l.f.Close(); err != nil {
		l.warnLocked(fmt.Errorf("close before rotation: %w", err))
	}
	l.f = nil
	files, err := LogFiles(l.cfg.Path)
	if err != nil {
		_ = l.openFile()
		return err
	}
	// Keep names increasing even if the clock steps back.
	t := time.Now().UTC()
	for _, f := range files {
		if bt, ok := backupTime(l.cfg.Path, f); ok && !t.After(bt) {
			t = bt.Add(time.Nanosecond)
		}
	}
	if err := os.Rename(l.cfg.Path, l.cfg.Path+"."+t.Format(BackupLayout)); err != nil && !errors.Is(err, os.ErrNotExist) {
		_ = l.openFile()
		return err
	}
	if err := l.openFile(); err != nil {
		return err
	}
	if l.cfg.Sync {
		syncDir(filepath.Dir(l.cfg.Path))
	}
	// Retention: files[0] was the current file (now the newest backup), the
	// rest are backups, newest first.
	for i, f := range files {
		if i >= l.cfg.MaxBackups && f != l.cfg.Path {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				l.warnLocked(fmt.Errorf("remove old backup: %w", err))
			}
		}
	}
	return nil
}

// backupTime parses the time suffix of a backup file name.
func backupTime(path, name string) (time.Time, bool) {
	suffix, ok := strings.CutPrefix(filepath.Base(name), filepath.Base(path)+".")
	if !ok || len(suffix) != len(BackupLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(BackupLayout, suffix)
	return t, err == nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// fail marks the log unhealthy at Open (no record was lost, so nothing is
// counted) and logs the reason.
func (l *Log) fail(err error) {
	l.healthy.Store(false)
	l.lastErr.Store(&errInfo{msg: err.Error(), at: time.Now()})
	l.log.WithError(err).Error("audit log cannot be written")
}

// failLocked counts a failure, marks the log unhealthy and logs at most once
// per ErrorInterval.
func (l *Log) failLocked(err error) error {
	l.failures.Add(1)
	l.healthy.Store(false)
	now := time.Now()
	l.lastErr.Store(&errInfo{msg: err.Error(), at: now})
	if now.Sub(l.lastLog) >= l.cfg.ErrorInterval {
		l.log.WithError(err).WithFields(logrus.Fields{
			"failures_total": l.failures.Load(), "not_logged": l.quiet,
		}).Error("audit record not written")
		l.lastLog, l.quiet = now, 0
	} else {
		l.quiet++
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func (l *Log) warnLocked(err error) {
	now := time.Now()
	if now.Sub(l.lastLog) >= l.cfg.ErrorInterval {
		l.log.WithError(err).Warn("audit log problem")
		l.lastLog = now
	}
}

// Health returns the current state without doing I/O.
func (l *Log) Health() Health {
	h := Health{
		OK:              l.healthy.Load(),
		Path:            l.cfg.Path,
		FailClosed:      l.cfg.FailClosed,
		Records:         l.records.Load(),
		Failures:        l.failures.Load(),
		SpoolIngested:   l.ingested.Load(),
		SpoolDuplicates: l.duplicates.Load(),
		SpoolRejected:   l.rejects.Load(),
	}
	if e := l.lastErr.Load(); e != nil {
		h.LastError, h.LastErrorAt = e.msg, e.at.UTC()
	}
	return h
}

// Close closes the file and releases ownership of the log.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var err error
	if l.f != nil {
		err = l.f.Close()
		l.f = nil
	}
	if l.lockF != nil {
		_ = l.lockF.Close()
		l.lockF = nil
	}
	return err
}

// syncFile fsyncs the current log file.
func (l *Log) syncFile() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return ErrUnavailable
	}
	if err := l.f.Sync(); err != nil {
		return l.failLocked(fmt.Errorf("fsync audit log: %w", err))
	}
	return nil
}

// loadSeen learns the UUIDs of the newest records: those in the last
// seenWindowBytes of the log and, when full is set (an ingest file was left by
// a crash), those anywhere in the log that the ingest file also holds.
func (l *Log) loadSeen(full bool) {
	var wanted map[string]bool
	if full {
		ids, _ := uuidsInTail(l.ingestPath(), 0, true)
		wanted = make(map[string]bool, len(ids))
		for _, id := range ids {
			wanted[id] = true
		}
	}
	budget := seenWindowBytes
	var ids []string
	files, err := LogFiles(l.cfg.Path) // current first, then backups newest first
	if err != nil {
		l.log.WithError(err).Warn("cannot list the audit log files; spool de-duplication starts empty")
	}
	for _, p := range files {
		if !full && budget <= 0 {
			break
		}
		got, n := uuidsInTail(p, max(budget, 0), full)
		if budget <= 0 { // beyond the window: only what the ingest file holds
			kept := got[:0]
			for _, id := range got {
				if wanted[id] {
					kept = append(kept, id)
				}
			}
			got = kept
		}
		budget -= n
		ids = append(got, ids...) // older files first
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(ids)+seenLimit > l.seen.limit {
		l.seen.limit = len(ids) + seenLimit
	}
	for _, id := range ids {
		l.seen.add(id)
	}
}

var uuidKey = []byte(`"uuid":"`)

func uuidsInTail(path string, budget int64, full bool) ([]string, int64) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return nil, 0
	}
	start := int64(0)
	if !full && st.Size() > budget {
		start = st.Size() - budget
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return nil, 0
	}
	br := bufio.NewReaderSize(f, 64<<10)
	if start > 0 {
		_, _ = br.ReadSlice('\n') // partial first line
	}
	var ids []string
	for {
		line, err := readLine(br)
		if i := bytes.Index(line, uuidKey); i >= 0 {
			rest := line[i+len(uuidKey):]
			if j := bytes.IndexByte(rest, '"'); j > 0 && ValidUUID(string(rest[:j])) {
				ids = append(ids, string(rest[:j]))
			}
		}
		if err != nil {
			break
		}
	}
	return ids, st.Size() - start
}

// readLine reads one line of at most MaxLineBytes (the rest of a longer line
// is discarded and the returned line is marked by ErrLineTooLong).
func readLine(br *bufio.Reader) ([]byte, error) {
	line, _, err := readLineN(br)
	return line, err
}

// readLineN is readLine that also returns how many bytes it consumed.
func readLineN(br *bufio.Reader) ([]byte, int, error) {
	line, err := br.ReadSlice('\n')
	n := len(line)
	if errors.Is(err, bufio.ErrBufferFull) {
		long := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = br.ReadSlice('\n')
			n += len(line)
			if len(long) <= MaxLineBytes {
				long = append(long, line...)
			}
		}
		if len(long) > MaxLineBytes {
			return long[:MaxLineBytes], n, errLineTooLongOr(err)
		}
		return long, n, err
	}
	return line, n, err
}

// errLineTooLong marks a line cut at MaxLineBytes.
var errLineTooLong = errors.New("line longer than 1 MiB")

func errLineTooLongOr(err error) error {
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err != nil {
		return errors.Join(errLineTooLong, err)
	}
	return errLineTooLong
}

// seenSet is a bounded set of recent UUIDs (FIFO eviction).
type seenSet struct {
	limit int
	m     map[string]struct{}
	ring  []string
	next  int
}

func newSeenSet(limit int) *seenSet {
	return &seenSet{limit: limit, m: make(map[string]struct{})}
}

func (s *seenSet) has(id string) bool { _, ok := s.m[id]; return ok }

func (s *seenSet) add(id string) {
	if _, ok := s.m[id]; ok {
		return
	}
	s.m[id] = struct{}{}
	if len(s.ring) < s.limit {
		s.ring = append(s.ring, id)
		return
	}
	delete(s.m, s.ring[s.next])
	s.ring[s.next] = id
	s.next = (s.next + 1) % len(s.ring)
}

func appendLine(path string, line []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	buf := append(append([]byte(nil), bytes.TrimRight(line, "\n")...), '\n')
	_, err = f.Write(buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
