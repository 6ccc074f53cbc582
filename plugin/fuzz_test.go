package plugin

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/policy"
)

// FuzzContainerWorkload feeds arbitrary runtime messages (protojson, as the
// captures are written) through the conversion: it must never panic, never
// claim to see what NRI cannot show, and never lose a host device or mount.
func FuzzContainerWorkload(f *testing.F) {
	dirs, _ := filepath.Glob(filepath.Join("testdata", "nri", "*"))
	for _, d := range dirs {
		pod, err1 := os.ReadFile(filepath.Join(d, "nri-pod.json"))
		ctr, err2 := os.ReadFile(filepath.Join(d, "nri-container.json"))
		if err1 == nil && err2 == nil {
			f.Add(pod, ctr, []byte(`{"linux":{"namespaces":[{"type":"-network"}]}}`))
		}
	}
	f.Add([]byte(`{}`), []byte(`{}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, podJSON, ctrJSON, adjJSON []byte) {
		pod, ctr, adj := &api.PodSandbox{}, &api.Container{}, &api.ContainerAdjustment{}
		if protojson.Unmarshal(podJSON, pod) != nil || protojson.Unmarshal(ctrJSON, ctr) != nil {
			return
		}
		if protojson.Unmarshal(adjJSON, adj) != nil {
			adj = nil
		}
		if _, err := PodWorkload(pod, hook.IdentityFromContainerd); err != nil {
			t.Fatalf("PodWorkload on a decoded pod: %v", err)
		}
		before := proto.Clone(ctr)
		full := ApplyAdjustment(ctr, adj)
		if fast := adjusted(ctr, adj); !proto.Equal(fast, full) || !proto.Equal(ctr, before) {
			t.Fatalf("adjusted (the validator's copy on write) differs from ApplyAdjustment or modified the container")
		}
		w, err := ContainerWorkload(pod, full, hook.IdentityFromContainerd)
		if err != nil {
			t.Fatalf("ContainerWorkload on a decoded container: %v", err)
		}
		if w.Seen&neverSeen != 0 {
			t.Fatalf("claims to see %b", w.Seen&neverSeen)
		}
		if w.Seen.Has(policy.FieldDevices) && len(w.Devices) != len(full.GetLinux().GetDevices()) {
			t.Fatalf("lost devices: %d of %d", len(w.Devices), len(full.GetLinux().GetDevices()))
		}
	})
}
