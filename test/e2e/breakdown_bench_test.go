//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/test/harness"
)

// BenchmarkStartBreakdown is the breakdown table in docs/benchmarks.md
// (section 2b): where a container's create and start time goes on a real
// containerd 2.4.2, without patchgate and with it, in the same run. Three
// containerds at --log-level debug run side by side: without patchgate,
// with it (NRI plugin, validator, the injected thin hook), and without it
// but with /bin/true as a createRuntime hook in the base spec (runc's own
// cost of running any hook). Each turn creates and starts one container on
// each, the order rotating, $PATCHGATE_BENCH_CONTAINERS (default 10) turns
// per b.Loop iteration. Each phase is read from containerd's own log
// timestamps for that container (CreateContainer in, the CDI step that
// ends the spec generation, CreateContainer out, StartContainer in,
// "creating task", "connecting to shim", StartContainer out), next to the
// crictl calls' wall time and the service's spans ("decision socket:
// answered", took_ms). It reports the median of each phase per variant and
// the paired differences (median over the turns of one variant minus the
// other). $PATCHGATE_BENCH_LOG_DIR keeps the logs.
//
//	go test -tags e2e -run '^$' -bench '^BenchmarkStartBreakdown$' -benchtime 2x ./test/e2e/
func BenchmarkStartBreakdown(b *testing.B) {
	n := 10
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
		pod  string
		cfg  harness.PodConfig
		ids  []string
		wall map[string][2]time.Duration // crictl create, crictl start
		pg   *pg
	}
	vs := []*variant{
		{name: "without-patchgate", h: harness.StartT(b, harness.Options{Tools: tools, LogLevel: "debug"})},
	}
	p := newPG(b, pgOptions{policy: pol, logLevel: "debug"})
	vs = append(vs, &variant{name: "with-patchgate", h: p.h, pg: p})
	ctx := context.Background()
	// A third containerd without patchgate whose base spec runs /bin/true
	// as a createRuntime hook: runc's cost of any hook, in the same run.
	th := harness.StartT(b, harness.Options{Tools: tools, LogLevel: "debug"})
	trueHookSpec(b, th)
	vs = append(vs, &variant{name: "true-hook", h: th})
	one := func(v *variant, name string) string {
		t0 := time.Now()
		id, r := v.h.CreateContainer(ctx, v.pod, v.cfg, worker(name, int64p(1000), false))
		if r.Err() != nil {
			b.Fatalf("%s: %v", v.name, r.Err())
		}
		t1 := time.Now()
		if r := v.h.StartContainer(ctx, id); r.Err() != nil {
			b.Fatalf("%s: %v", v.name, r.Err())
		}
		v.wall[id] = [2]time.Duration{t1.Sub(t0), time.Since(t1)}
		return id
	}
	for _, v := range vs {
		v.wall = map[string][2]time.Duration{}
		v.cfg = podOn("breakdown", "bench")
		var r harness.Result
		if v.pod, r = v.h.RunPod(ctx, v.cfg); r.Err() != nil {
			b.Fatal(r.Err())
		}
		one(v, "warm") // image and page cache warm, not counted
	}
	k := 0
	for b.Loop() {
		for j := 0; j < n; j++ {
			for i := range vs {
				v := vs[(k+i)%len(vs)]
				v.ids = append(v.ids, one(v, fmt.Sprintf("c%d", k)))
			}
			k++
		}
	}
	b.StopTimer()
	phases := []string{"cri-create", "create-spec", "create-nri-store", "create-to-start", "start-to-task", "task-to-shim", "shim-to-started", "crictl-create", "crictl-start", "service-span"}
	med := map[string]map[string]time.Duration{}
	all := map[string]map[string][]time.Duration{}
	for _, v := range vs {
		if dir := os.Getenv("PATCHGATE_BENCH_LOG_DIR"); dir != "" {
			_ = os.WriteFile(filepath.Join(dir, v.name+".containerd.log"), []byte(v.h.Log()), 0o644)
		}
		ts, err := readCRITimes(v.h.Log())
		if err != nil {
			b.Fatal(err)
		}
		spans := map[string]time.Duration{}
		if v.pg != nil {
			if dir := os.Getenv("PATCHGATE_BENCH_LOG_DIR"); dir != "" {
				_ = os.WriteFile(filepath.Join(dir, v.name+".patchgate.log"), []byte(v.pg.proc.Log()), 0o644)
			}
			if spans, err = readSpans(v.pg.proc.Log()); err != nil {
				b.Fatal(err)
			}
		}
		per := map[string][]time.Duration{}
		for _, id := range v.ids {
			t, ok := ts[id]
			if !ok || !t.complete() {
				b.Fatalf("%s: container %s: not every phase in containerd's log: %+v", v.name, id, t)
			}
			per["cri-create"] = append(per["cri-create"], t.createOut.Sub(t.createIn))
			// The spec generated (the CDI step is the last spec option before
			// containerd's NRI adjustment), then NRI (CreateContainer,
			// ValidateContainerAdjustment, PostCreateContainer) and the
			// container record.
			per["create-spec"] = append(per["create-spec"], t.cdi.Sub(t.createIn))
			per["create-nri-store"] = append(per["create-nri-store"], t.createOut.Sub(t.cdi))
			per["create-to-start"] = append(per["create-to-start"], t.startIn.Sub(t.createOut))
			per["start-to-task"] = append(per["start-to-task"], t.taskCreating.Sub(t.startIn))
			per["task-to-shim"] = append(per["task-to-shim"], t.shimConnect.Sub(t.taskCreating))
			// runc create (with its createRuntime hooks), runc start, the shim.
			per["shim-to-started"] = append(per["shim-to-started"], t.startOut.Sub(t.shimConnect))
			per["service-span"] = append(per["service-span"], spans[id])
			per["crictl-create"] = append(per["crictl-create"], v.wall[id][0])
			per["crictl-start"] = append(per["crictl-start"], v.wall[id][1])
		}
		all[v.name] = per
		med[v.name] = map[string]time.Duration{}
		for _, p := range phases {
			med[v.name][p] = median(per[p])
		}
	}
	b.Logf("%d containers per variant, medians (ms)", len(vs[0].ids))
	// paired: the median of the differences between the containers of
	// one round (created one after the other), less moved by load drifts
	// than the difference of the medians.
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	paired := func(p string, x, y *variant) time.Duration {
		var pairs []time.Duration
		for i := range all[x.name][p] {
			pairs = append(pairs, all[x.name][p][i]-all[y.name][p][i])
		}
		return median(pairs)
	}
	b.Logf("%-16s %10s %10s %10s %12s %12s %12s", "phase", "without", "with-pg", "true-hook", "pg-without", "true-without", "pg-true")
	for _, p := range phases {
		pw, tw, pt := paired(p, vs[1], vs[0]), paired(p, vs[2], vs[0]), paired(p, vs[1], vs[2])
		b.Logf("%-16s %10.2f %10.2f %10.2f %+12.2f %+12.2f %+12.2f", p,
			ms(med[vs[0].name][p]), ms(med[vs[1].name][p]), ms(med[vs[2].name][p]), ms(pw), ms(tw), ms(pt))
		b.ReportMetric(ms(pw), p+"-paired-ms")
	}
}

