package policy

import "testing"

func TestAppArmor(t *testing.T) {
	testRuleOnFixtures(t, RuleAppArmor, []ruleFixtureCase{
		{"baseline", ""},
		{"apparmor-fail", `container "app" must not run AppArmor unconfined (process.apparmorProfile="unconfined")`},
		{"privileged-fail", `container "app" must set an AppArmor profile (process.apparmorProfile is empty)`},
	})
	testRuleDeferred(t, RuleAppArmor, FieldAppArmor)
}
