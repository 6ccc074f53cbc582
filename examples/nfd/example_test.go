// Package nfd holds the Node Feature Discovery example; this test decodes
// the example pod strictly into the Kubernetes API type and checks that it
// selects the label NFD makes of patchgate's feature file.
package nfd

import (
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func TestNodeAffinityExample(t *testing.T) {
	b, err := os.ReadFile("nodeaffinity-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(b, &pod); err != nil {
		t.Fatalf("nodeaffinity-example.yaml: %v", err)
	}
	terms := pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchExpressions) != 1 {
		t.Fatalf("terms: %+v", terms)
	}
	e := terms[0].MatchExpressions[0]
	// nfd-worker's local source labels <name> from features.d as
	// feature.node.kubernetes.io/<name>; patchgate writes
	// patchgate.livepatch.compliant=true|false.
	if e.Key != "feature.node.kubernetes.io/patchgate.livepatch.compliant" || e.Operator != corev1.NodeSelectorOpIn || len(e.Values) != 1 || e.Values[0] != "true" {
		t.Errorf("match expression: %+v", e)
	}
}