// criTimes are one container's timestamps in containerd's log.
type criTimes struct {
	createIn, cdi, createOut, startIn, taskCreating, shimConnect, startOut time.Time
}

func (t criTimes) complete() bool {
	for _, x := range []time.Time{t.createIn, t.cdi, t.createOut, t.startIn, t.taskCreating, t.shimConnect, t.startOut} {
		if x.IsZero() {
			return false
		}
	}
	return true
}

// The lines of containerd 2.4.2 (logrus text format) that bound the phases.
var (
	logTime     = regexp.MustCompile(`^time="([^"]+)"`)
	createIn    = regexp.MustCompile(`msg="CreateContainer within sandbox \\"[0-9a-f]+\\" for container name:\\"([^\\]+)\\""`)
	createOut   = regexp.MustCompile(`msg="CreateContainer within sandbox \\"[0-9a-f]+\\" for name:\\"([^\\]+)\\" returns container id \\"([0-9a-f]{64})\\""`)
	cdiLine     = regexp.MustCompile(`msg="Container ([0-9a-f]{64}): CDI devices from CRI Config.CDIDevices`)
	startIn     = regexp.MustCompile(`msg="StartContainer for \\"([0-9a-f]{64})\\""$`)
	startOut    = regexp.MustCompile(`msg="StartContainer for \\"([0-9a-f]{64})\\" returns successfully"`)
	taskCreate  = regexp.MustCompile(`msg="creating task" id=([0-9a-f]{64})`)
	shimConnect = regexp.MustCompile(`msg="connecting to shim ([0-9a-f]{64})"`)
)

