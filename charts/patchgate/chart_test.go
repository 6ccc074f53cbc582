// Package chart tests the Helm chart in this directory: helm lint --strict,
// then helm template with the default values and with every option on
// (testdata/everything.yaml), every rendered document decoded strictly into
// the Kubernetes API types, the policy loaded by patchgate's own loader as a
// node reads it, the alerts and the dashboard checked against the metrics
// patchgate exports, and the schema shown refusing bad values. helm is the
// one pinned in tools/helm, built by scripts/helm.sh on first use (minutes on
// a cold machine; never skipped).
package chart

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/metrics"
	"github.com/patchgate/patchgate/policy"
)

const (
	release   = "patchgate"
	namespace = "patchgate-system"
	// The example manifest is the chart rendered with its default values.
	exampleManifest = "../../examples/kubernetes/patchgate.yaml"
)

// helm runs the pinned helm in the chart's directory and returns its stdout,
// or an error holding its stderr.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("../../scripts/helm.sh", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(err.Error() + ": " + stderr.String())
	}
	return stdout.String(), nil
}

func template(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return helm(t, append([]string{"template", release, ".", "--namespace", namespace}, args...)...)
}

// rendered is what helm template made of the chart: the typed Kubernetes
// objects, and the Prometheus Operator ones as plain maps.
type rendered struct {
	sa         *corev1.ServiceAccount
	policy     *corev1.ConfigMap
	dashboard  *corev1.ConfigMap
	svc        *corev1.Service
	ds         *appsv1.DaemonSet
	monitoring map[string]map[string]any // by kind
}

