//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"

	"github.com/patchgate/patchgate/audit"
)

// laterPlugin is a second, real NRI plugin ordered after patchgate (index 90
// > 50): what it adds, patchgate's CreateContainer never sees. It gives the
// container named "kmsg" the host's /dev/kmsg (c 1:11) under another name,
// and the one named "etc" a read-write bind of the host's /etc.
type laterPlugin struct{}

func (laterPlugin) CreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	adj := &api.ContainerAdjustment{}
	switch c.GetName() {
	case "kmsg":
		adj.AddDevice(&api.LinuxDevice{Path: "/dev/later0", Type: "c", Major: 1, Minor: 11,
			FileMode: &api.OptionalFileMode{Value: 0o600}})
	case "etc":
		adj.AddMount(&api.Mount{Source: "/etc", Destination: "/hostetc", Type: "bind", Options: []string{"rbind", "rw"}})
	}
	return adj, nil, nil
}

var _ stub.CreateContainerInterface = laterPlugin{}

// TestNRIAdjustmentsByALaterPlugin: a device or mount another NRI plugin
// adds after patchgate is refused (the validator judges the container as it
// will run), and a clean container runs with the hook asking the service,
// which answers on the validator's judgement of that very container.
func TestNRIAdjustmentsByALaterPlugin(t *testing.T) {
	p := newPG(t, pgOptions{policy: map[string]string{"policy.yaml": "examples/policies/baseline.yaml"}})
	ctx := opCtx(t)
	s, err := stub.New(laterPlugin{}, stub.WithPluginName("later"), stub.WithPluginIdx("90"), stub.WithSocketPath(p.h.NRISocket))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatalf("second plugin could not connect: %v", err)
	}
	t.Cleanup(s.Stop)
	time.Sleep(200 * time.Millisecond) // containerd registers it after its Synchronize

	pod := podOn("later", "e2e")
	podID := p.mustRunPod(ctx, pod)

	id, r := p.h.CreateContainer(ctx, podID, pod, worker("kmsg", int64p(1000), false))
	if r.ExitCode == 0 {
		p.logSpec(ctx, id)
	}
	expectRefused(t, r, `validator "50-patchgate" rejected container adjustment`, "patchgate: denied [hostDevices]", "c 1:11")

	// NRI cannot resolve a host path (symlinks) the way the runtime will,
	// so the validator leaves mounts to the hook; the service tells the
	// hook so, and the hook refuses the bind the later plugin added, at
	// start (runc create runs the createRuntime hook).
	_, r = p.h.RunContainer(ctx, podID, pod, worker("etc", int64p(1000), false))
	expectRefused(t, r, "patchgate: blocked container", "[hostPathMounts]", "/hostetc (from /etc")
	// hostDevices reads devices and mounts; the validator judged only the
	// devices, so the hook judges that rule in full: never "unjudged".
	if strings.Contains(r.ErrorMessage(), "unjudged") {
		t.Errorf("a rule was left unjudged between the validator and the hook:\n%s", r.ErrorMessage())
	}

	// Control: the same pod and image, nothing added, runs. Its hook asked
	// the service with its container ID and was answered on what the
	// validator judged of it (after_nri in the service's decision log).
	id, r = p.h.RunContainer(ctx, podID, pod, worker("clean", int64p(1000), false))
	if err := r.Err(); err != nil {
		t.Fatalf("clean container refused: %v", err)
	}
	decided := func(id string) []string {
		var lines []string
		for _, line := range strings.Split(p.proc.Log(), "\n") {
			if strings.Contains(line, `"container_id":"`+id+`"`) && strings.Contains(line, `"msg":"decision"`) {
				lines = append(lines, line)
			}
		}
		return lines
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(decided(id)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no decision logged for %s", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, line := range decided(id) {
		if !strings.Contains(line, `"after_nri":true`) {
			t.Errorf("the hook's question was not answered on the validator's judgement:\n%s", line)
		}
	}
	// The refused containers have one record each (the validator's for
	// kmsg, the hook's for etc); the clean one at most the hook's own
	// (baseline audits AppArmor, which NRI cannot see), never blocked.
	recs := p.records()
	n := map[string]int{}
	for _, rec := range recs {
		n[rec.Container.Name]++
		if rec.Container.Name == "clean" && rec.Action == audit.ActionBlocked {
			t.Errorf("clean container recorded as blocked")
		}
	}
	if n["kmsg"] != 1 || n["etc"] != 1 || n["clean"] > 1 {
		t.Errorf("audit records per container %v:\n%s", n, fmtSummaries(summarize(recs)))
	}
}
