// Command demo is `make demo`: it starts a private containerd v2.4.2 with
// patchgate as its NRI plugin under examples/policies/kernel-aware.yaml and
// tells the story step by step against the real runtime. The kernel state
// comes from a fixture host tree (livepatch/testdata/hosts/debian12-enabled),
// so the demo can take a live patch away and apply it again with a recorded
// provider tool. Everything runs under one private directory that is removed
// at the end, also on failure or Ctrl-C.
//
//	sudo make demo        (scripts/demo.sh builds patchgate and the tools first)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/patchgate/patchgate/internal/fstree"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/patchgate/patchgate/test/harness"
)

var (
	bin     = flag.String("patchgate", "bin/patchgate", "the patchgate binary")
	verbose = flag.Bool("v", false, "show containerd's and the harness's progress")
)

func main() {
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}

type demo struct {
	out      io.Writer
	h        *harness.Containerd
	bin      string
	dir      string
	host     string
	auditLog string
	state    string
	status   string
	policy   string
	pg       *harness.Process
	step     int
}

func run(ctx context.Context, out io.Writer) (err error) {
	root, err := harness.FindRepoRoot()
	if err != nil {
		return err
	}
	pgBin, err := filepath.Abs(*bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(pgBin); err != nil {
		return fmt.Errorf("%s: %w (run `make demo`, which builds it)", pgBin, err)
	}
	var hlog io.Writer = io.Discard
	if *verbose {
		hlog = os.Stderr
	}
	fmt.Fprintln(out, "patchgate demo: a private containerd v2.4.2 with patchgate as its NRI plugin")
	fmt.Fprintln(out, "(kernel state from the fixture host tree livepatch/testdata/hosts/debian12-enabled)")
	tools, err := harness.EnsureTools(ctx, harness.ToolsOptions{Log: hlog})
	if err != nil {
		return err
	}
	h, err := harness.Start(ctx, harness.Options{Tools: tools, Log: hlog})
	if err != nil {
		return err
	}
	d := &demo{out: out, h: h, bin: pgBin, dir: filepath.Join(h.Dir, "patchgate")}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if d.pg != nil {
			_ = d.pg.Stop(10 * time.Second)
		}
		if cerr := h.Cleanup(cctx); cerr != nil && err == nil {
			err = cerr
		}
		if left := h.Leftovers(); len(left) > 0 && err == nil {
			err = fmt.Errorf("left behind: %v", left)
		}
		if err == nil {
			fmt.Fprintln(out, "\nCleaned up: pods removed, containerd and patchgate stopped, private directory deleted.")
		}
	}()
	if err := d.setup(root); err != nil {
		return err
	}
	return d.story(ctx)
}

func (d *demo) setup(root string) error {
	d.host = filepath.Join(d.dir, "host")
	d.policy = filepath.Join(d.dir, "policy")
	d.auditLog = filepath.Join(d.dir, "audit", "audit.log")
	d.state = filepath.Join(d.dir, "run", "kernel-state.json")
	d.status = filepath.Join(d.dir, "run", "status.json")
	for _, p := range []string{d.policy, filepath.Join(d.dir, "run"), filepath.Join(d.dir, "audit"), filepath.Join(d.dir, "remedy")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
	}
	hosts := filepath.Join(root, "livepatch", "testdata", "hosts")
	if err := os.CopyFS(d.host, os.DirFS(filepath.Join(hosts, "debian12-enabled"))); err != nil {
		return err
	}
	// The recorded provider tool and the captured patch it "loads".
	if err := os.CopyFS(filepath.Join(d.dir, "remedy", "livepatch_sample"),
		os.DirFS(filepath.Join(hosts, "debian12-enabled", "sys", "kernel", "livepatch", "livepatch_sample"))); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.dir, "remedy", "delay"), []byte("1\n"), 0o644); err != nil {
		return err
	}
	tool, err := os.ReadFile(filepath.Join(root, "test", "e2e", "testdata", "pg-apply-livepatch"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(d.host, "usr", "sbin"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.host, "usr", "sbin", "pg-apply-livepatch"), tool, 0o755); err != nil {
		return err
	}
	if err := fstree.RootOnly(d.dir); err != nil {
		return err
	}
	pol, err := os.ReadFile(filepath.Join(root, "examples", "policies", "kernel-aware.yaml"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.policy, "policy.yaml"), pol, 0o644); err != nil {
		return err
	}
	// A drop-in names the recorded provider tool as the remediation command,
	// which `patchgate check --apply` runs.
	dropIn := fmt.Sprintf(`apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: kernel-aware}
spec:
  remediation:
    command: [/usr/sbin/pg-apply-livepatch, %s, %s]
    timeout: 1m
`, filepath.Join(d.dir, "remedy"), d.host)
	if err := os.MkdirAll(filepath.Join(d.policy, "policy.d"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d.policy, "policy.d", "50-demo-remediation.yaml"), []byte(dropIn), 0o644)
}

