package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseKernelState(t *testing.T) {
	k := kernelFixture(t, "behind")
	if k.Release != "6.1.0-17-amd64" || len(k.Patches) != 1 || !k.Patches[0].Transition || k.UpdatesPending != nil {
		t.Errorf("behind.json: %+v", k)
	}
	// The check command's output, with the state under "kernel".
	wrapped := `{"compliant": false, "kernel": {"release": "6.1.0-18-amd64", "patches": [], "fixedCVEs": ["cve-2024-1086", "CVE-2023-0386"], "updatesPending": true, "observedAt": "2026-11-27T12:00:00Z"}, "violations": []}`
	k, err := ParseKernelState([]byte(wrapped))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(k.FixedCVEs, []string{"CVE-2023-0386", "CVE-2024-1086"}) || k.UpdatesPending == nil || !*k.UpdatesPending {
		t.Errorf("wrapped: %+v", k)
	}
	for _, tc := range []struct{ doc, want string }{
		{``, "unexpected end of JSON input"},
		{`[]`, "cannot unmarshal array"},
		{`null`, "not a JSON object"},
		{`{"release": "x", "observedAt": "2026-11-27T12:00:00Z", "patchez": []}`, `unknown field "patchez"`},
		{`{"release": "x"}`, "observedAt is missing"},
		{`{"release": "x", "observedAt": "2026-11-27T12:00:00Z"} {}`, "after top-level value"},
		{`{"release": "x", "observedAt": "2026-11-27T12:00:00Z", "patches": [{"name": ""}]}`, "patches[0]: name is empty"},
		{`{"release": "x", "observedAt": "2026-11-27T12:00:00Z", "fixedCVEs": ["RHSA-2024:1"]}`, `fixedCVEs[0]: "RHSA-2024:1" is not a CVE ID`},
		{`{"release": "x", "observedAt": "2026-11-27T12:00:00Z", "unknown": [{"part": "everything", "reason": "?"}]}`, `part "everything"`},
		{`{"release": "x", "observedAt": "2026-11-27T12:00:00Z", "distro": "apk"}`, `distro "apk"`},
		{`{"release": 6, "observedAt": "2026-11-27T12:00:00Z"}`, "cannot unmarshal number"},
	} {
		_, err := ParseKernelState([]byte(tc.doc))
		if !errors.Is(err, ErrInvalidKernelState) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.doc, err, tc.want)
		}
	}
}
