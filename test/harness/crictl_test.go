package harness

import "testing"

// The stderr below is what crictl v1.37.0 printed on this machine when containerd v2.4.2's
// default validator refused a create (recorded from TestHarnessNRIPluginAndRequiredPlugins).
const recordedCreateFailure = `E1127 15:12:31.611366    4739 remote_runtime.go:498] "CreateContainer in sandbox from runtime service failed" err="rpc error: code = Unknown desc = failed to create containerd container: failed to get NRI adjustment for container: validator \"00-default-validator\" rejected container adjustment, reason: validation error: required plugin \"harness-smoke\" not present" podSandboxID="6a81b20993cf7b815dab39d5bacfc98c6b4a65af71e33f1be89646ff5255a48c"
time="2026-11-27T15:12:31Z" level=error msg="creating container: rpc error: code = Unknown desc = failed to create containerd container: failed to get NRI adjustment for container: validator \"00-default-validator\" rejected container adjustment, reason: validation error: required plugin \"harness-smoke\" not present"
`

func TestErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		name, stderr, want string
	}{
		{"crictl create refused", recordedCreateFailure,
			`creating container: rpc error: code = Unknown desc = failed to create containerd container: failed to get NRI adjustment for container: validator "00-default-validator" rejected container adjustment, reason: validation error: required plugin "harness-smoke" not present`},
		{"fatal with escaped backslash", `time="x" level=fatal msg="a \\ b \"q\"" extra=1` + "\n", `a \ b "q"`},
		{"no logrus line", "  plain failure\n", "plain failure"},
		{"unterminated quote falls back", `level=error msg="abc`, `level=error msg="abc`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Result{Stderr: tc.stderr, ExitCode: 1}).ErrorMessage(); got != tc.want {
				t.Fatalf("ErrorMessage() = %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestFilterWarnings(t *testing.T) {
	in := "time=\"2026-11-27T15:00:00Z\" level=warning msg=\"The support for cgroup v1 is deprecated since containerd v2.2 and will be removed by no later than May 2029. Upgrade the host to use cgroup v2.\"\nreal error\n"
	if got := FilterWarnings(in); got != "real error\n" {
		t.Fatalf("FilterWarnings = %q", got)
	}
	if got := FilterWarnings("untouched\n"); got != "untouched\n" {
		t.Fatalf("FilterWarnings = %q", got)
	}
}
