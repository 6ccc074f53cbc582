package harness

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// InCI reports whether CI=true, where a missing prerequisite fails a test instead of
// skipping it.
func InCI() bool { return os.Getenv("CI") == "true" }

// SkipOrFail ends the test for a missing prerequisite: a skip on a developer machine, a
// failure under CI=true. Other errors always fail.
func SkipOrFail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrMissingPrerequisite) && !InCI() {
		t.Skipf("end-to-end prerequisite missing (a failure under CI=true): %v", err)
	}
	t.Fatal(err)
}

// StartT starts a private containerd for a test and registers its cleanup: pods removed,
// containerd stopped, everything removed, and the test fails if anything is left behind. On
// failure the tail of containerd's log is logged.
func StartT(t testing.TB, o Options) *Containerd {
	t.Helper()
	if o.Log == nil {
		o.Log = testWriter{t}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := Start(ctx, o)
	if err != nil {
		SkipOrFail(t, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("containerd log (last 40 lines):\n%s", h.LogTail(40))
		}
		if err := h.Cleanup(context.Background()); err != nil {
			t.Errorf("harness cleanup: %v", err)
		}
		if left := h.Leftovers(); len(left) > 0 {
			t.Errorf("harness left behind: %v", left)
		}
	})
	return h
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