// readCRITimes reads containerd's log into each container's timestamps.
// The create-in line names the container, not its ID: it is matched to the
// create-out line of the same name.
func readCRITimes(log string) (map[string]*criTimes, error) {
	out := map[string]*criTimes{}
	get := func(id string) *criTimes {
		if out[id] == nil {
			out[id] = &criTimes{}
		}
		return out[id]
	}
	pendingCreate := map[string]time.Time{}
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		m := logTime.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			return nil, fmt.Errorf("containerd log time %q: %v", m[1], err)
		}
		if sm := createIn.FindStringSubmatch(line); sm != nil {
			pendingCreate[sm[1]] = ts
		} else if sm := createOut.FindStringSubmatch(line); sm != nil {
			t := get(sm[2])
			t.createIn, t.createOut = pendingCreate[sm[1]], ts
		} else if sm := cdiLine.FindStringSubmatch(line); sm != nil {
			get(sm[1]).cdi = ts
		} else if sm := startOut.FindStringSubmatch(line); sm != nil {
			get(sm[1]).startOut = ts
		} else if sm := startIn.FindStringSubmatch(line); sm != nil {
			get(sm[1]).startIn = ts
		} else if sm := taskCreate.FindStringSubmatch(line); sm != nil {
			get(sm[1]).taskCreating = ts
		} else if sm := shimConnect.FindStringSubmatch(line); sm != nil {
			get(sm[1]).shimConnect = ts
		}
	}
	return out, sc.Err()
}

// readSpans reads the service's spans (took_ms of "decision socket:
// answered", debug level) per container from patchgate's JSON log.
func readSpans(log string) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `"decision socket: answered"`) {
			continue
		}
		var e struct {
			ID   string  `json:"container_id"`
			Took float64 `json:"took_ms"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return nil, fmt.Errorf("patchgate log: %v", err)
		}
		out[e.ID] += time.Duration(e.Took * float64(time.Millisecond))
	}
	return out, nil
}

// trueHookSpec restarts h with a base runtime spec that is containerd's
// default (`ctr oci spec`) plus a createRuntime hook /bin/true.
func trueHookSpec(b *testing.B, h *harness.Containerd) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	def := h.Ctr(ctx, "oci", "spec")
	if err := def.Err(); err != nil {
		b.Fatalf("ctr oci spec: %v", err)
	}
	var spec map[string]any
	if err := json.Unmarshal([]byte(def.Stdout), &spec); err != nil {
		b.Fatalf("ctr oci spec: %v", err)
	}
	spec["hooks"] = map[string]any{"createRuntime": []any{map[string]any{"path": "/bin/true", "args": []string{"true"}}}}
	data, err := json.Marshal(spec)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(h.Dir, "true-hook-spec.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := h.Restart(ctx, func(c *harness.Config) { c.BaseRuntimeSpec = path }); err != nil {
		b.Fatal(err)
	}
}
