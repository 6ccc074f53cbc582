package hook

import (
	"encoding/json"
	"os"
	"testing"
)

func TestIdentityPodmanRecorded(t *testing.T) {
	data, err := os.ReadFile("testdata/podman/privileged-pod/state.json")
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseState(data)
	if err != nil {
		t.Fatal(err)
	}
	id := IdentityFrom(st.ID, st.Annotations)
	if id.Runtime != RuntimePodman {
		t.Fatalf("runtime = %q", id.Runtime)
	}
	const pod = "b4dd834f2d099dc257dd6ff57f497b26dd368c54e4214d6ffec92aacf5b53aee"
	if id.SandboxID != pod || id.Pod.UID != pod {
		t.Errorf("pod id = %q/%q, want %s", id.SandboxID, id.Pod.UID, pod)
	}
	if id.Container.ID != st.ID {
		t.Errorf("container id = %q", id.Container.ID)
	}
}

// The containerd and CRI-O annotation sets are reconstructed from their
// sources; see testdata/README.md.
func TestIdentityFromSources(t *testing.T) {
	for _, tc := range []struct {
		file string
		want Identity
	}{
		{"testdata/annotations/containerd-cri.json", Identity{
			Runtime:   RuntimeContainerd,
			SandboxID: "5f1d3c0b7b1f4c6a9e2d8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291807f6e5d4",
			Pod:       withSandbox(podID("default", "web-7d4b9c", "0b9f6c2e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"), "5f1d3c0b7b1f4c6a9e2d8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291807f6e5d4"),
			Container: ctrID("c0ffee", "nginx", "docker.io/library/nginx:1.27"),
		}},
		{"testdata/annotations/crio.json", Identity{
			Runtime:   RuntimeCRIO,
			SandboxID: "8e2a1f0c9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29",
			Pod:       podID("shop", "cart-0", "5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f"),
			Container: ctrID("c0ffee", "cart", "quay.io/example/cart:2.1"),
		}},
		// podman with --annotation io.container.manager=cri-o and a
		// kube-system pod namespace (recorded): podman, no identity.
		{"testdata/annotations/podman-claims-crio.json", Identity{
			Runtime:   RuntimePodman,
			Container: ctrID("c0ffee", "", ""),
		}},
		// The labels JSON alone names nobody: on an infra container's spec
		// a pod annotation of its name replaces CRI-O's (identity.go).
		{"testdata/annotations/crio-labels-only.json", Identity{
			Runtime:   RuntimeCRIO,
			Container: ctrID("c0ffee", "", ""),
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			var ann map[string]string
			if err := json.Unmarshal(data, &ann); err != nil {
				t.Fatal(err)
			}
			got := IdentityFrom("c0ffee", ann)
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(tc.want)
			if string(gb) != string(wb) {
				t.Errorf("identity\n got %s\nwant %s", gb, wb)
			}
		})
	}
}

func TestIdentityUnknownRuntime(t *testing.T) {
	got := IdentityFrom("x", map[string]string{"io.kubernetes.cri-o.Labels": "{not json"})
	if got.Runtime != RuntimeUnknown || got.Container.ID != "x" || got.Pod.Name != "" {
		t.Fatalf("got %+v", got)
	}
	got = IdentityFrom("x", map[string]string{annContainerManager: managerCRIO, "io.kubernetes.cri-o.Labels": "{not json"})
	if got.Runtime != RuntimeCRIO || got.Pod.Name != "" {
		t.Fatalf("malformed CRI-O labels gave %+v", got)
	}
}

// CRI-O's specs of a pod whose annotations claim kube-system under every
// identity key (testdata/crio, reconstructed from CRI-O's source; see
// testdata/README.md): the identity is the kubelet's labels', which CRI-O
// writes after the pod's annotations, and the infra container's image,
// which the pod can set, is not taken.
func TestIdentityCRIOPodAnnotations(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		want    Identity
	}{
		{"infra-forged", Identity{
			Runtime:   RuntimeCRIO,
			Sandbox:   true,
			Pod:       podID("shop", "cart-0", "5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f"),
			Container: ctrID("8e2a1f0c9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29", "POD", ""),
		}},
		{"app-forged", Identity{
			Runtime:   RuntimeCRIO,
			SandboxID: "8e2a1f0c9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29",
			Pod:       podID("shop", "cart-0", "5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f"),
			Container: ctrID("5b1d7e0a3c9f4e2b8a6d0c1f7e3b9a5d2c8f4e0a6b1d7c3e9f5a2b8d4c0e6f1a", "cart", "quay.io/example/cart:2.1"),
		}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			data, err := os.ReadFile("testdata/crio/" + tc.fixture + "/state.json")
			if err != nil {
				t.Fatal(err)
			}
			st, err := ParseState(data)
			if err != nil {
				t.Fatal(err)
			}
			got := IdentityFrom(st.ID, st.Annotations)
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(tc.want)
			if string(gb) != string(wb) {
				t.Errorf("identity\n got %s\nwant %s", gb, wb)
			}
		})
	}
	// A pod cannot make its infra container an application container:
	// the name "POD" is the kubelet's label, written last.
	data, err := os.ReadFile("testdata/crio/infra-forged/state.json")
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseState(data)
	if err != nil {
		t.Fatal(err)
	}
	st.Annotations[annCRIOContainerType] = "container"
	if got := IdentityFrom(st.ID, st.Annotations); !got.Sandbox || got.Container.Image != "" || got.SandboxID != "" {
		t.Errorf("infra container with ContainerType=container: %+v", got)
	}
}
