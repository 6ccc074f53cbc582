// Package metrics holds patchgate's Prometheus collectors, on a registry of
// their own, and serves them.
//
//	m := metrics.New()
//	m.ObserveDecision(source, &decision, took)   // decisions by action, rule, source; latency
//	m.SetKernelState(state, compliant)           // compliance and state age
//	m.ObserveRemediation(outcome)                // finished runs by outcome
//	m.ObserveRemediationWait(outcome)            // admissions that asked for one, by what they got
//	m.WatchAudit(log.Health)                     // audit writes, failures, health
//	m.SetHookInjectionRefused(true)              // set by the NRI plugin
//	m.SetRuntimeConnected("validator", true)     // the NRI plugin's connection and mode
//	m.SetBaseSpecMissing(n)                      // runtime handlers without patchgate's base-spec hook
//	m.SetPolicyReloadFailed(true)                // the last policy reload failed
//	                                             // patchgate_build_info{version,commit,date,goversion} is always 1
//	go metrics.Serve(ctx, addr, m, probes)       // addr "" = DefaultAddr (loopback); probes: /healthz, /readyz (or nil)
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/internal/buildinfo"
	"github.com/patchgate/patchgate/policy"
)

// DefaultAddr is the loopback address Serve listens on by default.
const DefaultAddr = "127.0.0.1:9464"

// ErrNotLoopback is returned by CheckAddr for an address that is not loopback.
var ErrNotLoopback = errors.New("metrics address is not loopback")

// Metrics is patchgate's set of collectors.
type Metrics struct {
	reg *prometheus.Registry

	decisions        *prometheus.CounterVec
	decisionRules    *prometheus.CounterVec
	latency          *prometheus.HistogramVec
	kernelCompliant  prometheus.Gauge
	remediations     *prometheus.CounterVec
	remediationWaits *prometheus.CounterVec
	hookRefused      prometheus.Gauge
	runtimeConnected *prometheus.GaugeVec
	baseSpecMissing  prometheus.Gauge
	reloadFailed     prometheus.Gauge

	observedAt atomic.Int64 // unix nanoseconds of the kernel state; 0 = none
	now        func() time.Time

	auditMu     sync.Mutex
	auditHealth func() audit.Health
}

