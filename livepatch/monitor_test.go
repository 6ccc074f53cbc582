package livepatch

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/patchgate/patchgate/internal/fstree"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patchgate/patchgate/policy"
)

// copyTree copies a fixture host tree (files, modes, symlinks) into a new
// temporary directory, so a test may change it.
func copyTree(t testing.TB, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := fstree.Copy(hostDir(t, name), dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

type countingReader struct {
	reads atomic.Int64
	delay time.Duration
}

func (c *countingReader) Read(ctx context.Context) policy.KernelState {
	n := c.reads.Add(1)
	time.Sleep(c.delay)
	return policy.KernelState{Release: "6.1.0-18-amd64", Patches: []policy.Patch{}, FixedCVEs: []string{}, ObservedAt: time.Unix(n, 0).UTC()}
}

func TestMonitorSnapshotAndRun(t *testing.T) {
	r := &countingReader{}
	m, err := NewMonitor(r, WithInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if m.Snapshot() != nil {
		t.Fatal("snapshot before the first read must be nil")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	// Run reads at once and then on every tick; wait for a few reads.
	deadline := time.After(10 * time.Second)
	for r.reads.Load() < 3 {
		select {
		case <-deadline:
			t.Fatalf("only %d reads", r.reads.Load())
		case <-time.After(5 * time.Millisecond):
		}
	}
	s := m.Snapshot()
	if s == nil || s.Release != "6.1.0-18-amd64" {
		t.Fatalf("snapshot = %+v", s)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
	if _, err := NewMonitor(nil); err == nil {
		t.Error("nil reader accepted")
	}
	if _, err := NewMonitor(r, WithInterval(0)); err == nil {
		t.Error("zero interval accepted")
	}
}

func TestMonitorTrigger(t *testing.T) {
	r := &countingReader{}
	m := must(NewMonitor(r, WithInterval(time.Hour)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for r.reads.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	m.Trigger()
	deadline := time.After(10 * time.Second)
	for r.reads.Load() < 2 {
		select {
		case <-deadline:
			t.Fatal("Trigger did not cause a read")
		case <-time.After(time.Millisecond):
		}
	}
}

func TestMonitorRefreshCoalesces(t *testing.T) {
	r := &countingReader{delay: 300 * time.Millisecond}
	m := must(NewMonitor(r))
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([]*policy.KernelState, 50)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = m.Refresh(context.Background())
		}()
	}
	close(start)
	wg.Wait()
	if n := r.reads.Load(); n < 1 || n > 2 {
		t.Errorf("50 concurrent refreshes made %d reads, want 1 or 2", n)
	}
	for i, k := range results {
		if k == nil {
			t.Fatalf("caller %d got nil", i)
		}
	}
	if got := m.Snapshot(); got != results[0] && got.ObservedAt.Before(results[0].ObservedAt) {
		t.Error("snapshot older than a refresh result")
	}
}

func TestMonitorStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "patchgate", "kernel-state.json")
	r, err := NewReader(WithHostRoot(hostDir(t, "debian12-enabled")), WithClock(func() time.Time { return fixedNow }))
	if err != nil {
		t.Fatal(err)
	}
	m := must(NewMonitor(r, WithStateFile(path)))
	want := m.Refresh(context.Background())
	got, err := ReadStateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a := must(json.Marshal(want))
	b := must(json.Marshal(got))
	if string(a) != string(b) {
		t.Errorf("state file round trip:\n%s\n%s", a, b)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("state file mode: %v %v", fi.Mode(), err)
	}
	leftovers := must(filepath.Glob(filepath.Join(filepath.Dir(path), ".kernel-state.json-*")))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestStateFileAtomicUnderConcurrentReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kernel-state.json")
	k := policy.KernelState{Release: "6.1.0-18-amd64", Patches: []policy.Patch{}, FixedCVEs: []string{}, ObservedAt: fixedNow}
	if err := WriteStateFile(path, &k); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := k
			// Vary the size so a torn write would show.
			k.FixedCVEs = make([]string, i%50)
			for j := range k.FixedCVEs {
				k.FixedCVEs[j] = "CVE-2024-1086"
			}
			if err := WriteStateFile(path, &k); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; i < 300; i++ {
		if _, err := ReadStateFile(path); err != nil {
			t.Errorf("read %d: %v", i, err)
			break
		}
	}
	close(stop)
	wg.Wait()
}

func TestReadStateFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	for _, content := range []string{"", "{", `{"release": "x"}`, `{"release":"x","observedAt":"2026-01-01T00:00:00Z","bogus":1}`} {
		if err := os.WriteFile(bad, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadStateFile(bad); !errors.Is(err, policy.ErrInvalidKernelState) {
			t.Errorf("ReadStateFile(%q) error = %v, want ErrInvalidKernelState", content, err)
		}
	}
	if _, err := ReadStateFile(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadStateFile(dir); err == nil {
		t.Error("a directory was read as a state file")
	}
}

func BenchmarkSnapshot(b *testing.B) {
	r := must(NewReader(WithHostRoot(hostDir(b, "debian12-enabled"))))
	m := must(NewMonitor(r))
	m.Refresh(context.Background())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if m.Snapshot() == nil {
				b.Fatal("nil snapshot")
			}
		}
	})
}

func BenchmarkReadSysfsTree(b *testing.B) {
	r := must(NewReader(WithHostRoot(hostDir(b, "debian13-replace"))))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if k := r.Read(ctx); len(k.Patches) != 2 {
			b.Fatal(k.Patches)
		}
	}
}

func BenchmarkReadKernelCareTree(b *testing.B) {
	r := must(NewReader(WithHostRoot(hostDir(b, "ubuntu20-kernelcare"))))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if k := r.Read(ctx); len(k.FixedCVEs) != 2 {
			b.Fatal(k.FixedCVEs)
		}
	}
}

// TestMonitorLastRead: the liveness probe's sign of progress is zero before
// the first read and moves with every finished read; Interval is the one
// configured.
func TestMonitorLastRead(t *testing.T) {
	m, err := NewMonitor(&countingReader{}, WithInterval(42*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !m.LastRead().IsZero() || m.Interval() != 42*time.Second {
		t.Fatalf("before a read: LastRead %v, Interval %v", m.LastRead(), m.Interval())
	}
	before := time.Now()
	m.Refresh(context.Background())
	first := m.LastRead()
	if first.Before(before) || first.After(time.Now()) {
		t.Fatalf("LastRead %v not within the read", first)
	}
	time.Sleep(2 * time.Millisecond)
	m.Refresh(context.Background())
	if !m.LastRead().After(first) {
		t.Errorf("LastRead did not move: %v then %v", first, m.LastRead())
	}
}
