package service

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patchgate/patchgate/metrics"
	"github.com/patchgate/patchgate/policy"
)

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// progressKernel is a kernel monitor that reports its progress, as
// *livepatch.Monitor does: the state it holds, when its last read finished
// and its interval.
type progressKernel struct {
	k        atomic.Pointer[policy.KernelState]
	last     atomic.Int64
	interval time.Duration
}

func (p *progressKernel) Snapshot() *policy.KernelState               { return p.k.Load() }
func (p *progressKernel) Refresh(context.Context) *policy.KernelState { return p.k.Load() }
func (p *progressKernel) Interval() time.Duration                     { return p.interval }
func (p *progressKernel) LastRead() time.Time {
	if n := p.last.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// read stores a state observed at and finished at t.
func (p *progressKernel) read(t time.Time) {
	p.k.Store(&policy.KernelState{Release: "6.1.0-18-amd64", Patches: []policy.Patch{}, FixedCVEs: []string{}, ObservedAt: t})
	p.last.Store(t.UnixNano())
}

type healthEnv struct {
	*testEnv
	clock  *testClock
	kernel *progressKernel
}

func startHealthEnv(t *testing.T, extra ...Option) *healthEnv {
	t.Helper()
	h := &healthEnv{
		testEnv: newTestEnv(t),
		clock:   &testClock{t: time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)},
		kernel:  &progressKernel{interval: time.Minute},
	}
	h.kernel.read(h.clock.now())
	h.start(t, append([]Option{WithClock(h.clock.now), WithKernelMonitor(h.kernel)}, extra...)...)
	return h
}

// probe asks the service's health handler, as kubelet would.
func (h *healthEnv) probe(t *testing.T, target string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.svc.HealthHandler().ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
	return rec.Code, rec.Body.String()
}

func (h *healthEnv) want(t *testing.T, target string, code int, lines ...string) {
	t.Helper()
	got, body := h.probe(t, target)
	if got != code {
		t.Errorf("GET %s = %d, want %d:\n%s", target, got, code, body)
	}
	for _, l := range lines {
		if !strings.Contains(body, l) {
			t.Errorf("GET %s lacks %q:\n%s", target, l, body)
		}
	}
}

// TestReadinessServe: patchgate serve (no NRI) is ready with its socket
// listening, a policy and a fresh kernel state; it has no runtime check.
func TestReadinessServe(t *testing.T) {
	h := startHealthEnv(t)
	h.want(t, "/readyz", 200, "ok\n")
	h.want(t, "/readyz?verbose", 200, "[+]decision-socket ok\n", "[+]policy ok: first (sha256:", "[+]kernel-state ok: read 0s ago\n", "readyz check passed")
	if _, body := h.probe(t, "/readyz?verbose"); strings.Contains(body, "runtime") {
		t.Errorf("serve has a runtime check:\n%s", body)
	}
	h.want(t, "/healthz?verbose", 200, "[+]service ok\n", "[+]policy-watcher ok\n", "[+]kernel-monitor ok\n", "healthz check passed")
}

// TestReadinessRuntime: with an NRI front end, not ready until it is
// connected, not ready again when the runtime goes away (containerd
// restarting), while liveness stays good throughout.
func TestReadinessRuntime(t *testing.T) {
	h := startHealthEnv(t, WithRuntimeConnection())
	h.want(t, "/readyz", 503, "[-]runtime failed: not registered with the container runtime yet\n", "readyz check failed")
	for _, st := range []struct {
		state string
		code  int
		line  string
	}{
		{"connecting", 503, "[-]runtime failed: runtime connection is connecting, not connected"},
		{"connected", 200, "ok\n"},
		{"disconnected", 503, "[-]runtime failed: runtime connection is disconnected, not connected: NRI does not judge containers on this node\n"},
		{"refused", 503, "[-]runtime failed: runtime connection is refused"},
		{"connected", 200, "ok\n"},
	} {
		h.svc.SetRuntime(RuntimeConnection{State: st.state, Mode: "validator", Plugin: "50-patchgate", Reason: "secret /path/in/the/reason"})
		h.want(t, "/readyz", st.code, st.line)
		h.want(t, "/readyz/runtime", st.code)
		h.want(t, "/healthz", 200, "ok\n")
		if _, body := h.probe(t, "/readyz?verbose"); strings.Contains(body, "secret") {
			t.Errorf("the probe shows the runtime's reason text:\n%s", body)
		}
	}
	h.want(t, "/readyz?verbose", 200, "[+]runtime ok: connected as 50-patchgate, mode validator\n")
}