// New registers every collector on a fresh registry (plus the Go and process
// collectors).
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), now: time.Now}
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "patchgate_decisions_total",
		Help: "Admission decisions, by action (blocked, flagged, allowed) and source (nri, hook, eval).",
	}, []string{"action", "source"})
	m.decisionRules = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "patchgate_decision_rules_total",
		Help: "Rule violations in decisions, by decision action, rule ID and source.",
	}, []string{"action", "rule", "source"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "patchgate_decision_duration_seconds",
		Help:    "Time from receiving a container to returning the decision, by source.",
		Buckets: []float64{.00001, .00005, .0001, .0005, .001, .005, .01, .05, .1, .5, 1, 2},
	}, []string{"source"})
	m.kernelCompliant = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "patchgate_kernel_compliant",
		Help: "1 when the host kernel meets the policy's kernel rules, 0 when it is behind.",
	})
	stateAge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "patchgate_kernel_state_age_seconds",
		Help: "Seconds since the kernel live-patch state was last read (-1 before the first read).",
	}, func() float64 {
		at := m.observedAt.Load()
		if at == 0 {
			return -1
		}
		return m.now().Sub(time.Unix(0, at)).Seconds()
	})
	m.remediations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "patchgate_remediation_runs_total",
		Help: "Finished live-patch remediation runs, by outcome (patched, failed); one run however many containers waited for it.",
	}, []string{"outcome"})
	m.remediationWaits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "patchgate_remediation_waits_total",
		Help: "Container admissions that found the kernel behind and asked for a remediation, by what they got (patched, running, failed, notNeeded).",
	}, []string{"outcome"})
	m.hookRefused = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "patchgate_hook_injection_refused",
		Help: "1 when the runtime refuses the OCI hook injection (checks NRI cannot see are lost), else 0.",
	})
	m.runtimeConnected = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "patchgate_runtime_connected",
		Help: "1 while the NRI plugin is registered with the container runtime, 0 while it is not (containers are then judged only by an OCI hook, if any). mode: validator, CreateContainer or hook-only (not connected).",
	}, []string{"mode"})
	m.baseSpecMissing = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "patchgate_base_spec_missing",
		Help: "Runtime handlers whose containers arrived without patchgate's hook in the runtime's base spec (nothing judges them while patchgate is down on a runtime without the NRI validator; patchgate check names them).",
	})
	m.reloadFailed = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "patchgate_policy_reload_failed",
		Help: "1 while the last policy reload failed (the last good policy stays in force; patchgate check and the log give file:line), else 0.",
	})
	bi := buildinfo.Get()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "patchgate_build_info",
		Help:        "Always 1; the labels name the running build (version, commit, build date, Go version).",
		ConstLabels: prometheus.Labels{"version": bi.Version, "commit": bi.Commit, "date": bi.Date, "goversion": bi.GoVersion},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(buildInfo, m.decisions, m.decisionRules, m.latency, m.kernelCompliant, stateAge,
		m.remediations, m.remediationWaits, m.hookRefused, m.runtimeConnected, m.baseSpecMissing, m.reloadFailed, auditCollector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Action returns the audit action name of a verdict.
func Action(v policy.Verdict) string {
	switch v {
	case policy.Deny:
		return audit.ActionBlocked
	case policy.Warn:
		return audit.ActionFlagged
	default:
		return audit.ActionAllowed
	}
}

// ObserveDecision counts one decision and its rule violations and observes
// how long it took.
func (m *Metrics) ObserveDecision(source string, d *policy.Decision, took time.Duration) {
	action := Action(d.Verdict)
	m.decisions.WithLabelValues(action, source).Inc()
	for _, v := range d.Violations {
		m.decisionRules.WithLabelValues(action, v.Rule, source).Inc()
	}
	m.latency.WithLabelValues(source).Observe(took.Seconds())
}

// SetKernelState records the latest kernel state's time and whether it meets
// the policy's kernel rules.
func (m *Metrics) SetKernelState(k *policy.KernelState, compliant bool) {
	if k != nil && !k.ObservedAt.IsZero() {
		m.observedAt.Store(k.ObservedAt.UnixNano())
	}
	if compliant {
		m.kernelCompliant.Set(1)
	} else {
		m.kernelCompliant.Set(0)
	}
}

// ObserveRemediation counts one remediation run by its outcome.
func (m *Metrics) ObserveRemediation(outcome string) {
	m.remediations.WithLabelValues(outcome).Inc()
}

// ObserveRemediationWait counts one admission that asked for a remediation
// by what it got: the run's outcome, or "running" when it stopped waiting.
// Many admissions can wait on one run; ObserveRemediation counts the run.
func (m *Metrics) ObserveRemediationWait(outcome string) {
	m.remediationWaits.WithLabelValues(outcome).Inc()
}

// SetRuntimeConnected sets patchgate_runtime_connected: one series, for the
// current mode, 1 when connected.
func (m *Metrics) SetRuntimeConnected(mode string, connected bool) {
	m.runtimeConnected.Reset()
	v := 0.0
	if connected {
		v = 1
	}
	m.runtimeConnected.WithLabelValues(mode).Set(v)
}

// SetHookInjectionRefused sets the hook-injection-refused gauge.
func (m *Metrics) SetHookInjectionRefused(refused bool) {
	if refused {
		m.hookRefused.Set(1)
	} else {
		m.hookRefused.Set(0)
	}
}

// SetBaseSpecMissing sets patchgate_base_spec_missing to the number of
// runtime handlers seen without patchgate's hook in their base spec.
func (m *Metrics) SetBaseSpecMissing(n int) {
	m.baseSpecMissing.Set(float64(n))
}

// SetPolicyReloadFailed sets patchgate_policy_reload_failed.
func (m *Metrics) SetPolicyReloadFailed(failed bool) {
	if failed {
		m.reloadFailed.Set(1)
	} else {
		m.reloadFailed.Set(0)
	}
}

// WatchAudit makes the audit metrics read health (normally (*audit.Log).Health)
// at every scrape.
func (m *Metrics) WatchAudit(health func() audit.Health) {
	m.auditMu.Lock()
	m.auditHealth = health
	m.auditMu.Unlock()
}

var (
	auditRecordsDesc = prometheus.NewDesc("patchgate_audit_records_total",
		"Audit records written to the log (live and from the spool).", nil, nil)
	auditFailuresDesc = prometheus.NewDesc("patchgate_audit_write_failures_total",
		"Audit records that could not be written to the log.", nil, nil)
	auditHealthyDesc = prometheus.NewDesc("patchgate_audit_healthy",
		"1 when the last audit write succeeded, else 0.", nil, nil)
	auditSpoolDesc = prometheus.NewDesc("patchgate_audit_spool_records_total",
		"Records found in the spool, by what happened to them (ingested, duplicate, rejected).", []string{"result"}, nil)
)

// auditCollector reads the audit Health at scrape time, so the counters are
// exactly the log's own.
type auditCollector struct{ m *Metrics }

func (c auditCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- auditRecordsDesc
	ch <- auditFailuresDesc
	ch <- auditHealthyDesc
	ch <- auditSpoolDesc
}

func (c auditCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.auditMu.Lock()
	hf := c.m.auditHealth
	c.m.auditMu.Unlock()
	var h audit.Health
	if hf != nil {
		h = hf()
	} else {
		h.OK = true // no audit log watched: nothing failing
	}
	healthy := 0.0
	if h.OK {
		healthy = 1
	}
	ch <- prometheus.MustNewConstMetric(auditRecordsDesc, prometheus.CounterValue, float64(h.Records))
	ch <- prometheus.MustNewConstMetric(auditFailuresDesc, prometheus.CounterValue, float64(h.Failures))
	ch <- prometheus.MustNewConstMetric(auditHealthyDesc, prometheus.GaugeValue, healthy)
	ch <- prometheus.MustNewConstMetric(auditSpoolDesc, prometheus.CounterValue, float64(h.SpoolIngested), "ingested")
	ch <- prometheus.MustNewConstMetric(auditSpoolDesc, prometheus.CounterValue, float64(h.SpoolDuplicates), "duplicate")
	ch <- prometheus.MustNewConstMetric(auditSpoolDesc, prometheus.CounterValue, float64(h.SpoolRejected), "rejected")
}

// CheckAddr returns an error wrapping ErrNotLoopback unless addr's host is a
// loopback IP or "localhost". Front ends call it unless the operator asked
// for a non-loopback address explicitly.
func CheckAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("metrics address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %q", ErrNotLoopback, addr)
}

