package service

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service/decision"
)

const basePolicy = `apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: %NAME%}
spec:
  defaultAction: enforce
  kernel: {onUnknown: warn}
  audit: {failClosed: false}
  rules:
    runAsRoot:  {action: enforce}
    apparmor:   {action: off}
    seccomp:    {action: off}
`

// fixedKernel is a kernel state source holding one fixture state.
type fixedKernel struct{ k *policy.KernelState }

func (f fixedKernel) Snapshot() *policy.KernelState               { return f.k }
func (f fixedKernel) Refresh(context.Context) *policy.KernelState { return f.k }

type testEnv struct {
	dir, policyDir, socket, auditSock, auditLog, status string
	svc                                                 *Service
	logs                                                *test.Hook
}

func writeFile(t testing.TB, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func policyNamed(name string) string { return strings.Replace(basePolicy, "%NAME%", name, 1) }

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	dir := t.TempDir()
	// Policy files and directories must not be writable by others, and the
	// peer test's helper (uid 65534) must reach the socket.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e := &testEnv{
		dir:       dir,
		policyDir: filepath.Join(dir, "etc"),
		socket:    filepath.Join(dir, "run", "decision.sock"),
		auditSock: filepath.Join(dir, "run", "audit.sock"),
		auditLog:  filepath.Join(dir, "log", "audit.log"),
		status:    filepath.Join(dir, "run", "status.json"),
	}
	if err := os.MkdirAll(e.policyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(e.policyDir, "policy.yaml"), policyNamed("first"), 0o644)
	return e
}

func (e *testEnv) start(t testing.TB, extra ...Option) {
	t.Helper()
	logger, hook := test.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	e.logs = hook
	k := &policy.KernelState{Release: "6.1.0-18-amd64", Patches: []policy.Patch{}, FixedCVEs: []string{}, ObservedAt: time.Now()}
	opts := append([]Option{
		WithPolicy(e.policyDir, "node-a"),
		WithPollInterval(time.Hour), // tests call checkPolicy themselves
		WithSocket(e.socket),
		WithStatusFile(e.status),
		WithAudit(audit.Config{Path: e.auditLog, Logger: logger}, e.auditSock),
		WithKernelMonitor(fixedKernel{k}),
		WithLogger(logger),
	}, extra...)
	svc, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	t.Cleanup(func() { _ = svc.Close() })
}

func rootWorkload(id string) *policy.Workload {
	return &policy.Workload{
		Source: "hook", Seen: policy.FieldsAll,
		Container: policy.ContainerIdentity{ID: id, Name: "web"},
		Pod:       policy.PodIdentity{Namespace: "shop", Name: "web-0"},
		User:      policy.User{UID: 0},
		// Everything but the user is fine.
		NoNewPrivileges: true,
		// containerd's default masked and read-only paths
		// (pkg/oci/spec.go, v2.4.2), which procMount requires.
		MaskedPaths: []string{"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
			"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/sys/devices/virtual/powercap", "/proc/scsi"},
		ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		Mounts:        []policy.Mount{{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"ro"}}},
	}
}

func auditLines(t *testing.T, path string) []audit.Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

