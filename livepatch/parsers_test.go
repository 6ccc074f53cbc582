package livepatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func recorded(t testing.TB, host, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "hosts", host, "recorded", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sosreportKpatchList is the sample output of an early kpatch (0.1, RHEL 7)
// quoted in sosreport/sos issue #411: no [state], file names in the
// installed section.
const sosreportKpatchList = `Loaded patch modules:
kpatch_0_2_test_2013_05_30_el7

Installed patch modules:
kpatch-0-2-test_2013_05_30-el7.ko (3.10.0-121.el7.x86_64)
kpatch-0-2-test_2013_05_30-el7.ko (3.10.0-123.el7.x86_64)
`

func TestParseKpatchList(t *testing.T) {
	cases := []struct {
		name      string
		in        []byte
		loaded    []KpatchModule
		installed []KpatchModule
	}{
		{"rhel8", recorded(t, "rhel8-kpatch", "kpatch-list.out"),
			[]KpatchModule{{Name: "kpatch_4_18_0_513_9_1_1_1", State: "enabled"}},
			[]KpatchModule{
				{Name: "kpatch_4_18_0_477_27_1_1_2", Kernel: "4.18.0-477.27.1.el8_8.x86_64"},
				{Name: "kpatch_4_18_0_513_9_1_1_1", Kernel: "4.18.0-513.9.1.el8_9.x86_64"},
				{Name: "kpatch_4_18_0_513_9_1_2_1", Kernel: "4.18.0-513.9.1.el8_9.x86_64"},
			}},
		{"rhel10 enabling with function table", recorded(t, "rhel10-kpatch-transition", "kpatch-list.out"),
			[]KpatchModule{{Name: "kpatch_6_12_0_55_9_1_1_1", State: "enabling..."}},
			[]KpatchModule{{Name: "kpatch_6_12_0_55_9_1_1_1", Kernel: "6.12.0-55.9.1.el10_0.x86_64"}}},
		{"old kpatch (sosreport #411)", []byte(sosreportKpatchList),
			[]KpatchModule{{Name: "kpatch_0_2_test_2013_05_30_el7", State: "enabled"}},
			[]KpatchModule{
				{Name: "kpatch_0_2_test_2013_05_30_el7", Kernel: "3.10.0-121.el7.x86_64"},
				{Name: "kpatch_0_2_test_2013_05_30_el7", Kernel: "3.10.0-123.el7.x86_64"},
			}},
		// print_patch_info with a disabling patch and stalled processes
		// (kpatch/kpatch show_stalled_processes).
		{"disabling, stalled", []byte("Loaded patch modules:\nkpatch_fix [disabling...]\nlivepatch_sample [disabled]\n\nStalled processes:\n1234 qemu-kvm\nstack:\n[<0>] do_wait+0x1f0/0x2f0\n\nInstalled patch modules:\n"),
			[]KpatchModule{{Name: "kpatch_fix", State: "disabling..."}, {Name: "livepatch_sample", State: "disabled"}}, nil},
		{"nothing loaded or installed", []byte("Loaded patch modules:\n\nInstalled patch modules:\n"), nil, nil},
	}
	for _, c := range cases {
		l, err := ParseKpatchList(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(l.Loaded, c.loaded) || !reflect.DeepEqual(l.Installed, c.installed) {
			t.Errorf("%s: got loaded %+v installed %+v", c.name, l.Loaded, l.Installed)
		}
	}
	for _, bad := range []string{
		"",
		"kpatch: command not found\n",
		"Installed patch modules:\nfoo (1.0)\n",
		"Loaded patch modules:\nkpatch_fix [weird]\n",
		"Loaded patch modules:\nkpatch fix\n",
		"Loaded patch modules:\n\nInstalled patch modules:\nkpatch_fix\n",
		"Loaded patch modules:\n\ngarbage between sections\n",
	} {
		if _, err := ParseKpatchList([]byte(bad)); !errors.Is(err, ErrParse) {
			t.Errorf("ParseKpatchList(%q) error = %v, want ErrParse", bad, err)
		}
	}
}

// debianKcareInfo was printed by kcarectl --info on Debian 8 (a habr.com
// article on KernelCare, quoted in a public repository).
const debianKcareInfo = `kpatch-state: patch is applied
kpatch-for: Linux version 3.16.0-4-amd64 (debian-kernel@lists.debian.org) (gcc version 4.8.4 (Debian 4.8.4-1) ) #1 SMP Debian 3.16.7-ckt25-2+deb8u3 (2016-07-02)
kpatch-build-time: Fri Oct 21 02:05:59 2016
kpatch-description: 3;3.16.36-1+deb8u2
`

func TestParseKcareInfo(t *testing.T) {
	for _, c := range []struct {
		in                      string
		applied                 bool
		level, effective, start string
	}{
		{string(recorded(t, "ubuntu20-kernelcare", "kcarectl-info.out")), true, "1-:1615812815", "5.4.0-1028.31", "Linux version 5.4.0-1028-raspi"},
		{debianKcareInfo, true, "3", "3.16.36-1+deb8u2", "Linux version 3.16.0-4-amd64"},
		{"kpatch-state: patch is not applied\n", false, "", "", ""},
	} {
		info, err := ParseKcareInfo([]byte(c.in))
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if info.Applied() != c.applied || info.Level != c.level || info.EffectiveVersion != c.effective || !strings.HasPrefix(info.For, c.start) {
			t.Errorf("ParseKcareInfo = %+v", info)
		}
	}
	for _, bad := range []string{"", "Unknown kernel\n", "kpatch-for: x\n", "no colon here\n"} {
		if _, err := ParseKcareInfo([]byte(bad)); !errors.Is(err, ErrParse) {
			t.Errorf("ParseKcareInfo(%q) error = %v, want ErrParse", bad, err)
		}
	}
}

// docsKcarePatchInfo is the kcarectl --patch-info example of TuxCare's
// documentation ("Extra patchset"), byte for byte, separators included (a
// line holding one space).
const docsKcarePatchInfo = "OS: centos6\nkernel: kernel-2.6.32-696.6.3.el6\ntime: 2017-07-31 22:46:22\nuname: 2.6.32-696.6.3.el6\n \n" +
	"kpatch-name: 2.6.32/symlink-protection.patch\nkpatch-description: symlink protection // If you see this patch, it mean that you can enable symlink protection.\nkpatch-kernel: kernel-2.6.32-279.2.1.el6\nkpatch-cve: N/A\nkpatch-cvss: N/A\nkpatch-cve-url: N/A\nkpatch-patch-url: https://gerrit.cloudlinux.com/#/c/16508/\n \n" +
	"kpatch-name: 2.6.32/symlink-protection.kpatch-1.patch\nkpatch-description: symlink protection (kpatch adaptation)\nkpatch-kernel: kernel-2.6.32-279.2.1.el6\nkpatch-cve: N/A\nkpatch-cvss: N/A\nkpatch-cve-url: N/A\nkpatch-patch-url: https://gerrit.cloudlinux.com/#/c/16508/\n \n" +
	"kpatch-name: 2.6.32/ipset-fix-list-shrinking.patch\nkpatch-description: fix ipset list shrinking for no reason\nkpatch-kernel: N/A\nkpatch-cve: N/A\nkpatch-cvss: N/A\nkpatch-cve-url: N/A\nkpatch-patch-url: https://bugs.centos.org/view.php?id=13499\n"

func TestParseKcarePatchInfo(t *testing.T) {
	pi, err := ParseKcarePatchInfo([]byte(docsKcarePatchInfo))
	if err != nil {
		t.Fatal(err)
	}
	if pi.Uname != "2.6.32-696.6.3.el6" || len(pi.Patches) != 3 || pi.Patches[2].Name != "2.6.32/ipset-fix-list-shrinking.patch" {
		t.Errorf("docs sample: %+v", pi)
	}
	for _, p := range pi.Patches {
		if len(p.CVEs) != 0 {
			t.Errorf("N/A gave CVEs %v", p.CVEs)
		}
	}
	pi, err = ParseKcarePatchInfo(recorded(t, "ubuntu20-kernelcare", "kcarectl-patch-info.out"))
	if err != nil {
		t.Fatal(err)
	}
	var cves []string
	for _, p := range pi.Patches {
		cves = append(cves, p.CVEs...)
	}
	if !reflect.DeepEqual(cves, []string{"CVE-2020-29374", "CVE-2021-3347"}) {
		t.Errorf("CVEs = %v", cves)
	}
	// A kpatch-cve line listing several IDs, any case.
	pi, err = ParseKcarePatchInfo([]byte("kpatch-name: x.patch\nkpatch-cve: cve-2022-0001 CVE-2022-0002\n"))
	if err != nil || !reflect.DeepEqual(pi.Patches[0].CVEs, []string{"CVE-2022-0001", "CVE-2022-0002"}) {
		t.Errorf("multi-CVE line: %+v, %v", pi, err)
	}
	for _, bad := range []string{"kpatch-cve: CVE-2022-0001\n", "not a key value line\n"} {
		if _, err := ParseKcarePatchInfo([]byte(bad)); !errors.Is(err, ErrParse) {
			t.Errorf("ParseKcarePatchInfo(%q) error = %v, want ErrParse", bad, err)
		}
	}
}

func TestParseKcareEffectiveVersion(t *testing.T) {
	for in, want := range map[string]string{
		"5.4.0-1028.31\n": "5.4.0-1028.31",
		"Linux version 4.18.0-513.24.1.el8_9.x86_64 (mockbuild@iad1-prod-build001.bld.equ.rockylinux.org) (gcc version 8.5.0 20210514 (Red Hat 8.5.0-20) (GCC)) #1 SMP Thu Apr 4 18:13:02 UTC 2024\n": "4.18.0-513.24.1.el8_9.x86_64",
	} {
		got, err := ParseKcareEffectiveVersion([]byte(in))
		if err != nil || got != want {
			t.Errorf("ParseKcareEffectiveVersion(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "two words\n", "Linux version\n"} {
		if _, err := ParseKcareEffectiveVersion([]byte(bad)); !errors.Is(err, ErrParse) {
			t.Errorf("ParseKcareEffectiveVersion(%q) error = %v, want ErrParse", bad, err)
		}
	}
}

// docsCanonicalYAML is `canonical-livepatch status --format yaml` (client
// 10.8.3) from the Ubuntu Pro client tutorial (canonical/ubuntu-pro-client,
// docs), de-indented from the reStructuredText block.
const docsCanonicalYAML = `client-version: 10.8.3
machine-id: [...]
architecture: amd64
cpu-model: [...]
last-check: 2024-06-20T09:05:18+01:00
boot-time: 2024-06-19T13:14:30Z
uptime: 19h19m56s
status:
- kernel: 4.15.0-212.223-generic
  running: true
  livepatch:
    checkState: checked
    patchState: applied
    version: "102.1"
    fixes: |-
      * CVE-2023-31436
      * CVE-2023-34319
      * CVE-2023-3611
      * CVE-2023-3776
      * CVE-2023-40283
      * CVE-2023-42752
      * CVE-2023-42753
      * CVE-2023-4622
      * CVE-2023-4623
      * CVE-2023-4881
      * CVE-2023-51781
      * CVE-2023-6932
      * CVE-2023-7192
      * CVE-2024-1086
  supported: supported
  upgradeRequiredDate: "2024-06-23"
tier: updates
cloud-enabled:
  cloud-enabled: true
  cloud: multipass
  region: ""
  az: ""
`

// ubuntuAdvantageStatus is LIVEPATCH_ENABLED_STATUS of
// ubuntu-advantage-script's tests/fakes.py, with its check and patch states.
func ubuntuAdvantageStatus(check, patch string) string {
	return "client-version: \"7.23\"\nstatus:\n- kernel: 4.4.0-87.110-generic\n  running: true\n  livepatch:\n    checkState: " + check + "\n    patchState: " + patch + "\n"
}

func TestParseCanonicalStatus(t *testing.T) {
	st, err := ParseCanonicalStatus(recorded(t, "ubuntu18-canonical-json", "canonical-livepatch-status.json"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Kernel != "4.15.0-212.223-generic" || !st.Running || st.State != "applied" || st.CheckState != "checked" || st.Version != "102.1" || st.Supported != "supported" || len(st.FixedCVEs) != 14 || st.FixedCVEs[0] != "CVE-2023-31436" {
		t.Errorf("JSON: %+v", st)
	}
	yamlSt, err := ParseCanonicalStatus([]byte(docsCanonicalYAML))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(yamlSt, st) {
		t.Errorf("the YAML and JSON forms of the same status differ:\n%+v\n%+v", yamlSt, st)
	}
	st, err = ParseCanonicalStatus(recorded(t, "ubuntu16-canonical-yaml", "canonical-livepatch-status.yaml"))
	if err != nil || st.State != "applied" || st.Version != "33.2" || !reflect.DeepEqual(st.FixedCVEs, []string{"CVE-2015-7837", "CVE-2016-0758"}) {
		t.Errorf("old YAML: %+v, %v", st, err)
	}
	for _, c := range []struct{ check, patch string }{
		{"checked", "unapplied"}, {"checked", "applied-with-bug"}, {"checked", "nothing-to-apply"},
		{"checked", "apply-failed"}, {"checked", "applying"}, {"needs-check", "does not matter"}, {"check-failed", "does not matter"},
	} {
		st, err := ParseCanonicalStatus([]byte(ubuntuAdvantageStatus(c.check, c.patch)))
		if err != nil || st.CheckState != c.check || st.State != c.patch {
			t.Errorf("%v: %+v, %v", c, st, err)
		}
	}
	// canonical/ubuntu-pro-client uaclient/tests/test_livepatch.py cases.
	st, err = ParseCanonicalStatus([]byte(`{"Status": [{"Kernel": "installed-kernel-generic", "Livepatch": {"State": "applied", "Fixes": [{"Name": "cve-example", "Description": "", "Bug": "", "Patched": true}]}}]}`))
	if err != nil || st.State != "applied" || len(st.FixedCVEs) != 0 {
		t.Errorf("non-CVE fix name: %+v, %v", st, err)
	}
	st, err = ParseCanonicalStatus([]byte(`{"Status": [{"Supported": "supported"}]}`))
	if err != nil || st.Supported != "supported" || st.State != "" {
		t.Errorf("Supported only: %+v, %v", st, err)
	}
	for _, bad := range []string{"", "{", "{}", `{"Status": false}`, `{"Status": []}`, "Machine is not enabled. Please run 'sudo canonical-livepatch enable' with the\ntoken obtained from https://ubuntu.com/livepatch.\n", `{"Status": [{"Livepatch": {"Fixes": 7}}]}`, `{"Status": []} {}`} {
		if _, err := ParseCanonicalStatus([]byte(bad)); !errors.Is(err, ErrParse) {
			t.Errorf("ParseCanonicalStatus(%q) error = %v, want ErrParse", bad, err)
		}
	}
}

func TestParseUptrackShow(t *testing.T) {
	s, err := ParseUptrackShow(recorded(t, "ol6-ksplice", "uptrack-show.out"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Heading != "Installed updates:" || len(s.Updates) != 22 || s.EffectiveVersion != "4.1.12-124.26.5.el6uek" || s.Updates[2] != (UptrackUpdate{"brasm60x", "CVE-2019-5489: Side-channel information leak in kernel page cache."}) {
		t.Errorf("recorded: %+v", s)
	}
	// An Ubuntu desktop with Ksplice (Ubuntu forums post, 2023).
	s, err = ParseUptrackShow([]byte("Installed updates:\n[r9hrmw28] Enablement update for live patching.\n[qeibbp29] Provide an interface to freeze tasks.\n[5r11iivt] Denial-of-service when checking if an address is a jump label.\n\nEffective kernel version is 5.15.0-89.99\n"))
	if err != nil || len(s.Updates) != 3 || s.EffectiveVersion != "5.15.0-89.99" {
		t.Errorf("ubuntu: %+v, %v", s, err)
	}
	s, err = ParseUptrackShow(recorded(t, "ol6-ksplice", "uptrack-show-available-none.out"))
	if err != nil || s.Heading != "Available updates:" || len(s.Updates) != 0 {
		t.Errorf("none available: %+v, %v", s, err)
	}
	// No effective version line when nothing was ever installed.
	s, err = ParseUptrackShow([]byte("Installed updates:\nNone\n"))
	if err != nil || len(s.Updates) != 0 || s.EffectiveVersion != "" {
		t.Errorf("none installed: %+v, %v", s, err)
	}
	for _, bad := range []string{"", "uptrack-show: command not found\n", "Installed updates:\nnot an update\n", "Installed updates:\n\nEffective kernel version is \n", "Installed updates:\n\nEffective kernel version is a b\n"} {
		if _, err := ParseUptrackShow([]byte(bad)); !errors.Is(err, ErrParse) {
			t.Errorf("ParseUptrackShow(%q) error = %v, want ErrParse", bad, err)
		}
	}
}

func TestCVEs(t *testing.T) {
	got := CVEs("CVE-2019-11091, cve-2018-12126 and CVE-2018-1 XSA-300 CVE-2019-11477: x")
	if !reflect.DeepEqual(got, []string{"CVE-2019-11091", "CVE-2018-12126", "CVE-2019-11477"}) {
		t.Errorf("CVEs = %v", got)
	}
}

func TestProcVersionAndOSRelease(t *testing.T) {
	rel, err := ParseProcVersion([]byte("Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)\n"))
	if err != nil || rel != "6.1.0-18-amd64" {
		t.Errorf("ParseProcVersion = %q, %v", rel, err)
	}
	if _, err := ParseProcVersion([]byte("FreeBSD 14\n")); !errors.Is(err, ErrParse) {
		t.Errorf("ParseProcVersion(FreeBSD) error = %v", err)
	}
	for in, want := range map[string]string{
		"ID=debian\n":                                        "dpkg",
		"ID=ubuntu\nID_LIKE=debian\n":                        "dpkg",
		"ID=\"rhel\"\nID_LIKE=\"fedora\"\n":                  "rpm",
		"ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n":     "rpm",
		"ID=\"almalinux\"\nID_LIKE=\"rhel centos fedora\"\n": "rpm",
		"ID=\"amzn\"\nID_LIKE=\"fedora\"\n":                  "rpm",
		"ID=\"sles\"\nID_LIKE=\"suse\"\n":                    "rpm",
		"ID=\"ol\"\nID_LIKE=\"fedora\"\n":                    "rpm",
		"ID=alpine\n":                                        "",
		"":                                                   "",
	} {
		if got := FamilyFromOSRelease([]byte(in)); got != want {
			t.Errorf("FamilyFromOSRelease(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseKpatchList(f *testing.F) {
	f.Add(recorded(f, "rhel8-kpatch", "kpatch-list.out"))
	f.Add(recorded(f, "rhel10-kpatch-transition", "kpatch-list.out"))
	f.Add([]byte(sosreportKpatchList))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseKpatchList(b)
		if err != nil {
			return
		}
		for _, m := range append(l.Loaded, l.Installed...) {
			if m.Name == "" || strings.ContainsAny(m.Name, " -") {
				t.Fatalf("bad module name %q", m.Name)
			}
		}
		for _, m := range l.Loaded {
			switch m.State {
			case "enabled", "disabled", "enabling...", "disabling...":
			default:
				t.Fatalf("bad state %q", m.State)
			}
		}
	})
}

func FuzzParseKcareInfo(f *testing.F) {
	f.Add(recorded(f, "ubuntu20-kernelcare", "kcarectl-info.out"))
	f.Add([]byte(debianKcareInfo))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ParseKcareInfo(b)
		if err == nil && info.Applied() && info.State != "patch is applied" {
			t.Fatal("applied without the applied state")
		}
	})
}

func FuzzParseKcarePatchInfo(f *testing.F) {
	f.Add(recorded(f, "ubuntu20-kernelcare", "kcarectl-patch-info.out"))
	f.Add([]byte(docsKcarePatchInfo))
	f.Fuzz(func(t *testing.T, b []byte) {
		pi, err := ParseKcarePatchInfo(b)
		if err != nil {
			return
		}
		for _, p := range pi.Patches {
			for _, c := range p.CVEs {
				if c != strings.ToUpper(c) || !strings.HasPrefix(c, "CVE-") {
					t.Fatalf("CVE %q", c)
				}
			}
		}
	})
}

func FuzzParseKcareEffectiveVersion(f *testing.F) {
	f.Add([]byte("5.4.0-1028.31\n"))
	f.Add([]byte("Linux version 4.18.0-513.24.1.el8_9.x86_64 (x) #1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseKcareEffectiveVersion(b)
		if err == nil && (v == "" || strings.ContainsAny(v, " \t\n")) {
			t.Fatalf("version %q", v)
		}
	})
}

func FuzzParseCanonicalStatus(f *testing.F) {
	f.Add(recorded(f, "ubuntu18-canonical-json", "canonical-livepatch-status.json"))
	f.Add(recorded(f, "ubuntu16-canonical-yaml", "canonical-livepatch-status.yaml"))
	f.Add([]byte(docsCanonicalYAML))
	f.Add([]byte(`{"Status": [{}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseCanonicalStatus(b)
		if err != nil {
			return
		}
		for _, c := range st.FixedCVEs {
			if c != strings.ToUpper(c) {
				t.Fatalf("CVE %q not upper case", c)
			}
		}
	})
}

func FuzzParseUptrackShow(f *testing.F) {
	f.Add(recorded(f, "ol6-ksplice", "uptrack-show.out"))
	f.Add(recorded(f, "ol6-ksplice", "uptrack-show-available.out"))
	f.Add(recorded(f, "ol6-ksplice", "uptrack-show-available-none.out"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseUptrackShow(b)
		if err != nil {
			return
		}
		if s.Heading != "Installed updates:" && s.Heading != "Available updates:" {
			t.Fatalf("heading %q", s.Heading)
		}
		for _, u := range s.Updates {
			if u.ID == "" || u.Name == "" {
				t.Fatalf("update %+v", u)
			}
		}
	})
}

func FuzzSysfsFlagAndProcVersion(f *testing.F) {
	f.Add([]byte("1\n"))
	f.Add([]byte("Linux version 6.1.0-18-amd64 (x)\n"))
	f.Add([]byte("ID=debian\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := parseFlag(b); err == nil && strings.TrimSpace(string(b)) != map[bool]string{true: "1", false: "0"}[v] {
			t.Fatalf("parseFlag(%q) = %v", b, v)
		}
		if rel, err := ParseProcVersion(b); err == nil && rel == "" {
			t.Fatal("empty release")
		}
		switch FamilyFromOSRelease(b) {
		case "", "dpkg", "rpm":
		default:
			t.Fatal("bad family")
		}
	})
}

func TestParseKlpStatus(t *testing.T) {
	for in, want := range map[string]string{"ready\n": "ready", "in_progress\n": "in_progress"} {
		if got, err := ParseKlpStatus([]byte(in)); err != nil || got != want {
			t.Errorf("ParseKlpStatus(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "READY\n", "ready in_progress\n", "klp: command not found\n"} {
		if _, err := ParseKlpStatus([]byte(bad)); !errors.Is(err, ErrParse) {
			t.Errorf("ParseKlpStatus(%q) error = %v", bad, err)
		}
	}
}

func FuzzParseKlpStatus(f *testing.F) {
	f.Add([]byte("ready\n"))
	f.Add([]byte("in_progress\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := ParseKlpStatus(b); err == nil && s != "ready" && s != "in_progress" {
			t.Fatalf("status %q", s)
		}
	})
}

// An old client that rejects --format: the provider asks again without it
// and parses the YAML.
func TestCanonicalFallsBackToYAML(t *testing.T) {
	root := copyTree(t, "ubuntu16-canonical-yaml")
	script := `#!/bin/sh
root="$(cd "$(dirname "$0")/../.." && pwd)"
case "$*" in
"status --verbose") cat "$root/recorded/canonical-livepatch-status.yaml" ;;
*) echo "unknown flag: --format" >&2; exit 2 ;;
esac
`
	if err := os.WriteFile(filepath.Join(root, "snap/bin/canonical-livepatch"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := Canonical{}.Read(context.Background(), &Env{HostRoot: root})
	if r.Failed || r.CanonicalState != "applied" || !reflect.DeepEqual(r.FixedCVEs, []string{"CVE-2015-7837", "CVE-2016-0758"}) {
		t.Errorf("%+v", r)
	}
	// Both forms failing: the reason names both.
	if err := os.WriteFile(filepath.Join(root, "snap/bin/canonical-livepatch"), []byte("#!/bin/sh\necho 'unknown flag: --format' >&2\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r = Canonical{}.Read(context.Background(), &Env{HostRoot: root})
	if !r.Failed || len(r.Unknown) != 2 || !strings.Contains(r.Unknown[0].Reason, "unknown flag") {
		t.Errorf("%+v", r)
	}
}
