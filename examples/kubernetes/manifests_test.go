// Package kubernetes holds the manifests for kubectl: patchgate.yaml, the
// chart (charts/patchgate) rendered with its default values and kept so by
// charts/patchgate's TestExampleManifest, and deny-nri-toleration.yaml. This
// test decodes every shipped manifest strictly into the Kubernetes API types,
// so a typo fails here rather than in a rollout.
package kubernetes

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/patchgate/patchgate/policy"
)

// documents splits a multi-document YAML file.
func documents(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(b []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// decodeStrict decodes into the typed object, refusing unknown or
// duplicate fields.
func decodeStrict(t *testing.T, doc []byte) any {
	t.Helper()
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		t.Fatal(err)
	}
	var obj any
	switch meta.APIVersion + "/" + meta.Kind {
	case "v1/Namespace":
		obj = &corev1.Namespace{}
	case "v1/ServiceAccount":
		obj = &corev1.ServiceAccount{}
	case "v1/ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1/Service":
		obj = &corev1.Service{}
	case "apps/v1/DaemonSet":
		obj = &appsv1.DaemonSet{}
	case "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy":
		obj = &admissionv1.ValidatingAdmissionPolicy{}
	case "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding":
		obj = &admissionv1.ValidatingAdmissionPolicyBinding{}
	default:
		t.Fatalf("unexpected kind %s %s", meta.APIVersion, meta.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s: %v", meta.Kind, err)
	}
	return obj
}

func TestManifestsDecodeStrictly(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, f := range files {
		for _, doc := range documents(t, f) {
			decodeStrict(t, doc)
		}
	}
}

func TestStrictDecodingCatchesTypos(t *testing.T) {
	docs := documents(t, "patchgate.yaml")
	for _, doc := range docs {
		if !bytes.Contains(doc, []byte("kind: DaemonSet")) {
			continue
		}
		bad := bytes.Replace(doc, []byte("priorityClassName:"), []byte("priorityClass:"), 1)
		var ds appsv1.DaemonSet
		if err := yaml.UnmarshalStrict(bad, &ds); err == nil {
			t.Fatal("a misspelt field decoded without error")
		}
		return
	}
	t.Fatal("no DaemonSet")
}

// TestDaemonSetShape checks what the README promises about the DaemonSet.
func TestDaemonSetShape(t *testing.T) {
	var ds *appsv1.DaemonSet
	var cm *corev1.ConfigMap
	for _, doc := range documents(t, "patchgate.yaml") {
		switch o := decodeStrict(t, doc).(type) {
		case *appsv1.DaemonSet:
			ds = o
		case *corev1.ConfigMap:
			cm = o
		}
	}
	if ds == nil || cm == nil {
		t.Fatal("DaemonSet or ConfigMap missing")
	}
	spec := ds.Spec.Template.Spec
	if spec.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName = %q", spec.PriorityClassName)
	}
	if ds.Spec.Template.Annotations["tolerate-missing-nri-plugins.noderesource.dev"] != "true" {
		t.Error("pod lacks the tolerate-missing-nri-plugins annotation: it could never start under required_plugins")
	}
	// Both static binaries onto the host by one init container, without a
	// shell (the image is FROM scratch): patchgate install copies patchgate
	// and the thin patchgate-hook, which runs `patchgate hook` next to it
	// when the service cannot answer, into the host's /opt/patchgate/bin.
	if len(spec.InitContainers) != 1 || !slices.Equal(spec.InitContainers[0].Command,
		[]string{"/usr/local/bin/patchgate", "install", "--dest", "/host/opt/patchgate/bin"}) {
		t.Errorf("init containers = %+v, want one running patchgate install --dest /host/opt/patchgate/bin", spec.InitContainers)
	} else {
		ic := spec.InitContainers[0]
		hostBin := false
		for _, m := range ic.VolumeMounts {
			for _, v := range spec.Volumes {
				if v.Name == m.Name && m.MountPath == "/host/opt/patchgate/bin" && v.HostPath != nil && v.HostPath.Path == "/opt/patchgate/bin" {
					hostBin = true
				}
			}
		}
		if !hostBin {
			t.Error("the init container does not write the host's /opt/patchgate/bin")
		}
	}
	c := spec.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--node-name=$(NODE_NAME)", "--socket=/var/run/nri/nri.sock", "--policy=/etc/patchgate",
		"--host-root=/host", "--tools-chroot", "--metrics-addr=$(POD_IP):9646", "--metrics-remote"} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %s: %s", want, args)
		}
	}
	// The full binary is injected (the pod's service refuses the thin hook's
	// bundle hand-over from the host's mount namespace; docs/hook.md).
	if !slices.Contains(c.Args, "--hook-path=/opt/patchgate/bin/patchgate") {
		t.Errorf("args lack --hook-path=/opt/patchgate/bin/patchgate: %s", args)
	}
	// The hook on the host decides alone with the service's copy of the
	// policy in force, on a host path the pod mounts at the same place.
	if !slices.Contains(c.Args, "--policy-copy=/var/lib/patchgate/policy") {
		t.Errorf("args lack --policy-copy=/var/lib/patchgate/policy: %s", args)
	}
	copyMounted := false
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/var/lib/patchgate/policy" && !m.ReadOnly {
			for _, v := range ds.Spec.Template.Spec.Volumes {
				if v.Name == m.Name && v.HostPath != nil && v.HostPath.Path == "/var/lib/patchgate/policy" {
					copyMounted = true
				}
			}
		}
	}
	if !copyMounted {
		t.Error("/var/lib/patchgate/policy is not the host's, writable, at the same path")
	}
	if len(c.Env) != 2 || c.Env[0].ValueFrom == nil || c.Env[0].ValueFrom.FieldRef.FieldPath != "spec.nodeName" ||
		c.Env[1].Name != "POD_IP" || c.Env[1].ValueFrom == nil || c.Env[1].ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Error("NODE_NAME and POD_IP do not come from the downward API")
	}
	// Prometheus scrapes the pod IP on a named port.
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || c.Ports[0].ContainerPort != 9646 {
		t.Errorf("ports = %+v, want metrics 9646", c.Ports)
	}
	// The probes are the service's (service/health.go) on the metrics port.
	for _, pr := range []struct {
		name, path string
		p          *corev1.Probe
	}{{"liveness", "/healthz", c.LivenessProbe}, {"readiness", "/readyz", c.ReadinessProbe}} {
		if pr.p == nil || pr.p.HTTPGet == nil || pr.p.HTTPGet.Path != pr.path || pr.p.HTTPGet.Port.String() != "metrics" {
			t.Errorf("%s probe = %+v, want GET %s on port metrics", pr.name, pr.p, pr.path)
		}
	}
	sc := c.SecurityContext
	if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"SYS_CHROOT"}) ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("container is not minimal-privilege: %+v", sc)
	}
	if spec.HostPID || spec.HostNetwork || spec.HostIPC {
		t.Error("host namespaces are not needed")
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	for _, p := range []string{"/var/run/nri", "/host", "/etc/patchgate", "/var/log/patchgate", "/run/patchgate"} {
		if _, ok := mounts[p]; !ok {
			t.Errorf("no mount at %s", p)
		}
	}
	// The node's / at /host, read-only down to its submounts where the kernel can.
	if h := mounts["/host"]; !h.ReadOnly || h.RecursiveReadOnly == nil || *h.RecursiveReadOnly != corev1.RecursiveReadOnlyIfPossible {
		t.Errorf("the node's root must be mounted recursively read-only: %+v", h)
	}
	if !mounts["/etc/patchgate"].ReadOnly {
		t.Error("the policy must be mounted read-only")
	}
	for _, v := range spec.Volumes {
		if v.Name == mounts["/host"].Name && (v.HostPath == nil || v.HostPath.Path != "/") {
			t.Errorf("/host is not the node's /: %+v", v)
		}
	}
	// Every policy in the ConfigMap is a valid policy.
	for key, body := range cm.Data {
		if _, err := policy.LoadBytes(key, []byte(body)); err != nil {
			t.Errorf("ConfigMap %s: %v", key, err)
		}
	}
}
