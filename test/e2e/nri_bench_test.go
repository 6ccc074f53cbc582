//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/patchgate/patchgate/test/harness"
)

// BenchmarkContainers50 is the end-to-end figure in docs/benchmarks.md: the
// time for a real containerd to create and start a batch of containers (50,
// or $PATCHGATE_BENCH_CONTAINERS) in one pod, one after another as kubelet
// does, without patchgate and with it (NRI plugin, validator and the
// injected thin hook, which runc runs for every container). Fair on a noisy
// machine: both containerds run side by side and every iteration is one
// round of each, the order alternating, so load drifts hit both alike; it
// reports the median batch of each, their ratio and the overhead in %.
// PATCHGATE_BENCH_FULL_HOOK=1 adds a third containerd whose patchgate
// injects the patchgate binary (`patchgate hook`, the injection before the
// thin hook). make bench runs it:
//
//	go test -tags e2e -run '^$' -bench Containers50 -benchtime 5x ./test/e2e/
func BenchmarkContainers50(b *testing.B) {
	n := 50
	if v := os.Getenv("PATCHGATE_BENCH_CONTAINERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("PATCHGATE_BENCH_CONTAINERS=%q: want a positive number", v)
		}
	}
	if toolsErr != nil {
		harness.SkipOrFail(b, toolsErr)
	}
	pol := map[string]string{"policy.yaml": "examples/policies/baseline.yaml"}
	type variant struct {
		name string
		h    *harness.Containerd
		ds   []time.Duration
	}
	vs := []*variant{
		{name: "without-patchgate", h: harness.StartT(b, harness.Options{Tools: tools})},
		{name: "with-patchgate", h: newPG(b, pgOptions{policy: pol}).h},
	}
	if os.Getenv("PATCHGATE_BENCH_FULL_HOOK") == "1" {
		vs = append(vs, &variant{name: "with-patchgate-full-hook", h: newPG(b, pgOptions{policy: pol, fullHook: true}).h})
	}
	ctx := context.Background()
	batch := func(v *variant, round int) {
		pod := podOn(fmt.Sprintf("bench-%d", round), "bench")
		podID, r := v.h.RunPod(ctx, pod)
		if err := r.Err(); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for j := 0; j < n; j++ {
			if _, r := v.h.RunContainer(ctx, podID, pod, worker(fmt.Sprintf("c%d", j), int64p(1000), false)); r.Err() != nil {
				b.Fatalf("%s: %v", v.name, r.Err())
			}
		}
		v.ds = append(v.ds, time.Since(start))
		v.h.RemovePod(ctx, podID)
	}
	// One unmeasured round each: images and page cache warm.
	for _, v := range vs {
		batch(v, -1)
		v.ds = nil
	}
	// b.Loop: the setup above runs once (with a b.N loop it would run
	// again for the b.N=1 probe).
	for i := 0; b.Loop(); i++ {
		for k := range vs {
			batch(vs[(i+k)%len(vs)], i)
		}
	}
	base := median(vs[0].ds)
	for _, v := range vs {
		m := median(v.ds)
		b.Logf("%-26s median %7.2f s per %d containers (%d rounds: %v)  ratio %.3f  overhead %+.1f %%",
			v.name, m.Seconds(), n, len(v.ds), v.ds, m.Seconds()/base.Seconds(), 100*(m.Seconds()/base.Seconds()-1))
		b.ReportMetric(m.Seconds(), v.name+"-median-s")
	}
	b.ReportMetric(100*(median(vs[1].ds).Seconds()/base.Seconds()-1), "overhead-%")
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkDaemonRSS measures the resident memory of the real `patchgate nri`
// process: idle after connecting, and after judging 1,000 containers sent by
// a real NRI runtime side (pkg/adaptation, as containerd links it) over the
// socket: 1,000 distinct containers, a third of them flagged (audit record)
// and a third refused.
//
//	go test -tags e2e -run '^$' -bench DaemonRSS -benchtime 1x ./test/e2e/
func BenchmarkDaemonRSS(b *testing.B) {
	root, err := harness.FindRepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "patchgate")
	build := exec.Command("go", "build", "-o", bin, "./cmd/patchgate")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("%v\n%s", err, out)
	}
	polDir := filepath.Join(dir, "policy")
	if err := os.Mkdir(polDir, 0o755); err != nil {
		b.Fatal(err)
	}
	pol, err := os.ReadFile(filepath.Join(root, "examples/policies/kernel-aware.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(polDir, "policy.yaml"), pol, 0o644); err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(dir, "nri.sock")
	synced := make(chan struct{}, 1)
	rt, err := adaptation.New("containerd", "v2.4.2",
		func(ctx context.Context, cb adaptation.SyncCB) error {
			_, err := cb(ctx, nil, nil)
			select {
			case synced <- struct{}{}:
			default:
			}
			return err
		},
		func(context.Context, []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) { return nil, nil },
		adaptation.WithSocketPath(sock), adaptation.WithPluginPath(filepath.Join(dir, "plugins")),
		adaptation.WithPluginConfigPath(filepath.Join(dir, "conf.d")))
	if err != nil {
		b.Fatal(err)
	}
	if err := rt.Start(); err != nil {
		b.Fatal(err)
	}
	defer rt.Stop()
	<-synced // the runtime calls its sync function once at start, before any plugin
	cmd := exec.Command(bin, "nri", "--socket="+sock, "--policy="+polDir,
		"--host-root="+filepath.Join(root, "livepatch/testdata/hosts/debian12-enabled"),
		"--hook-path="+bin, "--node-name=bench",
		"--decision-socket="+filepath.Join(dir, "decision.sock"), "--audit-socket="+filepath.Join(dir, "audit.sock"),
		"--audit-log="+filepath.Join(dir, "audit.log"), "--status-file="+filepath.Join(dir, "status.json"),
		"--state-file="+filepath.Join(dir, "state.json"))
	logf, err := os.Create(filepath.Join(dir, "patchgate.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = logf.Close() }()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	select {
	case <-synced:
	case <-time.After(30 * time.Second):
		log, _ := os.ReadFile(logf.Name())
		b.Fatalf("patchgate did not connect:\n%s", log)
	}
	time.Sleep(2 * time.Second) // settle: first kernel reading, policy load
	idle := rssKiB(b, cmd.Process.Pid)

	captures := map[string][2][]byte{}
	for _, c := range []string{"seccomp-unconfined", "default-kubelet", "privileged"} {
		pod, err1 := os.ReadFile(filepath.Join(root, "plugin/testdata/nri", c, "nri-pod.json"))
		ctr, err2 := os.ReadFile(filepath.Join(root, "plugin/testdata/nri", c, "nri-container.json"))
		if err1 != nil || err2 != nil {
			b.Fatal(err1, err2)
		}
		captures[c] = [2][]byte{pod, ctr}
	}
	names := []string{"seccomp-unconfined", "default-kubelet", "privileged"}
	b.ResetTimer()
	for i := 0; i < 1000; i++ {
		c := captures[names[i%3]]
		pod, ctr := &api.PodSandbox{}, &api.Container{}
		if err := protojson.Unmarshal(c[0], pod); err != nil {
			b.Fatal(err)
		}
		if err := protojson.Unmarshal(c[1], ctr); err != nil {
			b.Fatal(err)
		}
		ctr.Id = fmt.Sprintf("%060d%04d", 0, i)
		ctr.Name = fmt.Sprintf("c%d", i)
		_, _ = rt.CreateContainer(context.Background(), &adaptation.CreateContainerRequest{Pod: pod, Container: ctr})
	}
	b.StopTimer()
	after := rssKiB(b, cmd.Process.Pid)
	b.ReportMetric(float64(idle)/1024, "idle-RSS-MiB")
	b.ReportMetric(float64(after)/1024, "RSS-after-1000-MiB")
}

func rssKiB(b *testing.B, pid int) int {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
