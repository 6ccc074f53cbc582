package running

import (
	"os"
	"path/filepath"
	"testing"
)

// The state files come from root-owned runtime directories, but a
// compromised or buggy runtime writes them: malformed input is an error,
// never a panic, and never a state without the fields liveness needs.

func FuzzParseRuncState(f *testing.F) {
	for _, p := range seedFiles(f, "state.json") {
		f.Add(p)
	}
	f.Add([]byte(`{"id":"a","init_process_pid":1,"init_process_start":"2","config":{"labels":["bundle=/b"]}}`))
	f.Add([]byte(`{"id":"a","init_process_pid":1,"init_process_start":2,"config":{"labels":["bundle=b/../c"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseRuncState(data)
		if err != nil {
			return
		}
		if st.ID == "" || st.Bundle == "" || st.Bundle[0] != '/' || st.InitPid < 0 {
			t.Fatalf("accepted an incomplete state: %+v", st)
		}
	})
}

func FuzzParseProcStat(f *testing.F) {
	for _, p := range seedFiles(f, "stat") {
		f.Add(p)
	}
	f.Add([]byte("1 (a) b) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := ParseProcStat(data); err != nil {
			return
		}
	})
}

func FuzzParseSmall(f *testing.F) {
	f.Add([]byte("1234"))
	f.Add([]byte(`{"root":"/run/x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if pid, err := ParsePidFile(data); err == nil && pid <= 0 {
			t.Fatalf("pid %d accepted", pid)
		}
		if root, err := ParseShimOptions(data); err == nil && root != "" && root[0] != '/' {
			t.Fatalf("relative root %q accepted", root)
		}
	})
}

// seedFiles returns the contents of every file called name in testdata.
func seedFiles(tb testing.TB, name string) [][]byte {
	var out [][]byte
	_ = filepath.WalkDir("testdata", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == name {
			if b, err := os.ReadFile(p); err == nil {
				out = append(out, b)
			}
		}
		return nil
	})
	return out
}

func FuzzParseStorageNames(f *testing.F) {
	for _, p := range seedFiles(f, "containers.json") {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for id, name := range ParseStorageNames(data) {
			if id == "" || name == "" {
				t.Fatalf("empty id or name: %q %q", id, name)
			}
		}
	})
}
