package policy

import (
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestSeccomp(t *testing.T) {
	testRuleOnFixtures(t, RuleSeccomp, []ruleFixtureCase{
		{"baseline", ""},
		{"seccomp-fail", `container "app" must not run seccomp unconfined (linux.seccomp is absent)`},
		{"privileged-fail", `container "app" must not run seccomp unconfined (linux.seccomp is absent)`},
	})
	testRuleDeferred(t, RuleSeccomp, FieldSeccomp)

	// A filter that allows everything and has no rules is unconfined too.
	spec := loadFixtureFile(t, filepath.Join(specsDir, "baseline", "config.json"))
	spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	w, err := FromSpec(spec, nil, FromSpecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, bad, _ := outcome(t, everyRuleEnforced(t), w, RuleSeccomp); !bad {
		t.Error("allow-all filter judged confined")
	}
}
