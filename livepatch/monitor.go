package livepatch

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/policy"
)

// StateReader reads the kernel state; *Reader is one.
type StateReader interface {
	Read(ctx context.Context) policy.KernelState
}

// Monitor keeps the current kernel state. Run refreshes it on an interval;
// Refresh refreshes it at once. Snapshot hands it out without I/O or locks,
// so the request path never waits for a provider.
type Monitor struct {
	reader    StateReader
	interval  time.Duration
	stateFile string
	log       logrus.FieldLogger
	onUpdate  func(*policy.KernelState)

	snap atomic.Pointer[policy.KernelState]
	// readMu serialises reads; waiters for a refresh share the read that
	// starts after they asked (see Refresh).
	readMu sync.Mutex
	gen    atomic.Uint64
	wake   chan struct{}
	// lastRead is when the last read finished (unix nanoseconds; 0 before
	// the first): the liveness probe's sign that reads are not stuck.
	lastRead atomic.Int64
}

// MonitorOption configures a Monitor.
type MonitorOption func(*Monitor) error

// WithInterval sets the refresh interval (default 30s).
func WithInterval(d time.Duration) MonitorOption {
	return func(m *Monitor) error {
		if d <= 0 {
			return fmt.Errorf("%w: interval %v", ErrOption, d)
		}
		m.interval = d
		return nil
	}
}

// WithStateFile writes every new state to path, atomically (the OCI hook
// reads it; DefaultStateFile).
func WithStateFile(path string) MonitorOption {
	return func(m *Monitor) error { m.stateFile = path; return nil }
}

// WithLogger sets the operational logger.
func WithLogger(l logrus.FieldLogger) MonitorOption {
	return func(m *Monitor) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrOption)
		}
		m.log = l
		return nil
	}
}

// WithOnUpdate calls f with every new state (metrics). f must not block.
func WithOnUpdate(f func(*policy.KernelState)) MonitorOption {
	return func(m *Monitor) error { m.onUpdate = f; return nil }
}

// NewMonitor returns a Monitor over reader.
func NewMonitor(reader StateReader, opts ...MonitorOption) (*Monitor, error) {
	if reader == nil {
		return nil, fmt.Errorf("%w: nil reader", ErrOption)
	}
	m := &Monitor{reader: reader, interval: 30 * time.Second, log: logrus.StandardLogger(), wake: make(chan struct{}, 1)}
	for _, o := range opts {
		if err := o(m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Snapshot returns the current state, or nil before the first read. It is
// one atomic load: no I/O, no lock. The state is shared: do not modify it.
func (m *Monitor) Snapshot() *policy.KernelState { return m.snap.Load() }

// Run reads the state at once and then every interval, and whenever Trigger
// is called, until ctx ends. It returns ctx.Err().
func (m *Monitor) Run(ctx context.Context) error {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		m.Refresh(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-m.wake:
		}
	}
}

// Trigger asks Run to refresh soon, without waiting.
func (m *Monitor) Trigger() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Refresh reads the state now and returns it. Concurrent callers are
// coalesced: a caller waits for a read that started after its call, so it
// never gets state older than its request, and a burst of callers causes
// at most two reads.
func (m *Monitor) Refresh(ctx context.Context) *policy.KernelState {
	want := m.gen.Load() + 1
	m.readMu.Lock()
	defer m.readMu.Unlock()
	if m.gen.Load() > want {
		// A read that started after our call finished while we waited.
		return m.snap.Load()
	}
	k := m.reader.Read(ctx)
	m.store(&k)
	m.gen.Add(1)
	m.lastRead.Store(time.Now().UnixNano())
	return &k
}

// LastRead is when the last read finished, by this process's clock (the
// zero time before the first read). It does not depend on the state's
// ObservedAt, which a reader's clock sets.
func (m *Monitor) LastRead() time.Time {
	ns := m.lastRead.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Interval is how often Run reads the state.
func (m *Monitor) Interval() time.Duration { return m.interval }

func (m *Monitor) store(k *policy.KernelState) {
	m.snap.Store(k)
	if m.stateFile != "" {
		if err := WriteStateFile(m.stateFile, k); err != nil {
			m.log.WithError(err).WithField("path", m.stateFile).Warn("cannot write the kernel state file")
		}
	}
	if len(k.Unknown) > 0 || len(k.Conflicts) > 0 {
		m.log.WithFields(logrus.Fields{"unknown": len(k.Unknown), "conflicts": len(k.Conflicts), "providers": k.Providers}).Info("kernel state read with unknown parts or conflicts")
	}
	if m.onUpdate != nil {
		m.onUpdate(k)
	}
}
