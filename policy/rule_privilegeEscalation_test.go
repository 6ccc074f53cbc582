package policy

import "testing"

func TestPrivilegeEscalation(t *testing.T) {
	testRuleOnFixtures(t, RulePrivilegeEscalation, []ruleFixtureCase{
		{"baseline", ""},
		{"privilegeEscalation-fail", `container "app" must set process.noNewPrivileges=true (allowPrivilegeEscalation=false)`},
	})
	testRuleDeferred(t, RulePrivilegeEscalation, FieldNoNewPrivileges)
}
