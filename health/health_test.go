package health

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func checks(failing ...string) func() []Check {
	return func() []Check {
		var cs []Check
		for _, name := range []string{"runtime", "policy", "kernel-state"} {
			fail := false
			for _, f := range failing {
				fail = fail || f == name
			}
			cs = append(cs, Check{Name: name, Run: func() (string, error) {
				if fail {
					return "", errors.New(name + " is\nbroken")
				}
				if name == "policy" {
					return "default (sha256:ab)", nil
				}
				return "", nil
			}})
		}
		return cs
	}
}

func get(t *testing.T, h http.Handler, method, target string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Code, rec.Body.String(), rec.Header()
}

func TestHandler(t *testing.T) {
	for _, tc := range []struct {
		name    string
		failing []string
		target  string
		code    int
		body    string
	}{
		{"all ok", nil, "/readyz", 200, "ok\n"},
		{"all ok, trailing slash", nil, "/readyz/", 200, "ok\n"},
		{"verbose ok", nil, "/readyz?verbose", 200,
			"[+]runtime ok\n[+]policy ok: default (sha256:ab)\n[+]kernel-state ok\nreadyz check passed\n"},
		{"one failing: every check listed with the reason on one line", []string{"kernel-state"}, "/readyz", 503,
			"[+]runtime ok\n[+]policy ok: default (sha256:ab)\n[-]kernel-state failed: kernel-state is broken\nreadyz check failed\n"},
		{"one check alone, passing while another fails", []string{"kernel-state"}, "/readyz/runtime", 200, "ok\n"},
		{"one check alone, failing", []string{"runtime"}, "/readyz/runtime", 503,
			"[-]runtime failed: runtime is broken\nreadyz check failed\n"},
		{"unknown check", nil, "/readyz/etcd", 404, "readyz: no check named \"etcd\"\n"},
		{"unknown path", nil, "/readyzz", 404, "404 page not found\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, hdr := get(t, Handler("/readyz", checks(tc.failing...)), "GET", tc.target)
			if code != tc.code || body != tc.body {
				t.Errorf("GET %s = %d %q, want %d %q", tc.target, code, body, tc.code, tc.body)
			}
			if code != 404 {
				if hdr.Get("Cache-Control") != "no-store" || hdr.Get("Content-Type") != "text/plain; charset=utf-8" {
					t.Errorf("headers %v", hdr)
				}
			}
		})
	}
}

func TestHandlerJSON(t *testing.T) {
	code, body, hdr := get(t, Handler("/healthz", checks("policy")), "GET", "/healthz?format=json")
	if code != 503 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("= %d %s", code, hdr.Get("Content-Type"))
	}
	var out struct {
		Status string        `json:"status"`
		Checks []CheckResult `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	want := []CheckResult{{"runtime", true, ""}, {"policy", false, "policy is\nbroken"}, {"kernel-state", true, ""}}
	if out.Status != "failed" || len(out.Checks) != 3 || out.Checks[0] != want[0] || out.Checks[1] != want[1] || out.Checks[2] != want[2] {
		t.Errorf("body %s", body)
	}
}

func TestHandlerMethods(t *testing.T) {
	h := Handler("/healthz", checks())
	if code, _, _ := get(t, h, "HEAD", "/healthz"); code != 200 {
		t.Errorf("HEAD = %d", code)
	}
	if code, _, hdr := get(t, h, "POST", "/healthz"); code != 405 || hdr.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST = %d, Allow %q", code, hdr.Get("Allow"))
	}
}

// TestChecksEvaluatedPerRequest: the checks function is called at every
// request, so a state change shows at the next probe.
func TestChecksEvaluatedPerRequest(t *testing.T) {
	broken := false
	h := Handler("/readyz", func() []Check {
		return []Check{{Name: "x", Run: func() (string, error) {
			if broken {
				return "", errors.New("down")
			}
			return "", nil
		}}}
	})
	if code, _, _ := get(t, h, "GET", "/readyz"); code != 200 {
		t.Fatalf("= %d", code)
	}
	broken = true
	if code, body, _ := get(t, h, "GET", "/readyz"); code != 503 || !strings.Contains(body, "[-]x failed: down") {
		t.Fatalf("= %d %q", code, body)
	}
}

func TestEvaluateAndFailed(t *testing.T) {
	if r := Evaluate(nil); !r.OK || r.Failed() != "" {
		t.Errorf("no checks: %+v", r)
	}
	r := Evaluate(checks("runtime", "kernel-state")())
	if r.OK || r.Failed() != "runtime: runtime is broken; kernel-state: kernel-state is broken" {
		t.Errorf("%+v %q", r, r.Failed())
	}
}
