package hook

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/hook/thin"
	"github.com/patchgate/patchgate/service"
	"github.com/patchgate/patchgate/service/decision"
)

// startBundleService is startService with the hook's own bundle reading
// (what `patchgate serve` and `patchgate nri` configure), so that it
// answers the thin hook.
func startBundleService(t testing.TB, pol string, judge bool) (string, string) {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "decision.sock")
	auditLog := filepath.Join(dir, "audit.log")
	k, _ := freshKernel(context.Background(), nil)
	logger := logrus.New()
	logger.SetOutput(os.Stderr)
	logger.SetLevel(logrus.WarnLevel)
	opts := []service.Option{service.WithPolicy(pol, ""), service.WithSocket(sock), service.WithStatusFile(""),
		service.WithAudit(audit.Config{Path: auditLog, Logger: logger}, ""), service.WithKernelMonitor(fixedKernel{k}),
		service.WithLogger(logger), service.WithPollInterval(time.Hour)}
	if judge {
		opts = append(opts, service.WithBundleJudge(BundleJudge{}))
	}
	svc, err := service.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return sock, auditLog
}

// fullCall records what the thin hook handed to the full decision.
type fullCall struct {
	called bool
	args   []string
	state  []byte
}

func (c *fullCall) full(exit int) thin.Full {
	return func(args []string, state []byte, _ io.Writer) int {
		c.called, c.args, c.state = true, args, state
		return exit
	}
}

// The thin hook and `patchgate hook` asking the same service give the same
// exit code and the same line for every recorded container: the service
// reads the bundle with this package's code.
func TestThinHookAgreesWithHook(t *testing.T) {
	pol := writePolicy(t, "deny", "enforce")
	sock, auditLog := startBundleService(t, pol, true)
	fixtures, err := os.ReadDir("testdata/podman")
	if err != nil {
		t.Fatal(err)
	}
	edits := map[string]func(string) string{"gone-netns": goneNetNS}
	var cases []string
	for _, f := range fixtures {
		cases = append(cases, f.Name())
	}
	cases = append(cases, "gone-netns")
	blocked, recorded := 0, 0
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			state := func() string {
				if e, ok := edits[name]; ok {
					return editedState(t, "user1000-capdrop", e)
				}
				return stateFor(t, name)
			}
			want := Run(context.Background(), Config{
				PolicyPath: "/nonexistent/policy", Service: &decision.Client{Socket: sock},
				Kernel: freshKernel, NewID: audit.NewUUID, Timeout: 2 * time.Minute,
			}, strings.NewReader(state()))
			if want.By != ByService {
				t.Fatalf("the hook did not ask the service: by %s: %q", want.By, want.Message)
			}
			var stderr bytes.Buffer
			var c fullCall
			// Budgets far above the defaults: on a starved machine the
			// service's answer may take longer than a second, and the thin
			// hook would then rightly hand over to the full decision.
			exit := thin.Main([]string{"--socket", sock, "--policy", "/nonexistent/policy", "--timeout=2m", "--service-timeout=1m"},
				strings.NewReader(state()), &stderr, c.full(99))
			if c.called {
				t.Fatalf("the thin hook ran the full decision with %q", c.args)
			}
			if exit != want.Exit || strings.TrimSuffix(stderr.String(), "\n") != want.Message {
				t.Fatalf("thin hook: exit %d %q; patchgate hook: exit %d %q", exit, stderr.String(), want.Exit, want.Message)
			}
			if exit == ExitBlock {
				blocked++
			}
			if want.Message != "" {
				recorded++ // blocked or flagged
			}
		})
	}
	if blocked == 0 || blocked == len(cases) {
		t.Fatalf("%d of %d cases blocked: the cases do not tell admit from block", blocked, len(cases))
	}
	// Each blocked or flagged container has its record, written by the
	// service, for either hook.
	data, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), `"source":"hook"`); n != 2*recorded {
		t.Fatalf("%d hook records for %d blocked or flagged containers judged twice", n, recorded)
	}
}

