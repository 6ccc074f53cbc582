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
	"strconv"
	"strings"
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
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		line, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, errLineTooLong) {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if len(trimNL(line)) > 0 {
			if errors.Is(err, errLineTooLong) {
				problem(Problem{File: name, Line: n, Err: fmt.Errorf("%w: %w", ErrInvalidRecord, errLineTooLong)})
			} else if rec, perr := ParseRecord(line); perr != nil {
				problem(Problem{File: name, Line: n, Err: perr})
			} else {
				fn(rec)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

// ReadOptions select what ReadAll reads besides the log and its backups.
type ReadOptions struct {
	// SpoolPath, when set, also reads records still waiting in the spool
	// (SpoolPath and SpoolPath+".ingest").
	SpoolPath string
}

// ReadAll reads the log at path, its rotated backups and (optionally) the
// spool, drops repeated UUIDs, and returns the records sorted by time. The
// current file is read first and backups from newest to oldest, re-listing
// until no unread file appears, so a rotation during the read loses no file.
// A missing log is not an error (no records).
func ReadAll(ctx context.Context, path string, opts ReadOptions) ([]Record, []Problem, error) {
	var recs []Record
	var problems []Problem
	byUUID := map[string]bool{}
	read := map[[2]uint64]bool{}
	readFile := func(p string) (bool, error) {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		defer f.Close()
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
			return false, err
		}
		key := [2]uint64{st.Dev, st.Ino}
		if read[key] {
			return false, nil
		}
		read[key] = true
		err = Scan(ctx, f, p, func(r Record) {
			if !byUUID[r.UUID] {
				byUUID[r.UUID] = true
				recs = append(recs, r)
			}
		}, func(pr Problem) { problems = append(problems, pr) })
		return true, err
	}
	for {
		files, err := LogFiles(path)
		if err != nil {
			return nil, nil, err
		}
		if opts.SpoolPath != "" {
			files = append(files, opts.SpoolPath+".ingest", opts.SpoolPath)
		}
		any := false
		for _, p := range files {
			got, err := readFile(p)
			if err != nil {
				return nil, nil, err
			}
			any = any || got
		}
		if !any {
			break
		}
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Time.Before(recs[j].Time.Time) })
	return recs, problems, nil
}

// LogFiles returns the log and its numbered backups that exist, newest first.
func LogFiles(path string) ([]string, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	type backup struct {
		n    int
		name string
	}
	var out []string
	var backups []backup
	for _, e := range ents {
		name := e.Name()
		if name == base {
			out = append(out, filepath.Join(dir, name))
			continue
		}
		suffix, ok := strings.CutPrefix(name, base+".")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(suffix); err == nil && n > 0 && strconv.Itoa(n) == suffix {
			backups = append(backups, backup{n, filepath.Join(dir, name)})
		}
	}
	sort.Slice(backups, func(i, j int) bool { return backups[i].n < backups[j].n })
	for _, b := range backups {
		out = append(out, b.name)
	}
	return out, nil
}
