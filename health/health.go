// Package health serves patchgate's liveness and readiness probes in the
// shape kube-apiserver uses for its own /healthz, /livez and /readyz: a
// set of named checks, 200 "ok" when every check passes and 503 otherwise,
// one line per check with ?verbose (always on failure), and one check alone
// at <path>/<name>.
//
//	GET /readyz            200 "ok" | 503 "[-]runtime failed: ...\nreadyz check failed"
//	GET /readyz?verbose    every check, [+] or [-], with its reason
//	GET /readyz/runtime    that check alone (404 for a name it does not know)
//	GET /readyz?format=json {"status":"ok|failed","checks":[{"name","ok","reason"}]}
//
// The reasons are the checks' own sentences (states, ages, limits), never
// error text from files or the runtime: the listener may be reachable from
// the pod network.
package health

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Check is one named check. Run returns nil when the check passes, or the
// reason it fails; a passing check may add a note (detail) that verbose
// output shows.
type Check struct {
	Name string
	Run  func() (detail string, err error)
}

// CheckResult is one check's outcome.
type CheckResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
}

// Result is the outcome of a set of checks: OK when every check passed.
type Result struct {
	OK     bool          `json:"ok"`
	Checks []CheckResult `json:"checks"`
}

// Failed names the checks that failed with their reasons, "; "-separated
// ("" when none did).
func (r Result) Failed() string {
	var parts []string
	for _, c := range r.Checks {
		if !c.OK {
			parts = append(parts, c.Name+": "+oneLine(c.Reason))
		}
	}
	return strings.Join(parts, "; ")
}

// Evaluate runs the checks in order. No checks is OK.
func Evaluate(checks []Check) Result {
	r := Result{OK: true, Checks: make([]CheckResult, 0, len(checks))}
	for _, c := range checks {
		detail, err := c.Run()
		cr := CheckResult{Name: c.Name, OK: err == nil, Reason: detail}
		if err != nil {
			cr.Reason = err.Error()
			r.OK = false
		}
		r.Checks = append(r.Checks, cr)
	}
	return r
}

// Handler serves the checks that checks returns at every request, under
// path ("/healthz", "/readyz") and path/<name>. Mount it at both:
// mux.Handle(path, h) and mux.Handle(path+"/", h).
func Handler(path string, checks func() []Check) http.Handler {
	kind := strings.TrimPrefix(path, "/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		all := checks()
		sel := all
		if name, ok := strings.CutPrefix(r.URL.Path, path+"/"); ok && name != "" {
			sel = nil
			for _, c := range all {
				if c.Name == name {
					sel = []Check{c}
				}
			}
			if sel == nil {
				http.Error(w, kind+": no check named "+quote(name), http.StatusNotFound)
				return
			}
		} else if r.URL.Path != path && r.URL.Path != path+"/" {
			http.NotFound(w, r)
			return
		}
		res := Evaluate(sel)
		q := r.URL.Query()
		_, verbose := q["verbose"]
		status := http.StatusOK
		if !res.OK {
			status = http.StatusServiceUnavailable
		}
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		if q.Get("format") == "json" {
			h.Set("Content-Type", "application/json")
			w.WriteHeader(status)
			out := struct {
				Status string        `json:"status"`
				Checks []CheckResult `json:"checks"`
			}{Status: "ok", Checks: res.Checks}
			if !res.OK {
				out.Status = "failed"
			}
			_ = json.NewEncoder(w).Encode(out) // the client went away: nothing to do
			return
		}
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(Text(kind, res, verbose)))
	})
}

// Text is the plain-text body: "ok\n" when every check passed and verbose
// is off, else one line per check and a last line saying whether the
// kind's check (healthz, readyz) passed.
func Text(kind string, res Result, verbose bool) string {
	if res.OK && !verbose {
		return "ok\n"
	}
	var b strings.Builder
	for _, c := range res.Checks {
		switch {
		case c.OK && c.Reason != "":
			b.WriteString("[+]" + c.Name + " ok: " + oneLine(c.Reason) + "\n")
		case c.OK:
			b.WriteString("[+]" + c.Name + " ok\n")
		default:
			b.WriteString("[-]" + c.Name + " failed: " + oneLine(c.Reason) + "\n")
		}
	}
	if res.OK {
		b.WriteString(kind + " check passed\n")
	} else {
		b.WriteString(kind + " check failed\n")
	}
	return b.String()
}

// oneLine keeps a reason on its line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return "\"" + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return '?'
		}
		return r
	}, s) + "\""
}