// TestReadinessKernelStale: the state older than spec.kernel.maxStateAge
// (default 10m) is not ready; a new read makes it ready again. Liveness
// holds while the monitor keeps reading (here: it stopped too, see below).
func TestReadinessKernelStale(t *testing.T) {
	h := startHealthEnv(t)
	h.clock.add(10 * time.Minute)
	h.want(t, "/readyz", 200)
	h.clock.add(time.Second)
	h.want(t, "/readyz", 503, "[-]kernel-state failed: the kernel state is 10m1s old, more than spec.kernel.maxStateAge 10m0s\n", "[+]policy ok")
	h.want(t, "/readyz/kernel-state", 503)
	h.kernel.read(h.clock.now())
	h.want(t, "/readyz", 200)
}

// TestReadinessKernelUnread: no state yet is not ready.
func TestReadinessKernelUnread(t *testing.T) {
	h := &healthEnv{testEnv: newTestEnv(t), clock: &testClock{t: time.Now()}, kernel: &progressKernel{interval: time.Minute}}
	h.start(t, WithClock(h.clock.now), WithKernelMonitor(h.kernel), WithStartupRead(0))
	h.want(t, "/readyz", 503, "[-]kernel-state failed: the kernel state has not been read yet")
	h.want(t, "/healthz?verbose", 200, "[+]kernel-monitor ok: first kernel read in progress")
	h.clock.add(time.Minute + 5*time.Minute + time.Second)
	h.want(t, "/healthz", 503, "[-]kernel-monitor failed: no kernel read has finished in the 6m1s since the service started")
}

// TestReadinessBrokenReload: a policy that no longer loads keeps the last
// good one in force, and the node ready; the note says the reload fails.
func TestReadinessBrokenReload(t *testing.T) {
	h := startHealthEnv(t)
	writeFile(t, filepath.Join(h.policyDir, "policy.yaml"), "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nspec: {defaultAction: maybe}\n", 0o644)
	h.svc.checkPolicy()
	if h.svc.polStatus.Load().Error == "" {
		t.Fatal("the broken policy loaded")
	}
	h.want(t, "/readyz", 200, "ok\n")
	h.want(t, "/readyz?verbose", 200, "[+]policy ok: first (sha256:", "in force; the reload since 2026-12-02T15:00:00Z fails, last good policy kept\n")
	if _, body := h.probe(t, "/readyz?verbose"); strings.Contains(body, "maybe") || strings.Contains(body, h.policyDir) {
		t.Errorf("the probe shows the policy error's text:\n%s", body)
	}
	// A policy with a shorter maxStateAge, once it loads, judges the same
	// state stale.
	writeFile(t, filepath.Join(h.policyDir, "policy.yaml"), strings.Replace(policyNamed("second"), "kernel: {onUnknown: warn}", "kernel: {onUnknown: warn, maxStateAge: 30s}", 1), 0o644)
	h.svc.checkPolicy()
	h.clock.add(31 * time.Second)
	h.want(t, "/readyz", 503, "[-]kernel-state failed: the kernel state is 31s old, more than spec.kernel.maxStateAge 30s")
}

// TestReadinessDecisionSocket: hooks reach the service by the socket's
// path; a removed or replaced socket file is not ready.
func TestReadinessDecisionSocket(t *testing.T) {
	h := startHealthEnv(t)
	if err := os.Remove(h.socket); err != nil {
		t.Fatal(err)
	}
	h.want(t, "/readyz", 503, "[-]decision-socket failed: the decision socket's file was removed: hooks cannot reach the service")
	writeFile(t, h.socket, "", 0o600)
	h.want(t, "/readyz", 503, "[-]decision-socket failed: the decision socket's path now names another file")
}