// When the service cannot answer, the thin hook hands the same state and
// arguments to the full decision, with the audit record's UUID and what is
// left of the budget; it says to skip the service only when the service
// was not reached.
func TestThinHookFallsBack(t *testing.T) {
	pol := writePolicy(t, "deny", "enforce")
	sock, _ := startBundleService(t, pol, true)
	plain, _ := startBundleService(t, pol, false)
	hang := filepath.Join(t.TempDir(), "hang.sock")
	ln, err := net.Listen("unix", hang)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer func() { _ = c.Close() }() // hold it open, say nothing
		}
	}()
	badConfig := func(t *testing.T) string {
		return editedState(t, "default", func(cfg string) string { return cfg + "trailing" })
	}
	for _, tc := range []struct {
		name      string
		socket    string
		state     func(*testing.T) string
		skipSvc   bool
		handsOver bool // the full decision gets --audit-id and --timeout
	}{
		{"service silent", hang, func(t *testing.T) string { return stateFor(t, "default") }, true, true},
		{"service down", filepath.Join(t.TempDir(), "none.sock"), func(t *testing.T) string { return stateFor(t, "default") }, true, true},
		{"bad config.json", sock, badConfig, false, true},
		{"service without bundle reading", plain, func(t *testing.T) string { return stateFor(t, "default") }, false, true},
		{"bad state", sock, func(*testing.T) string {
			return `{"ociVersion":"1.0.2","id":"x","status":"creating","bundle":"relative"}`
		}, false, false},
		{"no socket", "", func(t *testing.T) string { return stateFor(t, "default") }, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := tc.state(t)
			// A short budget where the service is not to answer; a long one
			// where it is, so that a starved machine does not turn an
			// answer into a timeout.
			budget := "1m"
			if tc.skipSvc {
				budget = "300ms"
			}
			args := []string{"--policy", pol, "--socket", tc.socket, "--service-timeout", budget, "--timeout", "2m"}
			var c fullCall
			var stderr bytes.Buffer
			if exit := thin.Main(args, strings.NewReader(state), &stderr, c.full(7)); exit != 7 || !c.called {
				t.Fatalf("exit %d, full decision run: %v; stderr %q", exit, c.called, stderr.String())
			}
			if string(c.state) != state {
				t.Fatalf("full decision got state %q, want %q", c.state, state)
			}
			if !slices.Equal(c.args[:len(args)], args) {
				t.Fatalf("full decision args %q do not start with %q", c.args, args)
			}
			extra := c.args[len(args):]
			if !tc.handsOver {
				if len(extra) != 0 {
					t.Fatalf("full decision got extra args %q", extra)
				}
				return
			}
			if len(extra) < 2 || !strings.HasPrefix(extra[0], "--timeout=") || !strings.HasPrefix(extra[1], "--audit-id=") || !audit.ValidUUID(strings.TrimPrefix(extra[1], "--audit-id=")) {
				t.Fatalf("full decision extra args %q", extra)
			}
			if got := slices.Contains(extra, "--socket="); got != tc.skipSvc {
				t.Fatalf("full decision extra args %q: --socket= %v, want %v", extra, got, tc.skipSvc)
			}
			// The full decision accepts what it is handed.
			if err := CheckArgs(c.args); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The thin hook accepts exactly `patchgate hook`'s flags.
func TestThinFlagsMatchHook(t *testing.T) {
	full, th := FlagNames(), thin.FlagNames()
	slices.Sort(full)
	slices.Sort(th)
	if !slices.Equal(full, th) {
		t.Fatalf("patchgate hook flags %q, thin hook flags %q", full, th)
	}
}

// BenchmarkThinRun is the thin hook's work inside the process, without
// process start-up: the state read, the bundle request over the socket, and
// the service reading config.json and deciding (warm). Compare with
// BenchmarkRun/service, where the hook reads config.json and sends the
// workload.
func BenchmarkThinRun(b *testing.B) {
	pol := writePolicyB(b)
	sock, _ := startBundleService(b, pol, true)
	state := stateFor(b, "user1000-capdrop")
	args := []string{"--socket", sock, "--policy", pol, "--timeout=2m", "--service-timeout=1m"}
	full := func([]string, []byte, io.Writer) int { b.Fatal("the full decision ran"); return 1 }
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var stderr bytes.Buffer
		if exit := thin.Main(args, strings.NewReader(state), &stderr, full); exit != ExitAdmit {
			b.Fatalf("exit %d: %s", exit, stderr.String())
		}
	}
}

// Arguments `patchgate hook` refuses (it then blocks every container: a
// hook that cannot parse its own flags cannot decide) are never judged by
// the service instead: the thin hook hands them, unchanged, to the full
// decision, which refuses them as it always has. Otherwise a hooks.d file
// the full hook fails closed on would admit containers while the service
// is up, and change its decisions when the service goes down.
func TestThinHookRefusesWhatHookRefuses(t *testing.T) {
	pol := writePolicy(t, "deny", "enforce")
	sock, _ := startBundleService(t, pol, true)
	base := []string{"--socket", sock, "--policy", pol, "--timeout=2m", "--service-timeout=1m"}
	for _, bad := range [][]string{
		{"--policy", "relative/policy"},
		{"--audit-socket", "relative.sock"},
		{"--state-file", ""},
		{"--state-file", "state.json"},
		{"--audit-spool", "spool"},
		{"--audit-id", "../../not-a-uuid"},
		{"--nri-judged", "nosuchfield"},
		{"--identity-from", "podman"},
		{"--host-root", "host"},
		{"--host-root", ""},
		{"--socket", "relative.sock"},
	} {
		args := append(append([]string(nil), base...), bad...)
		t.Run(strings.Join(bad, "="), func(t *testing.T) {
			if CheckArgs(args) == nil {
				t.Fatalf("patchgate hook accepts %q: the case tests nothing", args)
			}
			var c fullCall
			var stderr bytes.Buffer
			if exit := thin.Main(args, strings.NewReader(stateFor(t, "default")), &stderr, c.full(7)); exit != 7 || !c.called {
				t.Fatalf("exit %d %q: the thin hook decided on arguments the full hook refuses", exit, stderr.String())
			}
			if !slices.Equal(c.args, args) {
				t.Fatalf("full decision got %q, want the arguments unchanged %q", c.args, args)
			}
		})
	}
}
