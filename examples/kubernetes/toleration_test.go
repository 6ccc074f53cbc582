package kubernetes

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/plugin"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
)

// tolerationKey is the annotation containerd's config names in
// tolerate_missing_plugins_annotation (examples/containerd/patchgate.toml).
func tolerationKey(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../containerd/patchgate.toml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*tolerate_missing_plugins_annotation\s*=\s*"([^"]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatal("patchgate.toml names no tolerate_missing_plugins_annotation")
	}
	return string(m[1])
}

// TestNRITolerationGuard checks deny-nri-toleration.yaml: a policy and its
// binding that refuse, on pod create and update, every annotation key NRI's
// default validator reads as the toleration, outside patchgate's namespace.
// No CEL library is in go.mod, so the expression is not evaluated: its text
// must have the one shape below, and the predicate that shape means is
// checked against NRI's own lookup (plugin.GetEffectiveAnnotation, the
// function the default validator calls).
func TestNRITolerationGuard(t *testing.T) {
	key := tolerationKey(t)
	var (
		vap *admissionv1.ValidatingAdmissionPolicy
		vb  *admissionv1.ValidatingAdmissionPolicyBinding
		ds  *appsv1.DaemonSet
	)
	for _, doc := range documents(t, "deny-nri-toleration.yaml") {
		switch o := decodeStrict(t, doc).(type) {
		case *admissionv1.ValidatingAdmissionPolicy:
			vap = o
		case *admissionv1.ValidatingAdmissionPolicyBinding:
			vb = o
		}
	}
	for _, doc := range documents(t, "patchgate.yaml") {
		if o, ok := decodeStrict(t, doc).(*appsv1.DaemonSet); ok {
			ds = o
		}
	}
	if vap == nil || vb == nil || ds == nil {
		t.Fatal("policy, binding or DaemonSet missing")
	}
	if vb.Spec.PolicyName != vap.Name || !slices.Equal(vb.Spec.ValidationActions, []admissionv1.ValidationAction{admissionv1.Deny}) {
		t.Errorf("binding %q %v does not deny with policy %q", vb.Spec.PolicyName, vb.Spec.ValidationActions, vap.Name)
	}
	if vap.Spec.FailurePolicy == nil || *vap.Spec.FailurePolicy != admissionv1.Fail {
		t.Error("failurePolicy is not Fail")
	}
	rules := vap.Spec.MatchConstraints.ResourceRules
	if len(rules) != 1 || !slices.Equal(rules[0].APIGroups, []string{""}) || !slices.Equal(rules[0].Resources, []string{"pods"}) ||
		!slices.Contains(rules[0].Operations, admissionv1.Create) || !slices.Contains(rules[0].Operations, admissionv1.Update) {
		t.Errorf("does not match pod create and update: %+v", rules)
	}
	// Only patchgate's own namespace is exempt.
	sel := vb.Spec.MatchResources.NamespaceSelector
	if sel == nil || len(sel.MatchLabels) != 0 || len(sel.MatchExpressions) != 1 ||
		sel.MatchExpressions[0].Key != "kubernetes.io/metadata.name" || sel.MatchExpressions[0].Operator != "NotIn" ||
		!slices.Equal(sel.MatchExpressions[0].Values, []string{ds.Namespace}) {
		t.Errorf("namespace selector %+v, want NotIn [%s]", sel, ds.Namespace)
	}
	if ds.Spec.Template.Annotations[key] != "true" {
		t.Errorf("patchgate's DaemonSet does not carry %s", key)
	}
	// Only the node's own requests (mirror pods) are left out.
	if mc := vap.Spec.MatchConditions; len(mc) != 1 || mc[0].Expression != "!('system:nodes' in request.userInfo.groups)" {
		t.Errorf("match conditions %+v", mc)
	}
	if len(vap.Spec.Validations) != 1 {
		t.Fatalf("%d validations", len(vap.Spec.Validations))
	}
	expr := strings.Join(strings.Fields(vap.Spec.Validations[0].Expression), " ")
	shape := regexp.MustCompile(`^!has\(object\.metadata\.annotations\) \|\| object\.metadata\.annotations\.all\(k, k != '([^']+)' && !k\.startsWith\('([^']+)'\)\)$`)
	m := shape.FindStringSubmatch(expr)
	if m == nil {
		t.Fatalf("expression has another shape: %s", expr)
	}
	exact, prefix := m[1], m[2]
	if exact != key || prefix != key+"/" {
		t.Fatalf("expression refuses %q and %q*, want %q and %q*", exact, prefix, key, key+"/")
	}
	refused := func(k string) bool { return k == exact || strings.HasPrefix(k, prefix) }
	// Every key NRI reads as the toleration is refused, whatever the value.
	for _, k := range []string{key, key + "/pod", key + "/container.app", key + "/container."} {
		pod := &api.PodSandbox{Annotations: map[string]string{k: "true"}}
		if _, ok := plugin.GetEffectiveAnnotation(pod, key, strings.TrimPrefix(k, key+"/container.")); !ok {
			t.Errorf("NRI does not read %q as the toleration: update this test", k)
		}
		if !refused(k) {
			t.Errorf("%q admitted", k)
		}
	}
	for _, k := range []string{"tolerate-missing-nri-plugins.noderesource.dev.example/x", "required-plugins.noderesource.dev", "example.com/" + key} {
		if refused(k) {
			t.Errorf("unrelated key %q refused", k)
		}
	}
}
