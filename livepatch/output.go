package livepatch

import (
	"bytes"
	"io"
	"os"
	"sync"
	"time"
)

// lineSplitter hands a tool's output to a callback line by line while the
// tool runs (runHooks.line). One splitter serves both streams of a run, so
// the callback is never called concurrently. A nil *lineSplitter only
// collects output.
type lineSplitter struct {
	emit    func(stream, text string)
	mu      sync.Mutex
	writers []*lineWriter
}

// lineWriter is one stream: it stores what it gets in buf (which enforces
// the output limit) and emits each complete line.
type lineWriter struct {
	s       *lineSplitter
	stream  string
	buf     *limitedBuffer
	pending []byte
}

// writer returns the writer for stream: buf alone for a nil splitter.
func (s *lineSplitter) writer(stream string, buf *limitedBuffer) io.Writer {
	if s == nil {
		return buf
	}
	w := &lineWriter{s: s, stream: stream, buf: buf}
	s.mu.Lock()
	s.writers = append(s.writers, w)
	s.mu.Unlock()
	return w
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if _, err := w.buf.Write(p); err != nil {
		return 0, err
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.pending = append(w.pending, p...)
	for {
		i := bytes.IndexByte(w.pending, '\n')
		switch {
		case i >= 0 && i <= maxLine:
			w.s.emit(w.stream, string(bytes.TrimSuffix(w.pending[:i], []byte("\r"))))
			w.pending = w.pending[i+1:]
		case len(w.pending) > maxLine:
			w.s.emit(w.stream, string(w.pending[:maxLine]))
			w.pending = w.pending[maxLine:]
		default:
			// Keep the partial line, in a buffer of its own so that the
			// caller's slice is not kept.
			w.pending = append([]byte(nil), w.pending...)
			return len(p), nil
		}
	}
}

// flush emits what is left of every stream: a last line without a newline.
func (s *lineSplitter) flush() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.writers {
		if len(w.pending) > 0 {
			s.emit(w.stream, string(bytes.TrimSuffix(w.pending, []byte("\r"))))
			w.pending = nil
		}
	}
}

// logFollowPoll is how often a run's output log is read for new lines.
const logFollowPoll = 100 * time.Millisecond

// logFollower reads what a tool appends to its output log (runHooks.log)
// from offset off on and copies it to to, until stop.
type logFollower struct {
	f    *os.File
	off  int64
	to   io.Writer
	quit chan struct{}
	done chan struct{}
}

func (l *logFollower) start() {
	l.quit, l.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(l.done)
		t := time.NewTicker(logFollowPoll)
		defer t.Stop()
		for {
			l.drain()
			select {
			case <-l.quit:
				return
			case <-t.C:
			}
		}
	}()
}

// stop ends the follower after a last read: everything the tool wrote
// before it exited has been copied when stop returns.
func (l *logFollower) stop() {
	if l.quit == nil {
		return
	}
	close(l.quit)
	<-l.done
	l.drain()
}

func (l *logFollower) drain() {
	buf := make([]byte, 32<<10)
	for {
		n, err := l.f.ReadAt(buf, l.off)
		if n > 0 {
			l.off += int64(n)
			if _, werr := l.to.Write(buf[:n]); werr != nil {
				return
			}
		}
		// io.EOF: all read for now. Any other error: the output cannot
		// be followed from here; the tool still writes it to the file.
		if err != nil || n == 0 {
			return
		}
	}
}