func (d *demo) story(ctx context.Context) error {
	d.header("Start patchgate as containerd's NRI plugin")
	args := []string{d.bin, "nri",
		"--socket=" + d.h.NRISocket, "--policy=" + d.policy, "--host-root=" + d.host,
		"--hook-path=" + d.bin, "--node-name=demo-node",
		"--decision-socket=" + filepath.Join(d.dir, "run", "decision.sock"),
		"--audit-socket=" + filepath.Join(d.dir, "run", "audit.sock"),
		"--audit-log=" + d.auditLog, "--status-file=" + d.status, "--state-file=" + d.state,
		"--kernel-interval=250ms", "--poll-interval=250ms"}
	d.cmd(append([]string{"patchgate"}, args[1:]...)...)
	pg, err := d.h.StartProcess("patchgate", args)
	if err != nil {
		return err
	}
	d.pg = pg
	if err := d.waitLog(ctx, "synchronized with the runtime"); err != nil {
		return err
	}
	if err := d.waitKernel(ctx, true); err != nil {
		return err
	}
	d.say("patchgate is connected; the policy is kernel-aware: root is tolerated (flagged) while the kernel")
	d.say("has the required live patch livepatch_sample, and refused while it does not.")

	pod := harness.PodConfig{Name: "shop", Namespace: "demo"}
	podID, r := d.h.RunPod(ctx, pod)
	if err := r.Err(); err != nil {
		return err
	}

	d.header("A compliant container (uid 1000, RuntimeDefault seccomp) is admitted")
	if err := d.create(ctx, podID, pod, container("web", 1000, false), true); err != nil {
		return err
	}

	d.header("A privileged container is refused")
	ppod := harness.PodConfig{Name: "debug", Namespace: "demo", Privileged: true}
	ppodID, r := d.h.RunPod(ctx, ppod)
	if err := r.Err(); err != nil {
		return err
	}
	priv := container("debug-shell", -1, true)
	priv.Privileged = true
	sc := priv.Raw["linux"].(map[string]any)["security_context"].(map[string]any)
	sc["privileged"] = true // as kubelet sends it: no masked paths
	delete(sc, "masked_paths")
	delete(sc, "readonly_paths")
	if err := d.create(ctx, ppodID, ppod, priv, false); err != nil {
		return err
	}

	d.header("A root container is admitted but flagged (the kernel is fully patched)")
	if err := d.create(ctx, podID, pod, container("legacy", -1, false), true); err != nil {
		return err
	}

	d.header("The kernel falls behind: the live patch is no longer in force")
	d.say("(the fixture host loses /sys/kernel/livepatch/livepatch_sample)")
	if err := os.RemoveAll(filepath.Join(d.host, "sys", "kernel", "livepatch", "livepatch_sample")); err != nil {
		return err
	}
	if err := d.waitKernel(ctx, false); err != nil {
		return err
	}
	if err := d.check(ctx, false); err != nil {
		return err
	}
	d.say("Now the same root container is refused:")
	if err := d.create(ctx, podID, pod, container("legacy-2", -1, false), false); err != nil {
		return err
	}

	d.header("A live patch is applied (recorded provider tool), and root is admitted again")
	if err := d.check(ctx, true); err != nil {
		return err
	}
	if err := d.waitKernel(ctx, true); err != nil {
		return err
	}
	if err := d.create(ctx, podID, pod, container("legacy-3", -1, false), true); err != nil {
		return err
	}

	d.header("What the security team sees: patchgate audit")
	d.cmd("patchgate", "audit", "--path", d.auditLog)
	out, err := exec.CommandContext(ctx, d.bin, "audit", "--path", d.auditLog).CombinedOutput()
	d.indent(string(out))
	if err != nil {
		return fmt.Errorf("patchgate audit: %v", err)
	}
	d.say("One audit line, as written (JSON, one object per line):")
	if b, err := os.ReadFile(d.auditLog); err == nil {
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		d.indent(lines[len(lines)-2])
	}
	return nil
}