func TestDecideOverSocketAuditsOnce(t *testing.T) {
	e := newTestEnv(t)
	e.start(t)
	fi, err := os.Stat(e.socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket mode %v, want socket 0600", fi.Mode())
	}
	c := &decision.Client{Socket: e.socket}
	id := audit.NewUUID()
	resp, err := c.Ask(context.Background(), id, rootWorkload("c1"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Decision.Verdict != policy.Deny || !resp.Audited || resp.Decision.Policy.Name != "first" {
		t.Fatalf("resp = %+v", resp)
	}
	if len(resp.Decision.Violations) != 1 || resp.Decision.Violations[0].Rule != "runAsRoot" {
		t.Fatalf("violations = %+v", resp.Decision.Violations)
	}
	// The same request again (a hook retrying after a lost answer) must
	// not give a second record.
	if _, err := c.Ask(context.Background(), id, rootWorkload("c1")); err != nil {
		t.Fatal(err)
	}
	// An allowed container gets no record.
	ok := rootWorkload("c2")
	ok.User.UID = 1000
	resp, err = c.Ask(context.Background(), audit.NewUUID(), ok)
	if err != nil || resp.Decision.Verdict != policy.Allow {
		t.Fatalf("allowed: %+v %v", resp, err)
	}
	recs := auditLines(t, e.auditLog)
	if len(recs) != 1 || recs[0].UUID != id || recs[0].Container.ID != "c1" || recs[0].Action != audit.ActionBlocked {
		t.Fatalf("audit records = %+v", recs)
	}
	// The Seen field crosses the socket: a workload whose user was not
	// seen is deferred, and since the hook asking is the last judge, a
	// rule nobody judged follows spec.hook.onError (deny): REVIEW F1.
	unseen := rootWorkload("c3")
	unseen.Seen = policy.FieldsAll &^ policy.FieldUser
	resp, err = c.Ask(context.Background(), audit.NewUUID(), unseen)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Decision.Verdict != policy.Deny || !contains(resp.Decision.Deferred, "runAsRoot") ||
		len(resp.Decision.Violations) != 1 || resp.Decision.Violations[0].Rule != policy.RuleUnjudged ||
		!strings.Contains(resp.Decision.Violations[0].Detail, "runAsRoot") {
		t.Fatalf("unseen user: %+v", resp.Decision)
	}
	// The caller's own claim that NRI judged the user is not believed: the
	// old afterNRI/nriJudged fields decode and are ignored.
	nri := rootWorkload("c4")
	nri.Seen = policy.FieldsAll &^ policy.FieldUser
	resp, err = c.Decide(context.Background(), &decision.DecideRequest{ID: audit.NewUUID(), Workload: nri, ContainerID: "c4", AfterNRI: true, NRIJudged: policy.FieldUser})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Decision.Verdict != policy.Deny || resp.AfterNRI || resp.NRIJudged != 0 ||
		len(resp.Decision.Violations) != 1 || resp.Decision.Violations[0].Rule != policy.RuleUnjudged {
		t.Fatalf("user claimed judged by the caller: %+v", resp)
	}
}

// The NRI validator's judgement is remembered per container ID and handed
// to the hook's question once: the service judges exactly the fields the
// validator did not, and the container keeps one record per finding.
func TestHookAfterValidatorJudgesTheRest(t *testing.T) {
	e := newTestEnv(t)
	e.start(t)
	c := &decision.Client{Socket: e.socket}

	// The validator saw a root user and no devices or mounts (as with CDI
	// devices, which NRI shows by name only; hostDevices reads both): root
	// is its finding, recorded by it.
	nri := rootWorkload("ctr-1")
	nri.Seen = policy.FieldsAll &^ (policy.FieldDevices | policy.FieldMounts)
	res := e.svc.Admit(context.Background(), nri, AdmitOptions{Source: audit.SourceNRI, NRIJudged: nri.Seen, RememberJudged: true})
	if res.Decision.Verdict != policy.Deny {
		t.Fatalf("validator: %+v", res.Decision)
	}
	// A refused container is not remembered: it never reaches the hook.
	if n := e.svc.judged.len(); n != 0 {
		t.Fatalf("refused container remembered (%d entries)", n)
	}
	ok := rootWorkload("ctr-2")
	ok.User.UID = 1000
	ok.Seen = policy.FieldsAll &^ (policy.FieldDevices | policy.FieldMounts)
	if res := e.svc.Admit(context.Background(), ok, AdmitOptions{Source: audit.SourceNRI, NRIJudged: ok.Seen, RememberJudged: true}); res.Decision.Verdict != policy.Allow {
		t.Fatalf("validator refused uid 1000: %+v", res.Decision)
	}
	// The hook sees the final config.json, the same container: answered
	// on the validator's judgement.
	hookW := rootWorkload("ctr-2")
	hookW.User.UID = 1000
	resp, err := c.Decide(context.Background(), &decision.DecideRequest{ID: audit.NewUUID(), Workload: hookW, ContainerID: "ctr-2"})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.AfterNRI || resp.NRIJudged != policy.FieldsAll&^(policy.FieldDevices|policy.FieldMounts) || resp.Decision.Verdict != policy.Allow {
		t.Fatalf("hook after validator: %+v %+v", resp, resp.Decision)
	}
	// A rule whose input the validator judged in full is left to it (the
	// user here: the hook's view says root, the validator's record covers
	// the user), while hostDevices, which reads the mounts it did not
	// judge, is judged on the hook's view.
	changed := rootWorkload("ctr-4")
	changed.User.UID = 1000
	changed.Seen = ok.Seen
	e.svc.Admit(context.Background(), changed, AdmitOptions{Source: audit.SourceNRI, NRIJudged: changed.Seen, RememberJudged: true})
	hook4 := rootWorkload("ctr-4")
	hook4.Devices = []policy.Device{{Path: "/dev/later0", Type: "c", Major: 1, Minor: 11}}
	resp, err = c.Decide(context.Background(), &decision.DecideRequest{ID: audit.NewUUID(), Workload: hook4, ContainerID: "ctr-4"})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.AfterNRI || resp.Decision.Verdict != policy.Deny || len(resp.Decision.Violations) != 1 || resp.Decision.Violations[0].Rule != "hostDevices" {
		t.Fatalf("device the validator did not judge: %+v %+v", resp, resp.Decision)
	}
	// Asked once only: a second question for the same ID is judged in full.
	resp, err = c.Decide(context.Background(), &decision.DecideRequest{ID: audit.NewUUID(), Workload: rootWorkload("ctr-2"), ContainerID: "ctr-2"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.AfterNRI || resp.Decision.Verdict != policy.Deny || resp.Decision.Violations[0].Rule != "runAsRoot" {
		t.Fatalf("second question: %+v", resp)
	}
	// A container the validator never saw is judged in full.
	resp, err = c.Decide(context.Background(), &decision.DecideRequest{ID: audit.NewUUID(), Workload: rootWorkload("ctr-3"), ContainerID: "ctr-3"})
	if err != nil || resp.AfterNRI || resp.Decision.Verdict != policy.Deny {
		t.Fatalf("unknown container: %+v %v", resp, err)
	}
}

func TestJudgedCacheBounds(t *testing.T) {
	var c judgedCache
	t0 := time.Unix(1_800_000_000, 0)
	c.remember("a", policy.FieldUser, "rec-a", t0)
	if e, ok := c.take("a", t0.Add(time.Second)); !ok || e.fields != policy.FieldUser || e.auditID != "rec-a" {
		t.Fatalf("take a = %+v %v", e, ok)
	}
	if _, ok := c.take("a", t0.Add(time.Second)); ok {
		t.Fatal("an entry was handed out twice")
	}
	if _, ok := c.take("", t0); ok {
		t.Fatal("empty ID found")
	}
	c.remember("b", policy.FieldUser, "", t0)
	if _, ok := c.take("b", t0.Add(judgedExpiry+time.Second)); ok {
		t.Fatal("expired entry handed out")
	}
	// Over the limit, the oldest go first.
	for i := 0; i < judgedLimit+10; i++ {
		c.remember(fmt.Sprintf("c%d", i), policy.FieldMounts, "", t0.Add(time.Duration(i)*time.Millisecond))
	}
	now := t0.Add(time.Minute)
	if n := c.len(); n != judgedLimit {
		t.Fatalf("%d entries, want %d", n, judgedLimit)
	}
	if _, ok := c.take("c0", now); ok {
		t.Fatal("oldest entry kept over the limit")
	}
	if _, ok := c.take(fmt.Sprintf("c%d", judgedLimit+9), now); !ok {
		t.Fatal("newest entry dropped")
	}
	// Taken entries leave their keys; the order is compacted.
	for i := 0; i < 3*judgedLimit; i++ {
		id := fmt.Sprintf("d%d", i)
		c.remember(id, policy.FieldMounts, "", now)
		c.take(id, now)
	}
	if len(c.order) > 2*judgedLimit+1 {
		t.Fatalf("order grew to %d", len(c.order))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestBadRequestsAnswered(t *testing.T) {
	e := newTestEnv(t)
	e.start(t)
	for _, tc := range []struct{ in, want string }{
		{`{"v":1,"id":"x","seen":1}` + "\n", "no workload"},
		{`{"v":9,"workload":{},"seen":1}` + "\n", "protocol version 9"},
		// Without "seen" every container rule would be deferred and the
		// answer decided on the kernel alone: refused (REVIEW F1).
		{`{"v":1,"id":"x","workload":{"source":"hook","container":{"id":"c"}}}` + "\n", `no "seen"`},
		{`{"v":1,"bogus":true}` + "\n", "unknown field"},
		{"not json\n", "decision socket protocol error"},
	} {
		conn, err := net.Dial("unix", e.socket)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(tc.in)); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		_ = conn.Close()
		if err != nil {
			t.Fatalf("%q: no answer: %v", tc.in, err)
		}
		var resp decision.DecideResponse
		if err := json.Unmarshal([]byte(line), &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Decision != nil || !strings.Contains(resp.Error, tc.want) {
			t.Errorf("%q: answer %s, want error %q", tc.in, line, tc.want)
		}
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	e := newTestEnv(t)
	if err := os.MkdirAll(filepath.Dir(e.socket), 0o755); err != nil {
		t.Fatal(err)
	}
	// A socket left behind by a killed service: bound, nobody listening.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: e.socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	_ = ln.Close()
	if _, err := os.Lstat(e.socket); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	e.start(t)
	if _, err := (&decision.Client{Socket: e.socket}).Ask(context.Background(), "", rootWorkload("c1")); err != nil {
		t.Fatalf("service on a stale socket path: %v", err)
	}
}

func TestLiveSocketIsNotStolen(t *testing.T) {
	e := newTestEnv(t)
	e.start(t)
	second, err := New(WithPolicy(e.policyDir, ""), WithSocket(e.socket), WithStatusFile(""),
		WithAudit(audit.Config{Path: filepath.Join(e.dir, "log2", "audit.log")}, ""), WithLogger(logrus.New()))
	if err != nil {
		t.Fatal(err)
	}
	err = second.Start(context.Background())
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second service on a live socket: %v, want ErrInUse", err)
	}
	if _, err := (&decision.Client{Socket: e.socket}).Ask(context.Background(), "", rootWorkload("c1")); err != nil {
		t.Fatalf("first service lost its socket: %v", err)
	}
}

func TestNotASocketIsLeftAlone(t *testing.T) {
	e := newTestEnv(t)
	if err := os.MkdirAll(filepath.Dir(e.socket), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.socket, "precious", 0o600)
	svc, err := New(WithPolicy(e.policyDir, ""), WithSocket(e.socket), WithStatusFile(""),
		WithAudit(audit.Config{Path: e.auditLog}, ""), WithLogger(logrus.New()))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(e.socket); string(b) != "precious" {
		t.Fatal("a regular file at the socket path was touched")
	}
}

func TestPolicyReload(t *testing.T) {
	e := newTestEnv(t)
	e.start(t)
	main := filepath.Join(e.policyDir, "policy.yaml")

	// Broken: last good stays, the error names file:line, status shows it.
	writeFile(t, main, policyNamed("second")+"  bogusKey: 1\n", 0o644)
	e.svc.checkPolicy()
	if got := e.svc.Policy().Name(); got != "first" {
		t.Fatalf("policy after a broken edit = %q, want first", got)
	}
	st := e.svc.Status()
	if !strings.Contains(st.Policy.Error, "policy.yaml:") || st.Policy.Name != "first" {
		t.Fatalf("status policy = %+v", st.Policy)
	}
	logged := false
	for _, en := range e.logs.AllEntries() {
		if en.Level == logrus.ErrorLevel && strings.Contains(en.Message, "last good policy stays") {
			logged = true
		}
	}
	if !logged {
		t.Fatal("broken policy not logged")
	}
	// Decisions still use the last good policy.
	resp, err := (&decision.Client{Socket: e.socket}).Ask(context.Background(), "", rootWorkload("c1"))
	if err != nil || resp.Decision.Policy.Name != "first" {
		t.Fatalf("decision under broken edit: %+v %v", resp, err)
	}

	// Fixed: reloaded.
	writeFile(t, main, policyNamed("second"), 0o644)
	e.svc.checkPolicy()
	if got := e.svc.Policy().Name(); got != "second" {
		t.Fatalf("policy after fix = %q", got)
	}
	if st := e.svc.Status(); st.Policy.Error != "" {
		t.Fatalf("error kept after a good reload: %q", st.Policy.Error)
	}

	// Writable by others: refused, last good stays.
	writeFile(t, main, policyNamed("third"), 0o666)
	e.svc.checkPolicy()
	if got := e.svc.Policy().Name(); got != "second" {
		t.Fatalf("insecure policy was loaded: %q", got)
	}
	if st := e.svc.Status(); !strings.Contains(st.Policy.Error, "writable") && !strings.Contains(st.Policy.Error, "insecure") {
		t.Fatalf("insecure policy error = %q", st.Policy.Error)
	}

	// A drop-in appearing is a change too.
	writeFile(t, main, policyNamed("second"), 0o644)
	if err := os.MkdirAll(filepath.Join(e.policyDir, "policy.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(e.policyDir, "policy.d", "10-name.yaml"), "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: fourth}\n", 0o644)
	e.svc.checkPolicy()
	if got := e.svc.Policy().Name(); got != "fourth" {
		t.Fatalf("drop-in not picked up: %q (%s)", got, e.svc.Status().Policy.Error)
	}
}

func TestStatusFileAndCleanShutdown(t *testing.T) {
	e := newTestEnv(t)
	e.start(t)
	e.svc.SetHookInjection(HookInjection{Status: "refused", Reason: "reject_oci_hook_adjustment"})
	st, err := ReadStatusFile(e.status)
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != os.Getpid() || st.Policy.Name != "first" || st.Audit == nil || !st.Audit.OK ||
		st.Hook == nil || st.Hook.Status != "refused" || st.Socket != e.socket {
		t.Fatalf("status = %+v", st)
	}
	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{e.socket, e.auditSock, e.status} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after Close: %v", p, err)
		}
	}
	if _, err := ReadStatusFile(e.status); !errors.Is(err, ErrNoStatus) {
		t.Fatalf("ReadStatusFile after stop: %v", err)
	}
}

// TestPeerCredentials connects as uid 65534 to a socket whose mode was
// opened up on purpose: the service must still refuse by peer uid.
func TestPeerCredentials(t *testing.T) {
	if os.Getenv("PATCHGATE_PEER_HELPER") != "" {
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a helper as another uid")
	}
	e := newTestEnv(t)
	e.start(t)
	if err := os.Chmod(e.socket, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(e.socket), 0o755); err != nil {
		t.Fatal(err)
	}
	// The go test binary lives in a 0700 directory; copy it where uid
	// 65534 can run it.
	bin := filepath.Join(e.dir, "helper.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, bin, string(data), 0o755)
	cmd := exec.Command(bin, "-test.run=^TestPeerHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "PATCHGATE_PEER_HELPER="+e.socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "ANSWER peer not allowed") {
		t.Fatalf("helper output:\n%s", out)
	}
	recs := 0
	if _, err := os.Stat(e.auditLog); err == nil {
		recs = len(auditLines(t, e.auditLog))
	}
	if recs != 0 {
		t.Fatalf("a refused peer produced %d audit records", recs)
	}
}

// TestPeerHelper is the uid-65534 side of TestPeerCredentials.
func TestPeerHelper(t *testing.T) {
	sock := os.Getenv("PATCHGATE_PEER_HELPER")
	if sock == "" {
		t.Skip("helper only")
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("dial as uid %d: %v", os.Getuid(), err)
	}
	defer func() { _ = conn.Close() }()
	b, _ := json.Marshal(decision.DecideRequest{Version: decision.ProtocolVersion, Workload: rootWorkload("evil")})
	_, _ = conn.Write(append(b, '\n'))
	var resp decision.DecideResponse
	if err := decision.ReadMessage(bufio.NewReader(conn), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Decision != nil {
		t.Fatalf("a non-root peer got a decision: %+v", resp)
	}
	t.Logf("ANSWER %s", resp.Error)
}

func TestClientRefusesNonRootServer(t *testing.T) {
	// uidAllowed is the check the client applies to the server's peer uid.
	if decision.UIDAllowed(1234, []uint32{0}) || !decision.UIDAllowed(0, nil) || !decision.UIDAllowed(7, []uint32{7}) {
		t.Fatal("uidAllowed")
	}
	_, err := (&decision.Client{Socket: filepath.Join(t.TempDir(), "none.sock")}).Ask(context.Background(), "", rootWorkload("x"))
	if !errors.Is(err, decision.ErrUnreachable) {
		t.Fatalf("missing socket: %v, want decision.ErrUnreachable", err)
	}
	_, err = (&decision.Client{Socket: "relative.sock"}).Ask(context.Background(), "", rootWorkload("x"))
	if !errors.Is(err, decision.ErrUnreachable) {
		t.Fatalf("relative socket: %v", err)
	}
}

// TestDecisionSpanLogged: at debug level every decision socket request
// leaves its span (docs/benchmarks.md, the breakdown): how long the service
// took from the request read to the answer written.
func TestDecisionSpanLogged(t *testing.T) {
	e := newTestEnv(t)
	e.start(t)
	c := &decision.Client{Socket: e.socket}
	ok := rootWorkload("c2")
	ok.User.UID = 1000
	if _, err := c.Ask(context.Background(), audit.NewUUID(), ok); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, en := range e.logs.AllEntries() {
			if en.Message == "decision socket: answered" && en.Data["kind"] == "workload" {
				if ms, isFloat := en.Data["took_ms"].(float64); !isFloat || ms < 0 {
					t.Fatalf("span without took_ms in milliseconds: %v", en.Data)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no span logged for the request")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPolicyReloadSameSizeSameMtime: a rewrite in place that keeps the
// inode, the size and the mtime (cp -p, touch -r, a tool that restores
// times) is a change: the fingerprint holds the ctime, which only the
// kernel sets.
func TestPolicyReloadSameSizeSameMtime(t *testing.T) {
	e := newTestEnv(t)
	e.start(t)
	main := filepath.Join(e.policyDir, "policy.yaml")
	before, err := os.Stat(main)
	if err != nil {
		t.Fatal(err)
	}
	// ctime has the kernel's clock tick as its grain: let one pass.
	time.Sleep(20 * time.Millisecond)
	writeFile(t, main, policyNamed("third"), 0o644) // "first" and "third": same size
	if err := os.Chtimes(main, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(main)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) || !os.SameFile(before, after) {
		t.Fatalf("the rewrite changed more than the content: %v %v, %v %v", before.Size(), before.ModTime(), after.Size(), after.ModTime())
	}
	e.svc.checkPolicy()
	if got := e.svc.Policy().Name(); got != "third" {
		t.Fatalf("policy after a same-size rewrite that kept the mtime = %q, want third", got)
	}
}
