package service

import (
	"path/filepath"
	"testing"

	"github.com/patchgate/patchgate/metrics"
)

// gaugeValue reads one unlabelled gauge from the registry, as a scrape would.
func gaugeValue(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 && mf.GetMetric()[0].GetGauge() != nil {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// TestReloadAndBaseSpecMetrics: patchgate_policy_reload_failed follows the
// last reload (the chart's PatchgatePolicyReloadFailing alert) and
// patchgate_base_spec_missing counts the runtime handlers the plugin reports
// without patchgate's base-spec hook (PatchgateBaseSpecMissing).
func TestReloadAndBaseSpecMetrics(t *testing.T) {
	e := newTestEnv(t)
	m := metrics.New()
	e.start(t, WithMetrics(m, ""))
	check := func(name string, want float64) {
		t.Helper()
		if got := gaugeValue(t, m, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	main := filepath.Join(e.policyDir, "policy.yaml")
	check("patchgate_policy_reload_failed", 0)
	writeFile(t, main, policyNamed("second")+"  bogusKey: 1\n", 0o644)
	e.svc.checkPolicy()
	check("patchgate_policy_reload_failed", 1)
	writeFile(t, main, policyNamed("second"), 0o644)
	e.svc.checkPolicy()
	check("patchgate_policy_reload_failed", 0)

	check("patchgate_base_spec_missing", 0)
	e.svc.SetRuntime(RuntimeConnection{State: "connected", Mode: "validator", BaseSpecMissing: []string{"kata", "runsc"}})
	check("patchgate_base_spec_missing", 2)
	e.svc.SetRuntime(RuntimeConnection{State: "connected", Mode: "validator"})
	check("patchgate_base_spec_missing", 0)
}