// TestLivenessWatcherAndMonitor: a watcher that has not gone round in 3
// poll intervals (at least 30s), or a monitor whose last read finished
// more than its interval plus 5 minutes ago, fails liveness; readiness
// says the kernel state is stale by then too.
func TestLivenessWatcherAndMonitor(t *testing.T) {
	// A 5s poll interval: the limit is the 30s floor, and the ticker does
	// not fire in the milliseconds before Close.
	h := startHealthEnv(t, WithPollInterval(5*time.Second))
	h.clock.add(29 * time.Second)
	h.want(t, "/healthz", 200)
	_ = h.svc.Close()
	// Closed: the watcher no longer rounds, and the service says so.
	h.clock.add(2 * time.Second)
	h.want(t, "/healthz", 503, "[-]service failed: the service has stopped\n",
		"[-]policy-watcher failed: the policy watcher's last round was 31s ago, more than 30s (3 poll intervals, at least 30s)\n")

	k := startHealthEnv(t)
	k.clock.add(6*time.Minute + time.Second)
	k.want(t, "/healthz", 503, "[-]kernel-monitor failed: the kernel monitor's last read finished 6m1s ago, more than its interval 1m0s plus 5m0s for a read")
	k.kernel.read(k.clock.now())
	k.want(t, "/healthz", 200)
}

// TestLivenessPartStopped: a background part that stopped with an error
// (here the decision socket's accept loop, its listener closed under it)
// fails liveness, so kubelet restarts the pod; the probe names no path.
func TestLivenessPartStopped(t *testing.T) {
	h := startHealthEnv(t)
	h.svc.setErr(os.ErrClosed)
	h.want(t, "/healthz", 503, "[-]service failed: a part of the service (decision socket, audit socket or metrics endpoint) stopped with an error; see the log\n")
	h.want(t, "/healthz/service", 503)
	h.want(t, "/healthz/policy-watcher", 200)
	h.want(t, "/healthz/runtime", 404)
}

// TestStatusCarriesProbes: the status file has both results, for
// `patchgate check`.
func TestStatusCarriesProbes(t *testing.T) {
	h := startHealthEnv(t, WithRuntimeConnection())
	h.svc.SetRuntime(RuntimeConnection{State: "disconnected", Mode: "hook-only"})
	st, err := ReadStatusFile(h.status)
	if err != nil {
		t.Fatal(err)
	}
	if st.Live == nil || !st.Live.OK || st.Ready == nil || st.Ready.OK {
		t.Fatalf("live %+v ready %+v", st.Live, st.Ready)
	}
	want := "runtime: runtime connection is disconnected, not connected: NRI does not judge containers on this node"
	if st.Ready.Failed() != want {
		t.Errorf("ready failed %q, want %q", st.Ready.Failed(), want)
	}
}

// TestHealthAddr: the probes alone on their own address, over real HTTP;
// /metrics is not there.
func TestHealthAddr(t *testing.T) {
	addr := freeAddr(t)
	h := startHealthEnv(t, WithHealthAddr(addr))
	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ {
		if resp, err = http.Get("http://" + addr + "/readyz?verbose"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/readyz = %d", resp.StatusCode)
	}
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("/metrics on the health address = %d, want 404", resp.StatusCode)
	}
	h.want(t, "/readyz", 200)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// BenchmarkProbes: one /readyz and one /healthz answer (what kubelet costs
// the service per period, a stat of the decision socket included), next to
// one /metrics scrape of the same service for scale (docs/operations.md).
func BenchmarkProbes(b *testing.B) {
	h := &healthEnv{testEnv: newTestEnv(b), clock: &testClock{t: time.Now()}, kernel: &progressKernel{interval: time.Minute}}
	h.kernel.read(h.clock.now())
	m := metrics.New()
	h.start(b, WithClock(h.clock.now), WithKernelMonitor(h.kernel), WithRuntimeConnection(), WithMetrics(m, ""))
	h.svc.SetRuntime(RuntimeConnection{State: "connected", Mode: "validator", Plugin: "50-patchgate"})
	mux := metrics.Mux(m, h.svc.HealthHandler())
	get := func(b *testing.B, path string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 {
			b.Fatal(path, rec.Code)
		}
	}
	b.Run("readyz+healthz", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			get(b, "/readyz")
			get(b, "/healthz")
		}
	})
	b.Run("metrics", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			get(b, "/metrics")
		}
	})
}
