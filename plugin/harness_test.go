package plugin

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	validator "github.com/containerd/nri/plugins/default-validator"
	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/service"
)

// harness is a real NRI runtime side (pkg/adaptation, as containerd links
// it) on a unix socket, the plugin connected to it over that socket, and the
// real node service the plugin runs in-process.
type harness struct {
	t       testing.TB
	dir     string
	rt      *adaptation.Adaptation
	svc     *service.Service
	p       *Plugin
	logs    *syncBuffer
	auditLn string
	// decisionSock is the service's decision socket ("" unless
	// harnessOpts.decisionSocket).
	decisionSock string

	// stop ends the plugin's Run (as SIGTERM does) and waits for it.
	stop func()

	synced chan struct{}
	syncs  int
	conns  []net.Conn
	mu     sync.Mutex
	// running is what the runtime reports to Synchronize.
	runningPods []*api.PodSandbox
	runningCtrs []*api.Container
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harnessOpts struct {
	policyFile string
	validator  *validator.DefaultValidatorConfig
	// hookPath is the injected hook's path; /usr/local/bin/patchgate
	// unless noHook (the plugin then runs without a hook path).
	hookPath   string
	noHook     bool
	pluginOpts []Option
	// decisionSocket runs the service's decision socket (h.decisionSock),
	// the one the injected hook asks.
	decisionSocket bool
	// nriVersion is the runtime NRI version the plugin believes it talks to
	// (the real runtime side here is NRI v0.12.5), e.g. "v0.8.0" for
	// containerd 1.7 to 2.1.
	nriVersion string
	// defaultIdx leaves the plugin's index to its default (WithName not used).
	defaultIdx bool
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dir: dir, synced: make(chan struct{}, 16), logs: &syncBuffer{}}
	if o.policyFile == "" {
		o.policyFile = "test.yaml"
	}
	polDir := filepath.Join(dir, "policy")
	if err := os.Mkdir(polDir, 0o755); err != nil {
		t.Fatal(err)
	}
	h.installPolicy(o.policyFile)

	log := logrus.New()
	log.SetOutput(h.logs)
	log.SetLevel(logrus.DebugLevel)
	h.auditLn = filepath.Join(dir, "audit", "audit.log")
	if o.decisionSocket {
		h.decisionSock = filepath.Join(dir, "decision.sock")
	}
	svc, err := service.New(
		service.WithPolicy(polDir, "node-1"),
		service.WithSocket(h.decisionSock),
		service.WithStatusFile(filepath.Join(dir, "status.json")),
		service.WithAudit(audit.Config{Path: h.auditLn, Logger: log}, ""),
		service.WithPollInterval(50*time.Millisecond),
		service.WithLogger(log),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := svc.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	h.svc = svc

	sock := filepath.Join(dir, "nri.sock")
	rt, err := newRuntime(h, sock, o.validator)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h.rt = rt

	popts := []Option{WithNode(svc), WithSocket(sock), WithLogger(log), WithReconnectBackoff(50 * time.Millisecond)}
	if !o.defaultIdx {
		popts = append(popts, WithName("patchgate", "50"))
	}
	popts = append(popts, o.pluginOpts...)
	if o.hookPath == "" && !o.noHook {
		o.hookPath = "/usr/local/bin/patchgate"
	}
	if o.hookPath != "" {
		popts = append(popts, WithHook(o.hookPath))
	}
	p, err := New(popts...)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h.p = p
	if o.nriVersion != "" {
		p.nriVersion = func() string { return o.nriVersion }
	}
	// Record the plugin's connections, so a test can cut them as a dying
	// runtime does (Adaptation.Stop leaves external plugins connected).
	p.dial = func(path string) (net.Conn, error) {
		c, err := net.Dial("unix", path)
		if err == nil {
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
		return c, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx)
	}()
	h.stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(func() {
		cancel()
		<-done
		h.rt.Stop()
		_ = svc.Close()
		if t.Failed() {
			t.Logf("plugin and service logs:\n%s", h.logs.String())
		}
	})
	h.waitSynced()
	return h
}

func (h *harness) installPolicy(name string) {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "policies", name))
	if err != nil {
		h.t.Fatal(err)
	}
	tmp := filepath.Join(h.dir, "policy", ".policy.yaml.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(h.dir, "policy", "policy.yaml")); err != nil {
		h.t.Fatal(err)
	}
}

// sync is the runtime's SyncFn: it hands the plugin the running pods and
// containers and tells the test that a plugin has connected.
func (h *harness) sync(ctx context.Context, cb adaptation.SyncCB) error {
	h.mu.Lock()
	pods, ctrs := h.runningPods, h.runningCtrs
	h.mu.Unlock()
	_, err := cb(ctx, pods, ctrs)
	select {
	case h.synced <- struct{}{}:
	default:
	}
	return err
}

// waitSynced waits for the plugin's next Synchronize: the plugin has
// connected, registered and is serving.
func (h *harness) waitSynced() {
	h.t.Helper()
	h.syncs++
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(h.logs.String(), "synchronized with the runtime") < h.syncs {
		if time.Now().After(deadline) {
			h.t.Fatalf("plugin did not connect to the runtime; logs:\n%s", h.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The plugin has answered Synchronize, but the runtime adds it to its
	// plugins and validators only afterwards, under its plugin-sync lock: a
	// CreateContainer sent now could still find no validator and succeed.
	// Taking the lock (as containerd does around its requests) waits for that.
	h.rt.BlockPluginSync().Unblock()
}

// create runs the runtime's CreateContainer for a captured pod/container,
// then PostCreateContainer when it succeeded, as containerd does.
func (h *harness) create(pod *api.PodSandbox, ctr *api.Container) (*api.CreateContainerResponse, error) {
	ctx := context.Background()
	rpl, err := h.rt.CreateContainer(ctx, &adaptation.CreateContainerRequest{Pod: pod, Container: ctr})
	if err != nil {
		return nil, err
	}
	full := ApplyAdjustment(ctr, rpl.GetAdjust())
	if err := h.rt.PostCreateContainer(ctx, &adaptation.PostCreateContainerRequest{Pod: pod, Container: full}); err != nil {
		h.t.Fatalf("PostCreateContainer: %v", err)
	}
	return rpl, nil
}

func (h *harness) runPod(pod *api.PodSandbox) error {
	return h.rt.RunPodSandbox(context.Background(), &adaptation.RunPodSandboxRequest{Pod: pod})
}

// records reads the audit log the service owns.
func (h *harness) records() []audit.Record {
	h.t.Helper()
	recs, problems, err := audit.ReadAll(context.Background(), h.auditLn, audit.ReadOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	if len(problems) > 0 {
		h.t.Fatalf("corrupt audit log: %v", problems)
	}
	return recs
}

// newRuntime starts the runtime side of NRI as containerd does.
func newRuntime(h *harness, sock string, v *validator.DefaultValidatorConfig) (*adaptation.Adaptation, error) {
	rtOpts := []adaptation.Option{
		adaptation.WithSocketPath(sock),
		adaptation.WithPluginPath(filepath.Join(h.dir, "plugins")),
		adaptation.WithPluginConfigPath(filepath.Join(h.dir, "conf.d")),
	}
	if v != nil {
		rtOpts = append(rtOpts, adaptation.WithDefaultValidator(v))
	}
	rt, err := adaptation.New("containerd", "v2.4.2", h.sync, func(context.Context, []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
		return nil, nil
	}, rtOpts...)
	if err != nil {
		return nil, err
	}
	if err := rt.Start(); err != nil {
		return nil, err
	}
	return rt, nil
}
