//go:build e2e

package hooke2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchgate/patchgate/hook"
)

// TestRuncAmbiguousSpec: config.json files that runc (encoding/json: keys
// matched without regard to case, Unicode simple folding, last value
// wins) reads as a root container while the first "process" says uid 1000,
// a symlinked config.json and an oversized one, run by real runc through
// the thin hook, with the service up (it reads the bundle, refuses it and
// hands over to the full decision) and down (the full decision alone).
// Each must be refused; the compliant control runs.
func TestRuncAmbiguousSpec(t *testing.T) {
	needTools(t, "runc")
	for _, mode := range []string{"service-down", "service-up"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			if mode == "service-up" {
				e.startService()
			}
			e.useHookBin = true
			rfs := rootfs(t)
			rootProc := func(t *testing.T, bundle string) map[string]any {
				data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
				if err != nil {
					t.Fatal(err)
				}
				var spec map[string]any
				if err := json.Unmarshal(data, &spec); err != nil {
					t.Fatal(err)
				}
				proc := spec["process"].(map[string]any)
				proc["user"] = map[string]any{"uid": 0, "gid": 0}
				return proc
			}
			// appendKey adds key: v as the last member of config.json.
			appendKey := func(t *testing.T, bundle, key string, v any) {
				p := filepath.Join(bundle, "config.json")
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				data = bytes.TrimSuffix(bytes.TrimSpace(data), []byte("}"))
				val, _ := json.Marshal(v)
				data = append(append(append(data, fmt.Sprintf(",%q:", key)...), val...), '}')
				if err := os.WriteFile(p, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, tc := range []struct {
				name string
				edit func(t *testing.T, bundle string)
				want []string
			}{
				{"compliant", func(*testing.T, string) {}, nil},
				{"long-s process", func(t *testing.T, b string) { appendKey(t, b, "proceſs", rootProc(t, b)) }, []string{"ambiguous JSON key", "proceſs"}},
				{"Process", func(t *testing.T, b string) { appendKey(t, b, "Process", rootProc(t, b)) }, []string{"ambiguous JSON key"}},
				{"process twice", func(t *testing.T, b string) { appendKey(t, b, "process", rootProc(t, b)) }, []string{"ambiguous JSON key"}},
				{"escaped process", func(t *testing.T, b string) { appendKey(t, b, `proc\u0065ss`, rootProc(t, b)) }, nil},
				{"symlinked config.json", func(t *testing.T, b string) {
					p := filepath.Join(b, "config.json")
					if err := os.Rename(p, filepath.Join(b, "real.json")); err != nil {
						t.Fatal(err)
					}
					if err := os.Symlink("real.json", p); err != nil {
						t.Fatal(err)
					}
				}, []string{"config.json"}},
				{"oversized", func(t *testing.T, b string) {
					appendKey(t, b, "annotations", map[string]string{"pad": string(bytes.Repeat([]byte("a"), hook.MaxSpecBytes))})
				}, []string{"more than"}},
			} {
				if tc.name == "escaped process" {
					// %q would escape the backslash: write the escape by hand.
					tc.edit = func(t *testing.T, b string) {
						p := filepath.Join(b, "config.json")
						data, _ := os.ReadFile(p)
						data = bytes.TrimSuffix(bytes.TrimSpace(data), []byte("}"))
						val, _ := json.Marshal(rootProc(t, b))
						data = append(append(append(data, `,"proc\u0065ss":`...), val...), '}')
						if err := os.WriteFile(p, data, 0o600); err != nil {
							t.Fatal(err)
						}
					}
					tc.want = []string{"ambiguous JSON key"}
				}
				bundle := e.runcBundle(t, rfs, setUser(1000))
				tc.edit(t, bundle)
				id := fmt.Sprintf("pg-amb-%d", time.Now().UnixNano())
				out, err := e.runcRun(t, bundle, id)
				checkRefusal(t, mode+" "+tc.name, out, err, tc.want)
			}
		})
	}
}