// documents splits helm's output into its non-empty documents.
func documents(out string) []string {
	var docs []string
	for _, d := range strings.Split("\n"+out, "\n---\n") {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// decode decodes every document strictly, refusing unknown and duplicate
// fields and kinds the chart should not render.
func decode(t *testing.T, out string) *rendered {
	t.Helper()
	r := &rendered{monitoring: map[string]map[string]any{}}
	for _, doc := range documents(out) {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		var obj any
		switch meta.APIVersion + "/" + meta.Kind {
		case "v1/ServiceAccount":
			r.sa = &corev1.ServiceAccount{}
			obj = r.sa
		case "v1/ConfigMap":
			cm := &corev1.ConfigMap{}
			if strings.HasSuffix(meta.Metadata.Name, "-dashboard") {
				r.dashboard = cm
			} else {
				r.policy = cm
			}
			obj = cm
		case "v1/Service":
			r.svc = &corev1.Service{}
			obj = r.svc
		case "apps/v1/DaemonSet":
			r.ds = &appsv1.DaemonSet{}
			obj = r.ds
		case "monitoring.coreos.com/v1/PodMonitor", "monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule":
			// prometheus-operator's API module would move k8s.io/api and
			// bring controller-runtime into go.mod; these are checked as
			// maps, field by field, below.
			m := map[string]any{}
			if err := yaml.UnmarshalStrict([]byte(doc), &m); err != nil {
				t.Fatalf("%s: %v", meta.Kind, err)
			}
			r.monitoring[meta.Kind] = m
			continue
		default:
			t.Fatalf("unexpected kind %s %s", meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s: %v", meta.Kind, err)
		}
	}
	if r.sa == nil || r.policy == nil || r.ds == nil {
		t.Fatal("ServiceAccount, policy ConfigMap or DaemonSet missing")
	}
	return r
}

func mustTemplate(t *testing.T, args ...string) *rendered {
	t.Helper()
	out, err := template(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, out)
}

func TestLint(t *testing.T) {
	for _, args := range [][]string{nil, {"-f", "testdata/everything.yaml"}} {
		out, err := helm(t, append([]string{"lint", "--strict", "."}, args...)...)
		if err != nil {
			t.Errorf("helm lint --strict %v: %v\n%s", args, err, out)
		}
	}
}

// nodeDir writes the policy ConfigMap as the DaemonSet's volume mounts it
// (its items: policy.yaml, nodes/<node>.yaml), with the modes a node sees.
func nodeDir(t *testing.T, r *rendered) string {
	t.Helper()
	dir := t.TempDir()
	var vol *corev1.ConfigMapVolumeSource
	for _, v := range r.ds.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == r.policy.Name {
			vol = v.ConfigMap
		}
	}
	if vol == nil {
		t.Fatalf("no volume mounts ConfigMap %s", r.policy.Name)
	}
	if len(vol.Items) != len(r.policy.Data) {
		t.Errorf("the volume maps %d keys, the ConfigMap has %d: an overlay would not reach its node", len(vol.Items), len(r.policy.Data))
	}
	for _, it := range vol.Items {
		body, ok := r.policy.Data[it.Key]
		if !ok {
			t.Fatalf("volume item %s: no such key in the ConfigMap", it.Key)
		}
		p := filepath.Join(dir, it.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// overlays returns the node names the volume maps to nodes/<node>.yaml.
func overlays(r *rendered) []string {
	var nodes []string
	for _, v := range r.ds.Spec.Template.Spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		for _, it := range v.ConfigMap.Items {
			if n, ok := strings.CutPrefix(it.Path, "nodes/"); ok {
				nodes = append(nodes, strings.TrimSuffix(n, ".yaml"))
			}
		}
	}
	return nodes
}

// checkPolicy loads the rendered policy as a node without an overlay and as
// each node with one does, and checks the mode and the self-exemption.
func checkPolicy(t *testing.T, r *rendered, mode string, nodes []string) {
	t.Helper()
	dir := nodeDir(t, r)
	if got := overlays(r); !slices.Equal(got, nodes) {
		t.Errorf("overlays = %v, want %v", got, nodes)
	}
	for _, node := range append([]string{"no-overlay"}, nodes...) {
		p, err := policy.Load(dir, node)
		if err != nil {
			t.Errorf("node %s: %v", node, err)
			continue
		}
		if got := string(p.Spec.DefaultAction); got != mode {
			t.Errorf("node %s: defaultAction = %q, want %q", node, got, mode)
		}
		self := false
		for _, e := range p.Spec.Exemptions {
			if e.Name == "patchgate-itself" && slices.Equal(e.Namespaces, []string{namespace}) &&
				slices.Equal(e.Containers, []string{"install", "patchgate"}) && slices.Equal(e.Images, []string{r.ds.Spec.Template.Spec.Containers[0].Image}) {
				self = true
			}
		}
		if !self {
			t.Errorf("node %s: no exemption for patchgate's own containers and image in its namespace", node)
		}
		if enforcing := enforceActions(t, p); mode == "audit" && len(enforcing) > 0 {
			t.Errorf("node %s: audit mode, yet the policy enforces: %q", node, enforcing)
		}
	}
	if !regexp.MustCompile(`(?m)^  defaultAction: ` + mode + `$`).MatchString(r.policy.Data["policy.yaml"]) {
		t.Errorf("policy.yaml does not say defaultAction: %s:\n%s", mode, r.policy.Data["policy.yaml"])
	}
}

// enforceAction matches an action of "enforce" in a policy's JSON: a rule's
// action or whenKernelBehind, spec.kernel.action or onUnknown.
var enforceAction = regexp.MustCompile(`"(action|whenKernelBehind|onUnknown|defaultAction)":"enforce"`)

// enforceActions lists the actions of p that are "enforce", by key.
func enforceActions(t *testing.T, p *policy.Policy) []string {
	t.Helper()
	b, err := json.Marshal(p.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return enforceAction.FindAllString(string(b), -1)
}

// TestAuditModeRefusesNothing: in audit mode every "enforce" the base
// policy or an overlay names itself is rendered as audit, so the policy
// refuses nothing; in enforce mode the same values keep every one.
func TestAuditModeRefusesNothing(t *testing.T) {
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte(`policy:
  spec:
    kernel: {action: enforce, onUnknown: enforce, requiredPatches: [livepatch_sample]}
    rules:
      privileged: {action: enforce}
      hostNamespaces: {action: warn, whenKernelBehind: enforce}
nodePolicies:
  worker-1: |
    apiVersion: patchgate.dev/v1alpha1
    kind: NodePolicy
    spec:
      kernel: {action: enforce}
      rules:
        capabilities: {action: enforce, whenKernelBehind: enforce}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := mustTemplate(t, "-f", values)
	checkPolicy(t, r, "audit", []string{"worker-1"})
	p, err := policy.Load(nodeDir(t, r), "worker-1")
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Spec; s.Kernel.Action != "audit" || s.Rules.Privileged.Action != "audit" || s.Rules.HostNamespaces.Action != "warn" ||
		s.Rules.HostNamespaces.WhenKernelBehind != "audit" || s.Rules.Capabilities.WhenKernelBehind != "audit" {
		t.Errorf("audit mode: kernel %q, privileged %q, hostNamespaces %q/%q, capabilities %q", s.Kernel.Action,
			s.Rules.Privileged.Action, s.Rules.HostNamespaces.Action, s.Rules.HostNamespaces.WhenKernelBehind, s.Rules.Capabilities.WhenKernelBehind)
	}
	r = mustTemplate(t, "-f", values, "--set", "mode=enforce")
	checkPolicy(t, r, "enforce", []string{"worker-1"})
	p, err = policy.Load(nodeDir(t, r), "worker-1")
	if err != nil {
		t.Fatal(err)
	}
	// defaultAction, kernel action and onUnknown, privileged, hostNamespaces'
	// whenKernelBehind, capabilities' two, and each rule left to defaultAction.
	if got := enforceActions(t, p); len(got) < 7 || p.Spec.Rules.HostNamespaces.Action != "warn" {
		t.Errorf("enforce mode kept %d: %q", len(got), got)
	}
}

// checkDaemonSet checks what docs/operations.md and the README promise about
// the DaemonSet, beyond what the example manifest's tests check.
func checkDaemonSet(t *testing.T, r *rendered) {
	t.Helper()
	ds := r.ds
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || ru == nil || ru.MaxSurge == nil || ru.MaxSurge.IntValue() != 0 || ru.MaxSurge.String() != "0" {
		t.Errorf("updateStrategy = %+v, want RollingUpdate with maxSurge 0", ds.Spec.UpdateStrategy)
	}
	pod := ds.Spec.Template
	for k, v := range ds.Spec.Selector.MatchLabels {
		if pod.Labels[k] != v {
			t.Errorf("the pod lacks selector label %s=%s", k, v)
		}
	}
	if pod.Annotations["tolerate-missing-nri-plugins.noderesource.dev"] != "true" {
		t.Error("pod lacks the tolerate-missing-nri-plugins annotation")
	}
	if pod.Spec.ServiceAccountName != r.sa.Name {
		t.Errorf("serviceAccountName %q, the chart's is %q", pod.Spec.ServiceAccountName, r.sa.Name)
	}
	// One init container, no shell: the image is FROM scratch.
	want := []string{"/usr/local/bin/patchgate", "install", "--dest", "/host/opt/patchgate/bin"}
	if ics := pod.Spec.InitContainers; len(ics) != 1 || !slices.Equal(ics[0].Command, want) {
		t.Errorf("init containers = %+v, want one running %v", ics, want)
	}
	if r.svc != nil {
		for k, v := range r.svc.Spec.Selector {
			if pod.Labels[k] != v {
				t.Errorf("the Service selects %s=%s, the pod has %q", k, v, pod.Labels[k])
			}
		}
		if r.svc.Spec.ClusterIP != corev1.ClusterIPNone || len(r.svc.Spec.Ports) != 1 || r.svc.Spec.Ports[0].TargetPort.String() != "metrics" {
			t.Errorf("metrics Service = %+v, want headless, port metrics", r.svc.Spec)
		}
	}
}

func TestDefaultValues(t *testing.T) {
	r := mustTemplate(t)
	if r.dashboard != nil || len(r.monitoring) != 0 {
		t.Errorf("off by default, rendered: dashboard %v, monitoring %v", r.dashboard != nil, len(r.monitoring))
	}
	if r.svc == nil {
		t.Error("no metrics Service")
	}
	checkPolicy(t, r, "audit", nil)
	checkDaemonSet(t, r)
	spec := r.ds.Spec.Template.Spec
	if spec.PriorityClassName != "system-node-critical" ||
		len(spec.Tolerations) != 1 || spec.Tolerations[0].Operator != corev1.TolerationOpExists || spec.Tolerations[0].Key != "" {
		t.Errorf("priorityClassName %q, tolerations %+v: want system-node-critical on every node", spec.PriorityClassName, spec.Tolerations)
	}
	if img := spec.Containers[0].Image; img != "ghcr.io/patchgate/patchgate:v0.1.0" || spec.InitContainers[0].Image != img {
		t.Errorf("image %q, init %q: want the chart's appVersion", img, spec.InitContainers[0].Image)
	}
}

func TestEverythingOn(t *testing.T) {
	r := mustTemplate(t, "-f", "testdata/everything.yaml")
	checkPolicy(t, r, "enforce", []string{"worker-2", "worker-gpu-1"})
	checkDaemonSet(t, r)
	if p, err := policy.Load(nodeDir(t, r), ""); err != nil || p.Spec.Audit.MaxSizeMB != 2000 {
		t.Errorf("policy.spec.audit.maxSizeMB from the values did not arrive as 2000: %v", err)
	}
	pod := r.ds.Spec.Template
	if pod.Annotations["example.com/team"] != "platform" || pod.Labels["example.com/tier"] != "node" ||
		pod.Annotations["tolerate-missing-nri-plugins.noderesource.dev"] != "true" {
		t.Errorf("pod metadata = %+v", pod.ObjectMeta)
	}
	if !slices.Contains(pod.Spec.Containers[0].Args, "--kernel-interval=5m") {
		t.Errorf("extraArgs missing: %v", pod.Spec.Containers[0].Args)
	}
	if got := r.ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable.String(); got != "10%" {
		t.Errorf("maxUnavailable = %s", got)
	}
	if pod.Spec.Affinity == nil || pod.Spec.NodeSelector["kubernetes.io/os"] != "linux" || len(pod.Spec.ImagePullSecrets) != 1 {
		t.Error("affinity, nodeSelector or imagePullSecrets not rendered")
	}

	// The monitors select the pods (or the Service) by their labels, on the
	// port named metrics, and label each series with its node.
	for _, kind := range []string{"PodMonitor", "ServiceMonitor"} {
		m := r.monitoring[kind]
		if m == nil {
			t.Fatalf("no %s", kind)
		}
		spec := m["spec"].(map[string]any)
		sel := spec["selector"].(map[string]any)["matchLabels"].(map[string]any)
		labels := pod.Labels
		if kind == "ServiceMonitor" {
			labels = r.svc.Labels
		}
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("%s selects %s=%v, not on the target", kind, k, v)
			}
		}
		key := map[string]string{"PodMonitor": "podMetricsEndpoints", "ServiceMonitor": "endpoints"}[kind]
		eps, _ := spec[key].([]any)
		if len(eps) != 1 {
			t.Fatalf("%s %s = %v", kind, key, spec[key])
		}
		ep := eps[0].(map[string]any)
		if ep["port"] != "metrics" || ep["path"] != "/metrics" || !strings.Contains(toJSON(t, ep["relabelings"]), `"targetLabel":"node"`) {
			t.Errorf("%s endpoint = %v", kind, ep)
		}
		if kind == "PodMonitor" && m["metadata"].(map[string]any)["labels"].(map[string]any)["release"] != "prometheus" {
			t.Errorf("PodMonitor labels from values missing: %v", m["metadata"])
		}
	}

	// Every alert's expression names only metrics patchgate exports.
	rule := r.monitoring["PrometheusRule"]
	if rule == nil {
		t.Fatal("no PrometheusRule")
	}
	known := metricNames(t)
	var alerts []string
	for _, g := range rule["spec"].(map[string]any)["groups"].([]any) {
		for _, ru := range g.(map[string]any)["rules"].([]any) {
			ru := ru.(map[string]any)
			name, _ := ru["alert"].(string)
			alerts = append(alerts, name)
			checkExpr(t, "alert "+name, ru["expr"].(string), known)
			for _, k := range []string{"summary", "description"} {
				if s, _ := ru["annotations"].(map[string]any)[k].(string); s == "" {
					t.Errorf("alert %s has no %s", name, k)
				}
			}
		}
	}
	sort.Strings(alerts)
	for _, want := range []string{"PatchgateAuditWriteFailing", "PatchgateHookInjectionRefused", "PatchgateKernelBehind",
		"PatchgatePolicyReloadFailed", "PatchgateRuntimeNotConnected"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s (have %v)", want, alerts)
		}
	}

	// The dashboard ConfigMap carries files/dashboard.json unchanged, where
	// Grafana's sidecar looks.
	if r.dashboard == nil || r.dashboard.Namespace != "monitoring" || r.dashboard.Labels["grafana_dashboard"] != "1" {
		t.Fatalf("dashboard ConfigMap = %+v", r.dashboard)
	}
	file, err := os.ReadFile("files/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(r.dashboard.Data["patchgate.json"]) != strings.TrimSpace(string(file)) {
		t.Error("the dashboard ConfigMap differs from files/dashboard.json")
	}
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metricNames is every series name patchgate's registry exports, each
// collector made to report (a vector reports nothing before its first
// observation), with a histogram's _bucket, _sum and _count.
func metricNames(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New()
	m.ObserveDecision("nri", &policy.Decision{Verdict: policy.Deny, Violations: []policy.Violation{{Rule: "privileged"}}}, time.Millisecond)
	m.ObserveRemediation("patched")
	m.ObserveRemediationWait("patched")
	m.SetRuntimeConnected("validator", true)
	m.WatchAudit(func() audit.Health { return audit.Health{OK: true} })
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+s] = true
			}
		}
	}
	if !names["patchgate_runtime_connected"] || !names["patchgate_decision_rules_total"] {
		t.Fatalf("registry lacks metrics the test made report: %v", names)
	}
	return names
}

var metricRef = regexp.MustCompile(`\bpatchgate_[a-z0-9_]+`)

// checkExpr fails unless expr names at least one metric and every
// patchgate_* name in it is one the registry exports.
func checkExpr(t *testing.T, what, expr string, known map[string]bool) {
	t.Helper()
	refs := metricRef.FindAllString(expr, -1)
	if len(refs) == 0 {
		t.Errorf("%s: %q names no patchgate metric", what, expr)
	}
	for _, n := range refs {
		if !known[n] {
			t.Errorf("%s: %q names %s, which patchgate does not export (metrics/metrics.go)", what, expr, n)
		}
	}
}

func TestDashboardQueriesNameRealMetrics(t *testing.T) {
	b, err := os.ReadFile("files/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || len(d.Panels) == 0 {
		t.Fatal("dashboard without uid or panels")
	}
	known := metricNames(t)
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			checkExpr(t, "panel "+p.Title, q.Expr, known)
		}
	}
}

// TestSchemaRefuses: values.schema.json (and the template's own checks)
// make helm template fail on values that would deploy something unsafe or
// not what was meant.
func TestSchemaRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in helm's error
	}{
		{"unknown mode", []string{"--set", "mode=block"}, "mode"},
		{"maxSurge", []string{"--set", "updateStrategy.maxSurge=1"}, "maxSurge"},
		{"maxUnavailable 0", []string{"--set", "updateStrategy.maxUnavailable=0"}, "maxUnavailable"},
		{"unknown key", []string{"--set", "podAnotations.a=b"}, "podAnotations"},
		{"short grace period", []string{"--set", "terminationGracePeriodSeconds=2"}, "terminationGracePeriodSeconds"},
		{"node name not a key", []string{"--set-json", `nodePolicies={"Worker_1":{"apiVersion":"patchgate.dev/v1alpha1","kind":"NodePolicy"}}`}, "Worker_1"},
		{"overlay of another kind", []string{"--set-json", `nodePolicies={"w1":{"apiVersion":"v1","kind":"ConfigMap"}}`}, "nodePolicies"},
		{"extraArgs overriding the chart's flag", []string{"--set", "extraArgs[0]=--hook-path=/tmp/x"}, "extraArgs"},
		{"extraArgs not a flag", []string{"--set", "extraArgs[0]=nri"}, "extraArgs"},
		{"the toleration annotation", []string{"--set-string", `podAnnotations.tolerate-missing-nri-plugins\.noderesource\.dev=false`}, "podAnnotations"},
		{"pull policy", []string{"--set", "image.pullPolicy=Sometimes"}, "pullPolicy"},
		{"defaultAction against mode", []string{"--set", "policy.spec.defaultAction=enforce"}, "set mode, not spec.defaultAction"},
		{"overlay's defaultAction against mode", []string{"--set", "mode=enforce", "--set-json", `nodePolicies={"w1":{"apiVersion":"patchgate.dev/v1alpha1","kind":"NodePolicy","spec":{"defaultAction":"audit"}}}`}, "a node overlay cannot change the mode"},
		{"overlay string's defaultAction against mode", []string{"--set", "mode=enforce", "--set-string", "nodePolicies.w1=apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nspec: {defaultAction: audit}"}, "a node overlay cannot change the mode"},
		{"policy string not YAML", []string{"--set-string", "policy=a: [b"}, "policy: not a YAML map"},
		// exemptSelf names the image as the runtime does: a short name would be docker.io/...
		{"image without a registry", []string{"--set", "image.repository=patchgate/patchgate"}, "repository"},
		{"image tag not a tag", []string{"--set", "image.tag=v1@sha256:00"}, "tag"},
		// helm's namespace without --namespace: every pod there would be exempt.
		{"exemptSelf in default", []string{"--namespace", "default"}, "exemptSelf"},
		{"serviceMonitor without Service", []string{"--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.service.enabled=false"}, "metrics.service.enabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := template(t, tc.args...)
			if err == nil {
				t.Fatalf("helm template %v rendered:\n%s", tc.args, out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not name %q: %v", tc.want, err)
			}
		})
	}
}

// TestPolicyAsString: a policy given as one YAML string is taken as written
// and gets the mode.
func TestPolicyAsString(t *testing.T) {
	pol := "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: from-string}\nspec:\n  rules:\n    privileged: {action: enforce}\n"
	r := mustTemplate(t, "--set-string", "policy="+pol, "--set", "mode=enforce")
	checkPolicy(t, r, "enforce", nil)
	p, err := policy.Load(nodeDir(t, r), "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "from-string" {
		t.Errorf("policy name %q, want from-string", p.Name())
	}
}

// exampleHeader opens examples/kubernetes/patchgate.yaml, above the chart's
// rendered default values.
const exampleHeader = `# patchgate as a DaemonSet: one external NRI plugin per node. GENERATED from
# charts/patchgate with its default values; do not edit, change the chart and run
#   PATCHGATE_UPDATE_DOCS=1 go test -run TestExampleManifest ./charts/patchgate
# Prefer the chart itself (README.md, "Install with Helm"). Without helm:
#   kubectl create namespace patchgate-system
#   kubectl label namespace patchgate-system pod-security.kubernetes.io/enforce=privileged
#   kubectl apply -f examples/kubernetes/patchgate.yaml
# Prerequisites on every node: containerd >= 2.2 with NRI and the default validator
# (examples/containerd/patchgate.toml). This is audit mode: nothing is refused.
# Read the findings (README.md), then enforce: apply the chart rendered with
#   scripts/helm.sh template patchgate charts/patchgate -n patchgate-system --set mode=enforce
# (audit mode also turned runAsRoot's whenKernelBehind from enforce into audit).
`

// TestExampleManifest keeps examples/kubernetes/patchgate.yaml equal to the
// chart rendered with its default values.
func TestExampleManifest(t *testing.T) {
	out, err := template(t)
	if err != nil {
		t.Fatal(err)
	}
	want := exampleHeader + out
	if os.Getenv("PATCHGATE_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(exampleManifest, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(exampleManifest)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is not the chart's default rendering; run PATCHGATE_UPDATE_DOCS=1 go test -run TestExampleManifest ./charts/patchgate", exampleManifest)
	}
}

// TestNotes: what helm prints after install names the Pod Security label,
// the rollout steps, and the uninstall order of docs/operations.md:
// required_plugins removed before the DaemonSet.
func TestNotes(t *testing.T) {
	out, err := helm(t, "install", release, ".", "--namespace", namespace, "--dry-run=client")
	if err != nil {
		t.Fatal(err)
	}
	_, notes, ok := strings.Cut(out, "\nNOTES:\n")
	if !ok {
		t.Fatalf("no NOTES in:\n%s", out)
	}
	order := []string{
		"kubectl label namespace " + namespace + " pod-security.kubernetes.io/enforce=privileged",
		"kubectl -n " + namespace + " rollout status ds/patchgate",
		"kubectl -n " + namespace + " logs ds/patchgate",
		"patchgate audit",
		"--set mode=enforce",
		`required_plugins = ["patchgate"]`,
		"Uninstall",
		"remove required_plugins",
		"helm uninstall " + release + " --namespace " + namespace,
		"/opt/patchgate/bin",
	}
	at := 0
	for _, s := range order {
		i := strings.Index(notes[at:], s)
		if i < 0 {
			t.Fatalf("NOTES lack %q after position %d (the order is %q):\n%s", s, at, order, notes)
		}
		at += i + len(s)
	}
	if strings.Contains(notes, "skipped") || strings.Contains(notes, "(done)") {
		t.Errorf("audit-mode NOTES say a step is skipped or done:\n%s", notes)
	}
	// Installed straight into enforce mode, the steps say so.
	out, err = helm(t, "install", release, ".", "--namespace", namespace, "--dry-run=client", "--set", "mode=enforce")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "in enforce mode and refuses\n   non-compliant containers now") || !strings.Contains(out, "2. Enforce (done)") {
		t.Errorf("enforce-mode NOTES do not say enforce is in force:\n%s", out)
	}
}