// Serve serves /metrics on addr ("" = DefaultAddr) until ctx is done, and
// every other path with probes (the service's /healthz and /readyz; nil
// serves /metrics alone). It returns an error if it cannot listen; nil
// after a clean shutdown.
func Serve(ctx context.Context, addr string, m *Metrics, probes http.Handler) error {
	if addr == "" {
		addr = DefaultAddr
	}
	return ServeHandler(ctx, addr, Mux(m, probes))
}

// Mux routes /metrics to m and every other path to probes (404 when nil).
func Mux(m *Metrics, probes http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	if probes != nil {
		mux.Handle("/", probes)
	}
	return mux
}

// ServeHandler serves h on addr until ctx is done (the probes on their own
// address use it). It returns an error if it cannot listen; nil after a
// clean shutdown.
func ServeHandler(ctx context.Context, addr string, h http.Handler) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	return serveListener(ctx, ln, h)
}

// Bounds on the connections the metrics and probe listener keeps. With
// --metrics-remote it is on the pod IP, which any pod in the cluster may
// reach: without them, 4,000 idle keep-alive connections from one pod (one
// request each, then nothing) held about 100 MB, past the chart's 96Mi
// limit, and an OOM-killed patchgate is a window in which containers are
// refused or, with the NRI toleration annotation, start unjudged.
// Prometheus and kubelet's probes each hold one connection at a time.
var (
	// maxConnsPerIP: connections one remote address may hold; the next
	// is closed at once.
	maxConnsPerIP = 16
	// maxConns: connections held in all; the next is closed at once. When
	// they are all taken kubelet's probes fail too, so it is as high as
	// the memory limit allows: with 1,024 idle connections patchgate used
	// about 38 MB.
	maxConns = 1024
	// idleTimeout: how long a keep-alive connection may wait for its next
	// request (without it, http.Server waits for ever).
	idleTimeout = time.Minute
)

func serveListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	ln = &limitListener{Listener: ln, perIP: map[string]int{}}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: idleTimeout}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("http shutdown: %w", err)
		}
		return nil
	}
}

// limitListener closes, as soon as it is accepted, a connection past
// maxConns in all or past maxConnsPerIP from one remote address.
type limitListener struct {
	net.Listener
	mu    sync.Mutex
	total int
	perIP map[string]int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		l.mu.Lock()
		ok := l.total < maxConns && l.perIP[ip] < maxConnsPerIP
		if ok {
			l.total++
			l.perIP[ip]++
		}
		l.mu.Unlock()
		if !ok {
			_ = c.Close()
			continue
		}
		return &limitedConn{Conn: c, release: func() { l.release(ip) }}, nil
	}
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}

// remoteIP is c's remote address without the port.
func remoteIP(c net.Conn) string {
	addr := c.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// limitedConn gives its slot back once, on the first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
