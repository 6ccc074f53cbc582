package service

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/patchgate/patchgate/hook/ocistate"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service/decision"
	"github.com/patchgate/patchgate/service/decision/wire"
)

// countingJudge is a BundleJudge that builds rootWorkload for any bundle
// and counts how often it was asked: the peer checks come before any read.
type countingJudge struct{ calls atomic.Int32 }

func (j *countingJudge) BuildWorkload(st *ocistate.State, _, _ string) (*policy.Workload, error) {
	j.calls.Add(1)
	return rootWorkload(st.ID), nil
}

func (j *countingJudge) Outcome(resp *decision.DecideResponse, _ *policy.Workload) (int, string) {
	if resp.Decision != nil && resp.Decision.Verdict == policy.Deny {
		return 1, "blocked"
	}
	return 0, ""
}

// TestBundlePeerChecks: the service reads a bundle, as root, only for a
// root hook in its own mount and pid namespaces. A peer the socket lets in
// (an allowed uid) but that is not root, or a root peer in another mount
// or pid namespace (where the bundle path, mount sources and /proc/<pid>
// name other things), gets a fallback: nothing is read for it, nothing is
// decided, and no audit record is written. Real processes: the test binary
// re-run as uid 65534 and in fresh namespaces.
func TestBundlePeerChecks(t *testing.T) {
	if os.Getenv("PATCHGATE_BUNDLE_HELPER") != "" {
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run helpers as another uid and in other namespaces")
	}
	e := newTestEnv(t)
	judge := &countingJudge{}
	e.start(t, WithBundleJudge(judge), WithAllowedUIDs(65534))
	for _, p := range []string{e.socket, filepath.Dir(e.socket)} {
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(e.dir, "helper.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, bin, string(data), 0o755)
	for _, tc := range []struct {
		name  string
		attr  *syscall.SysProcAttr
		want  string // in the fallback; "" for a decision
		calls int32
	}{
		{"allowed non-root uid", &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}, "runs as uid 65534, not root", 0},
		{"root in another mount namespace", &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}, "another mount namespace", 0},
		{"root in another pid namespace", &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}, "another pid namespace", 0},
		{"root here", &syscall.SysProcAttr{}, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := judge.calls.Load()
			cmd := exec.Command(bin, "-test.run=^TestBundlePeerHelper$", "-test.v")
			cmd.Env = append(os.Environ(), "PATCHGATE_BUNDLE_HELPER="+e.socket)
			cmd.SysProcAttr = tc.attr
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			var resp wire.BundleResponse
			i := strings.Index(string(out), "ANSWER ")
			if i < 0 {
				t.Fatalf("helper output:\n%s", out)
			}
			line, _, _ := strings.Cut(string(out[i+len("ANSWER "):]), "\n")
			if err := json.Unmarshal([]byte(line), &resp); err != nil {
				t.Fatalf("helper answer %q: %v", line, err)
			}
			if tc.want == "" {
				if resp.Fallback != "" || resp.Exit != 1 {
					t.Fatalf("root peer here: %+v, want a refusal by the service", resp)
				}
			} else if !strings.Contains(resp.Fallback, tc.want) || resp.Exit != 0 || resp.Message != "" {
				t.Fatalf("answer %+v, want only a fallback saying %q", resp, tc.want)
			}
			if got := judge.calls.Load() - before; got != tc.calls {
				t.Fatalf("the service read the bundle %d times, want %d", got, tc.calls)
			}
		})
	}
	// One record: the root peer's, in the service's own place.
	if recs := auditLines(t, e.auditLog); len(recs) != 1 || recs[0].Container.ID != "peer-helper" {
		t.Fatalf("audit records %+v, want the one of the root peer here", recs)
	}
}

// TestBundlePeerHelper is the helper side of TestBundlePeerChecks: it asks
// for a root container's bundle as the thin hook does.
func TestBundlePeerHelper(t *testing.T) {
	sock := os.Getenv("PATCHGATE_BUNDLE_HELPER")
	if sock == "" {
		t.Skip("helper only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := wire.AskBundle(ctx, sock, &wire.BundleRequest{
		ID: "0c0ffee0-0000-4000-8000-000000000001", ContainerID: "peer-helper", Bundle: "/run/somebody/else/bundle",
		Pid: 1, OCIVersion: "1.2.0", Status: "created", IdentityFrom: "none", HostRoot: "/",
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(resp)
	t.Logf("ANSWER %s", b)
}
