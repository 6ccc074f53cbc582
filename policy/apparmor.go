package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// AppArmor profile modes as the kernel names them
// (security/apparmor/policy.c aa_profile_mode_names: "enforce", "complain",
// "kill", "unconfined", "user"; newer kernels add more). Only enforce and kill
// (enforce, and kill the task on a denial) confine; every other mode lets
// the denied access happen.
const (
	AppArmorModeEnforce = "enforce"
	AppArmorModeKill    = "kill"
	// AppArmorModeNotLoaded is Workload.AppArmorMode for a named profile
	// (or a component of a stack) that the host has not loaded.
	AppArmorModeNotLoaded = "not loaded"
	// AppArmorModeUnreadable is Workload.AppArmorMode when the loaded
	// profiles could not be read or parsed.
	AppArmorModeUnreadable = "unreadable"
)

// appArmorConfining reports whether mode confines the process.
func appArmorConfining(mode string) bool {
	return mode == AppArmorModeEnforce || mode == AppArmorModeKill
}

// maxAppArmorProfiles bounds the profiles list (a busy Ubuntu host loads a
// few hundred).
const maxAppArmorProfiles = 1 << 16

// AppArmorProfiles are the loaded AppArmor profiles and their modes, as
// <securityfs>/apparmor/profiles lists them (ParseAppArmorProfiles).
type AppArmorProfiles map[string]string

// ParseAppArmorProfiles parses the kernel's list of loaded profiles,
// /sys/kernel/security/apparmor/profiles. The kernel writes one line per
// profile: security/apparmor/apparmorfs.c seq_show_profile calls
// aa_label_seq_xprint(FLAG_SHOW_MODE | FLAG_VIEW_SUBNS) and a '\n', and
// security/apparmor/label.c aa_profile_snxprint prints
// "%s (%s)" (hname, mode), or ":%s:%s (%s)" for a profile of a namespace
// below the reader's (ns name, hname, mode). hname is the profile's
// hierarchical name: a child profile or hat is "parent//child". Names
// may hold spaces, so the mode is the text in the last " (...)" of the
// line. Anything else (an empty line, a line without a mode, a mode that
// is not a lower-case word, a profile listed twice, no final newline) is
// malformed and an error.
func ParseAppArmorProfiles(data []byte) (AppArmorProfiles, error) {
	s := string(data)
	if s != "" && !strings.HasSuffix(s, "\n") {
		return nil, fmt.Errorf("AppArmor profiles: no final newline")
	}
	m := AppArmorProfiles{}
	for n := 1; s != ""; n++ {
		i := strings.IndexByte(s, '\n')
		line := s[:i]
		s = s[i+1:]
		if len(m) >= maxAppArmorProfiles {
			return nil, fmt.Errorf("AppArmor profiles: more than %d", maxAppArmorProfiles)
		}
		j := strings.LastIndex(line, " (")
		if j <= 0 || !strings.HasSuffix(line, ")") {
			return nil, fmt.Errorf("AppArmor profiles: line %d: want \"name (mode)\": %q", n, line)
		}
		name, mode := line[:j], line[j+2:len(line)-1]
		if mode == "" || strings.Trim(mode, "abcdefghijklmnopqrstuvwxyz") != "" {
			return nil, fmt.Errorf("AppArmor profiles: line %d: bad mode %q", n, mode)
		}
		if strings.TrimSpace(name) != name || strings.ContainsAny(name, "\x00") {
			return nil, fmt.Errorf("AppArmor profiles: line %d: bad name %q", n, name)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("AppArmor profiles: line %d: %q listed twice", n, name)
		}
		m[name] = mode
	}
	return m, nil
}

// ModeOf is the mode a container that names profile (its
// process.apparmorProfile, not unconfined) runs in: the weakest of its
// components. The runtime writes the name to /proc/self/attr/apparmor/exec,
// and the kernel parses it as a label (security/apparmor/label.c
// aa_label_parse): components separated by "//&" are stacked, a leading
// "&" stacks onto the current label, ":ns:name" (or ":ns://name") names a
// profile of namespace ns. The first component that is not loaded
// (AppArmorModeNotLoaded) or not in a confining mode (enforce, kill)
// decides; else the mode is enforce (kill only when every component is).
// A component naming a namespace is looked up as the kernel lists it
// (":ns:name"); any other spelling is not found, the strict side.
func (m AppArmorProfiles) ModeOf(profile string) string {
	mode := AppArmorModeKill
	for _, c := range strings.Split(strings.TrimSpace(profile), "//&") {
		c = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(c), "&"))
		if appArmorUnconfined(c) {
			return "unconfined"
		}
		if strings.HasPrefix(c, ":") {
			if i := strings.Index(c[1:], ":"); i >= 0 {
				ns, rest := c[1:1+i], strings.TrimLeft(c[2+i:], "/")
				c = ":" + ns + ":" + rest
			}
		}
		got, ok := m[c]
		switch {
		case !ok:
			return AppArmorModeNotLoaded
		case !appArmorConfining(got):
			return got
		case got == AppArmorModeEnforce:
			mode = AppArmorModeEnforce
		}
	}
	return mode
}

// AppArmorModeResolver returns the function for
// FromSpecOptions.AppArmorMode on the host under hostRoot: the mode of a
// named profile, from <hostRoot>/sys/kernel/security/apparmor/profiles,
// read and parsed at most once (on first use). When the list cannot be read
// or parsed every profile is AppArmorModeUnreadable, which the apparmor
// rule refuses: runc, too, applies a profile only where securityfs shows
// AppArmor (libcontainer/apparmor IsEnabled), and what cannot be seen is not
// known to confine.
func AppArmorModeResolver(hostRoot string) func(profile string) string {
	if hostRoot == "" {
		hostRoot = "/"
	}
	var (
		once     sync.Once
		profiles AppArmorProfiles
		global   string
	)
	return func(profile string) string {
		once.Do(func() {
			var err error
			global, err = readAppArmorGlobalMode(hostRoot)
			if err != nil {
				return
			}
			b, err := os.ReadFile(filepath.Join(hostRoot, "sys", "kernel", "security", "apparmor", "profiles"))
			if err == nil {
				profiles, err = ParseAppArmorProfiles(b)
			}
			if err != nil {
				profiles = nil
			}
		})
		if profiles == nil {
			return AppArmorModeUnreadable
		}
		mode := profiles.ModeOf(profile)
		if appArmorConfining(mode) && global != "" && !appArmorConfining(global) {
			// The kernel's PROFILE_MODE() (security/apparmor/include/policy.h)
			// holds a mode for every profile when the module's global mode
			// (apparmor.mode= at boot) is that mode: "complain" makes every
			// profile complain.
			return global
		}
		return mode
	}
}

// readAppArmorGlobalMode reads the AppArmor module's global profile mode,
// <hostRoot>/sys/module/apparmor/parameters/mode (security/apparmor/lsm.c
// param_get_mode prints aa_profile_mode_names[aa_g_profile_mode]). A
// missing file is "" (no global override); a value that is not one
// lower-case word is an error.
func readAppArmorGlobalMode(hostRoot string) (string, error) {
	b, err := os.ReadFile(filepath.Join(hostRoot, "sys", "module", "apparmor", "parameters", "mode"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	mode := strings.TrimSuffix(string(b), "\n")
	if mode == "" || strings.Trim(mode, "abcdefghijklmnopqrstuvwxyz") != "" {
		return "", fmt.Errorf("AppArmor mode: %q", b)
	}
	return mode, nil
}
