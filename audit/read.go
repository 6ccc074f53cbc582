package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"syscall"
)

// Problem is a line that is not a valid record.
type Problem struct {
	File string
	Line int
	Err  error
}

func (p Problem) Error() string { return fmt.Sprintf("%s:%d: %v", p.File, p.Line, p.Err) }

// Scan reads records from r, one per line, calling fn for each valid record
// and problem for each line that is not one (with its 1-based line number).
// Empty lines are skipped. It stops only at a read error or when ctx is done.
func Scan(ctx context.Context, r io.Reader, name string, fn func(Record), problem func(Problem)) error {
	// Scan reads a whole stream: a last line without '\n' is still a line.
	_, _, err := scanFrom(ctx, r, name, 1, true, fn, problem)
	return err
}

// scanFrom scans complete lines, numbering them from firstLine. It returns
// the bytes and lines consumed. A last line without '\n' is not consumed, so
// that a reader following a growing file can come back for the rest; it is
// judged only with judgeFrag.
func scanFrom(ctx context.Context, r io.Reader, name string, firstLine int, judgeFrag bool, fn func(Record), problem func(Problem)) (consumed int64, lines int, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for n := firstLine; ; n++ {
		if (n-firstLine)%1024 == 1023 && ctx.Err() != nil {
			return consumed, lines, ctx.Err()
		}
		line, size, err := readLineN(br)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, errLineTooLong) {
			return consumed, lines, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		atEOF := errors.Is(err, io.EOF)
		complete := size > 0 && !atEOF
		if len(trimNL(line)) > 0 && (complete || judgeFrag) {
			if errors.Is(err, errLineTooLong) {
				problem(Problem{File: name, Line: n, Err: fmt.Errorf("%w: %w", ErrInvalidRecord, errLineTooLong)})
			} else if rec, perr := ParseRecord(line); perr != nil {
				problem(Problem{File: name, Line: n, Err: perr})
			} else {
				fn(rec)
			}
		}
		if complete {
			consumed += int64(size)
			lines++
		}
		if atEOF {
			return consumed, lines, nil
		}
	}
}

// ReadOptions select what ReadAll reads besides the log and its backups.
type ReadOptions struct {
	// SpoolPath, when set, also reads records still waiting in the spool
	// (SpoolPath and SpoolPath+".ingest").
	SpoolPath string
}

type fileKey [2]uint64 // device, inode

type fileCursor struct {
	off  int64
	line int
}

// ReadAll reads the log at path, its rotated backups and (optionally) the
// spool, drops repeated UUIDs, and returns the records sorted by time. A
// missing log is not an error (no records).
//
// It is safe against a daemon that writes, rotates and ingests meanwhile.
// Each pass reads the spool before the log (a record moves from the spool
// into the log, never back) and follows every file by inode from where the
// last pass stopped. Backups never change their name, so only a rotation
// during a pass can hide a file from it (the current file renamed after the
// directory was listed); passes repeat until the current file is the same
// before and after one. Every record stored before ReadAll started is then
// returned, unless retention deleted its file meanwhile.
func ReadAll(ctx context.Context, path string, opts ReadOptions) ([]Record, []Problem, error) {
	var recs []Record
	var problems []Problem
	byUUID := map[string]bool{}
	cursors := map[fileKey]*fileCursor{}
	done := map[string]bool{} // backups read to the end (they never change)
	readFile := func(p string, judgeFrag bool) (eof bool, err error) {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		defer func() { _ = f.Close() }()
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
			return false, err
		}
		key := fileKey{st.Dev, st.Ino}
		c := cursors[key]
		if c == nil {
			c = &fileCursor{}
			cursors[key] = c
		}
		if c.off < st.Size {
			if _, err := f.Seek(c.off, io.SeekStart); err != nil {
				return false, err
			}
			// A last line without '\n' is being written, or was torn by a
			// crash: it is left for a later pass, judged only in the last.
			consumed, lines, err := scanFrom(ctx, f, p, c.line+1, judgeFrag, func(r Record) {
				if !byUUID[r.UUID] {
					byUUID[r.UUID] = true
					recs = append(recs, r)
				}
			}, func(pr Problem) { problems = append(problems, pr) })
			c.off += consumed
			c.line += lines
			if err != nil {
				return false, err
			}
		}
		return c.off >= st.Size, nil
	}
	var names []string
	for pass := 0; ; pass++ {
		if pass > 10000 {
			return nil, nil, fmt.Errorf("%s: the log keeps rotating faster than it can be read", path)
		}
		before, err := inodeOf(path)
		if err != nil {
			return nil, nil, err
		}
		files, err := LogFiles(path)
		if err != nil {
			return nil, nil, err
		}
		names = names[:0]
		if opts.SpoolPath != "" {
			names = append(names, opts.SpoolPath, opts.SpoolPath+".ingest")
		}
		names = append(names, files...)
		for _, p := range names {
			if done[p] {
				continue
			}
			eof, err := readFile(p, false)
			if err != nil {
				return nil, nil, err
			}
			if eof && p != path && p != opts.SpoolPath && p != opts.SpoolPath+".ingest" {
				done[p] = true
			}
		}
		after, err := inodeOf(path)
		if err != nil {
			return nil, nil, err
		}
		if before == after {
			break
		}
	}
	// Last, what is left after the last complete line of each file: the rest
	// of a line being written, or one torn by a crash.
	for _, p := range names {
		if _, err := readFile(p, true); err != nil {
			return nil, nil, err
		}
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Time.Before(recs[j].Time.Time) })
	return recs, problems, nil
}

// inodeOf identifies the file at path; the zero key when there is none.
func inodeOf(path string) (fileKey, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return fileKey{}, nil
		}
		return fileKey{}, fmt.Errorf("%s: %w", path, err)
	}
	return fileKey{st.Dev, st.Ino}, nil
}

// LogFiles returns the log and its backups (Path.<time>) that exist: the
// current file first, then backups newest first.
func LogFiles(path string) ([]string, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out, backups []string
	for _, e := range ents {
		name := e.Name()
		if name == base {
			out = append(out, filepath.Join(dir, name))
			continue
		}
		if _, ok := backupTime(path, name); ok {
			backups = append(backups, filepath.Join(dir, name))
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(backups)))
	return append(out, backups...), nil
}
