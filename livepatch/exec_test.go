package livepatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/policy"
)

func TestToolTimeoutKillsAndIsUnknown(t *testing.T) {
	root := copyTree(t, "ubuntu20-kernelcare")
	// A kcarectl that hangs, with a child that would outlive a plain kill.
	// (The timeout leaves a loaded machine time to start the script and
	// write the child's pid.)
	hang := "#!/bin/sh\nsleep 60 &\necho $! >\"$(dirname \"$0\")/../../bgpid\"\nsleep 60\n"
	if err := os.WriteFile(filepath.Join(root, "usr/bin/kcarectl"), []byte(hang), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(WithHostRoot(root), WithToolTimeout(1500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	k := r.Read(context.Background())
	var parts []string
	for _, u := range k.Unknown {
		if !strings.Contains(u.Reason, "timed out after 1.5s") {
			t.Errorf("unknown %+v: want a timeout", u)
		}
		parts = append(parts, u.Part)
	}
	// /proc/kcare/cvelist is a file, but without --info nothing says the
	// patchset is applied, so its CVEs are unknown too (REVIEW B5).
	if strings.Join(parts, ",") != "patches,version,cves,updates" {
		t.Errorf("unknown parts = %v", parts)
	}
	if len(k.Patches) != 0 || len(k.FixedCVEs) != 0 {
		t.Errorf("patches %+v cves %v", k.Patches, k.FixedCVEs)
	}
	// The whole process group was killed, the background child too.
	b, err := os.ReadFile(filepath.Join(root, "bgpid"))
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break // gone, or a zombie waiting for its new parent
		}
		if time.Now().After(deadline) {
			t.Fatalf("background child %s of the timed-out tool still runs: %s", pid, stat)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestToolLookupRules(t *testing.T) {
	root := copyTree(t, "rhel8-kpatch")
	env := &Env{HostRoot: root}
	host, local, err := env.LookTool("kpatch")
	if err != nil || host != "/usr/sbin/kpatch" || local != filepath.Join(root, "usr/sbin/kpatch") {
		t.Fatalf("LookTool = %q %q %v", host, local, err)
	}
	// Writable by others: refused, and the provider's part is unknown.
	if err := os.Chmod(local, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.LookTool("kpatch"); !errors.Is(err, ErrInsecureTool) {
		t.Errorf("0777 tool: %v", err)
	}
	k := readHostRoot(t, root)
	if len(k.Unknown) == 0 || !strings.Contains(k.Unknown[0].Reason, "/usr/sbin/kpatch is writable by group and others") {
		t.Errorf("insecure tool not reported: %+v", k.Unknown)
	}
	// Not executable: not a tool.
	if err := os.Chmod(local, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.LookTool("kpatch"); !errors.Is(err, ErrToolNotFound) {
		t.Errorf("0644 tool: %v", err)
	}
	// Relative override: refused.
	env.Tools = map[string]string{"kpatch": "usr/sbin/kpatch"}
	if _, _, err := env.LookTool("kpatch"); err == nil {
		t.Error("relative override accepted")
	}
	if _, err := NewReader(WithTools(map[string]string{"kpatch": "kpatch"})); !errors.Is(err, ErrOption) {
		t.Errorf("WithTools relative: %v", err)
	}
}

func TestToolOutputLimit(t *testing.T) {
	root := copyTree(t, "rhel8-kpatch")
	// 5 MiB of output: more than a provider ever prints.
	flood := "#!/bin/sh\nhead -c 5242880 /dev/zero | tr '\\000' x\n"
	if err := os.WriteFile(filepath.Join(root, "usr/sbin/kpatch"), []byte(flood), 0o755); err != nil {
		t.Fatal(err)
	}
	env := &Env{HostRoot: root}
	_, err := env.Run(context.Background(), "kpatch", "list")
	if !errors.Is(err, ErrToolFailed) || !strings.Contains(err.Error(), "bytes of output") {
		t.Errorf("flood: %v", err)
	}
}

func readHostRoot(t *testing.T, root string) policy.KernelState {
	t.Helper()
	r, err := NewReader(WithHostRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	return r.Read(context.Background())
}
