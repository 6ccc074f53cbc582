// Package release checks what `make release` builds (scripts/release.sh): every
// binary is a static ELF executable for its architecture, sha256sums covers
// each one, and each has a CycloneDX SBOM; and the image archive make image
// writes (image_test.go). With PATCHGATE_DIST set it checks that directory
// (make release, make image); otherwise it runs the release build, and the
// image build where podman can run, into a temporary directory first (make
// unit).
package release

import (
	"bufio"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// built is the release (and image) the tests build when PATCHGATE_DIST is
// unset, once for all of them; TestMain removes it.
var built struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// distDir is PATCHGATE_DIST, or a temporary directory the release build
// (scripts/release.sh), then the image build (scripts/image.sh) where
// podman can run, has written.
func distDir(t *testing.T) string {
	t.Helper()
	if dist := os.Getenv("PATCHGATE_DIST"); dist != "" {
		return dist
	}
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "patchgate-dist-"); built.err != nil {
			return
		}
		built.err = runScript(built.dir, "../../scripts/release.sh")
		if built.err == nil && imageBuildable() == nil {
			built.err = runScript(built.dir, "../../scripts/image.sh")
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir
}

func runScript(dist, script string) error {
	cmd := exec.Command(script)
	cmd.Env = append(os.Environ(), "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", script, err, out)
	}
	return nil
}

func TestReleaseBinaries(t *testing.T) {
	dist := distDir(t)
	sums := readSums(t, filepath.Join(dist, "sha256sums"))
	for arch, machine := range machines {
		for _, cmd := range []string{"patchgate", "patchgate-hook"} {
			name := cmd + "-linux-" + arch
			t.Run(name, func(t *testing.T) {
				path := filepath.Join(dist, name)
				if err := checkStatic(path, machine); err != nil {
					t.Fatal(err)
				}
				for _, f := range []string{name, name + ".cdx.json"} {
					data, err := os.ReadFile(filepath.Join(dist, f))
					if err != nil {
						t.Fatal(err)
					}
					sum := sha256.Sum256(data)
					if got := sums[f]; got != hex.EncodeToString(sum[:]) {
						t.Errorf("sha256sums has %q for %s, the file's sum is %x", got, f, sum)
					}
				}
				checkSBOM(t, filepath.Join(dist, name+".cdx.json"), cmd)
			})
		}
	}
}

// checkStatic returns an error unless path is an ELF executable for machine
// with no program interpreter (PT_INTERP: the dynamic loader a libc-linked
// binary names) and no shared libraries.
func checkStatic(path string, machine elf.Machine) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	if f.Machine != machine {
		return fmt.Errorf("%s: machine %v, want %v", path, f.Machine, machine)
	}
	if f.Type != elf.ET_EXEC {
		return fmt.Errorf("%s: ELF type %v, want ET_EXEC", path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: has an ELF interpreter (PT_INTERP): dynamically linked", path)
		}
		if p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("%s: has a dynamic section (PT_DYNAMIC)", path)
		}
	}
	return nil
}

// A binary linked against glibc, as `go build` with cgo makes it, fails the
// check: the check can fail.
func TestCheckStaticRefusesDynamic(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no C compiler: cannot build a cgo binary here")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\n// int one(void) { return 1; }\nimport \"C\"\n\nfunc main() { _ = C.one() }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "dyn")
	cmd := exec.Command("go", "build", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	err := checkStatic(bin, elf.EM_X86_64)
	if err == nil || !strings.Contains(err.Error(), "PT_INTERP") && !strings.Contains(err.Error(), "machine") {
		t.Fatalf("checkStatic(cgo binary) = %v, want an interpreter error", err)
	}
}

func readSums(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			t.Fatalf("%s: bad line %q", path, sc.Text())
		}
		sums[name] = sum
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sums
}

// checkSBOM reads the CycloneDX JSON and checks it names the binary's main
// module and lists dependencies.
func checkSBOM(t *testing.T, path, cmd string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var bom struct {
		BOMFormat string `json:"bomFormat"`
		Metadata  struct {
			Component struct {
				Name string `json:"name"`
			} `json:"component"`
		} `json:"metadata"`
		Components []struct {
			Name string `json:"name"`
		} `json:"components"`
	}
	if err := json.Unmarshal(data, &bom); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if bom.BOMFormat != "CycloneDX" || bom.Metadata.Component.Name != "github.com/patchgate/patchgate" {
		t.Errorf("%s: bomFormat %q, main component %q", path, bom.BOMFormat, bom.Metadata.Component.Name)
	}
	// patchgate links NRI; the thin hook links only the standard library.
	hasNRI := false
	for _, c := range bom.Components {
		if c.Name == "github.com/containerd/nri" {
			hasNRI = true
		}
	}
	if want := cmd == "patchgate"; hasNRI != want {
		t.Errorf("%s: lists github.com/containerd/nri = %v, want %v", path, hasNRI, want)
	}
}