// container is a busybox container that sleeps, with the security context
// kubelet would send (its default masked and read-only paths, from
// k8s.io/kubernetes pkg/securitycontext/util.go); uid -1 is root.
func container(name string, uid int64, unconfined bool) harness.ContainerConfig {
	sc := map[string]any{
		"masked_paths": []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
			"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"},
		"readonly_paths": []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
	}
	if uid >= 0 {
		sc["run_as_user"] = map[string]any{"value": uid}
	}
	if !unconfined {
		sc["seccomp"] = map[string]any{"profile_type": 0}
	}
	return harness.ContainerConfig{Name: name, Command: []string{"sleep", "3600"},
		Raw: map[string]any{"linux": map[string]any{"security_context": sc}}}
}

// create creates and starts a container and shows what the user sees.
func (d *demo) create(ctx context.Context, podID string, pod harness.PodConfig, c harness.ContainerConfig, wantAdmitted bool) error {
	desc := "uid 0"
	if sc, ok := c.Raw["linux"].(map[string]any)["security_context"].(map[string]any); ok {
		if u, ok := sc["run_as_user"].(map[string]any); ok {
			desc = fmt.Sprintf("uid %v", u["value"])
		}
	}
	if c.Privileged {
		desc += ", privileged"
	}
	d.cmd("crictl", "create", "&&", "crictl", "start", fmt.Sprintf("(%s/%s: %s)", pod.Namespace, c.Name, desc))
	id, r := d.h.RunContainer(ctx, podID, pod, c)
	if r.ExitCode != 0 {
		msg := r.ErrorMessage()
		for _, from := range []string{"failed to get NRI adjustment", "error running hook"} {
			if i := strings.Index(msg, from); i >= 0 {
				msg = "... " + msg[i:]
				break
			}
		}
		d.say("REFUSED: " + msg)
		if wantAdmitted {
			return fmt.Errorf("%s was refused", c.Name)
		}
		return nil
	}
	if !wantAdmitted {
		return fmt.Errorf("%s was admitted", c.Name)
	}
	st, r := d.h.Inspect(ctx, id)
	if err := r.Err(); err != nil {
		return err
	}
	spec, err := st.Spec()
	if err != nil {
		return err
	}
	if spec.Annotations["patchgate.dev/flagged"] == "true" {
		d.say(fmt.Sprintf("ADMITTED, FLAGGED: %s, annotations patchgate.dev/flagged=true patchgate.dev/rules=%s",
			st.Status.State, spec.Annotations["patchgate.dev/rules"]))
	} else {
		d.say("ADMITTED: " + st.Status.State)
	}
	return nil
}

// check runs `patchgate check` (with --apply: run the remediation).
func (d *demo) check(ctx context.Context, apply bool) error {
	args := []string{"check", "--policy", d.policy, "--host-root", d.host, "--status-file", d.status, "-q"}
	if apply {
		args = append(args, "--apply")
	}
	d.cmd(append([]string{"patchgate"}, args...)...)
	out, err := exec.CommandContext(ctx, d.bin, args...).CombinedOutput()
	d.indent(string(out))
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return err
	}
	return nil
}

func (d *demo) waitLog(ctx context.Context, s string) error {
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(d.pg.Log(), s) {
		select {
		case <-d.pg.Exited():
			return fmt.Errorf("patchgate exited: %v\n%s", d.pg.ExitErr(), d.pg.Log())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("patchgate did not connect:\n%s", d.pg.Log())
		}
	}
	return nil
}

// waitKernel waits until patchgate's kernel state shows the patch in force
// (or not).
func (d *demo) waitKernel(ctx context.Context, patched bool) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		var k struct {
			Patches []struct {
				Name       string
				Enabled    bool
				Transition bool
			}
		}
		if b, err := os.ReadFile(d.state); err == nil && json.Unmarshal(b, &k) == nil {
			in := false
			for _, p := range k.Patches {
				in = in || (p.Name == "livepatch_sample" && p.Enabled && !p.Transition)
			}
			if in == patched {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kernel state never showed patched=%v", patched)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *demo) header(s string) {
	d.step++
	fmt.Fprintf(d.out, "\n== %d. %s\n", d.step, s)
}

func (d *demo) cmd(args ...string) { fmt.Fprintf(d.out, "   $ %s\n", strings.Join(args, " ")) }

func (d *demo) say(s string) { fmt.Fprintf(d.out, "   %s\n", s) }

func (d *demo) indent(s string) {
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		fmt.Fprintf(d.out, "     %s\n", l)
	}
}
