package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Rule hostDevices
//
// Why: a host device node (a disk, /dev/mem, /dev/kmsg, a GPU) gives direct
// access to hardware or kernel memory below every isolation the kernel
// offers, and a device cgroup that allows every device lets a container
// mknod its way to any of them.
//
// Reads: linux.devices, and whether linux.resources.devices allows every
// device (Workload.Devices, DevicesAllowAll).
//
// Allowed: the devices every runtime creates anyway (/dev/null, /dev/zero,
// /dev/full, /dev/random, /dev/urandom, /dev/tty, /dev/console, /dev/ptmx,
// /dev/pts/*), paths matching rules.hostDevices.allowed, and a device cgroup
// that does not allow everything.
//
// Parameters: allowed.
var hostDevicesRule = containerRule{
	id:     RuleHostDevices,
	reason: "host devices",
	needs:  FieldDevices,
	check:  checkHostDevices,
}

// defaultDevices are created by runc in every container (libcontainer/specconv
// AllowedDevices).
var defaultDevices = [...]string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/console", "/dev/ptmx", "/dev/pts/*"}

func deviceAllowed(c *compiled, p string) bool {
	for _, g := range defaultDevices {
		if globMatch(g, p) {
			return true
		}
	}
	for _, g := range c.devAllowed {
		if globMatch(g, p) {
			return true
		}
	}
	return false
}

func checkHostDevices(c *compiled, w *Workload) (string, bool) {
	var bad []string
	for i := range w.Devices {
		if !deviceAllowed(c, w.Devices[i].Path) {
			bad = append(bad, w.Devices[i].Path)
		}
	}
	if len(bad) == 0 && !w.DevicesAllowAll {
		return "", false
	}
	slices.Sort(bad)
	bad = slices.Compact(bad)
	var parts []string
	if len(bad) > 0 {
		n := len(bad)
		shown := bad
		if n > 8 {
			shown = bad[:8]
		}
		s := fmt.Sprintf("host %s %s (linux.devices)", plural(n, "device", "devices"), quoteList(shown))
		if n > 8 {
			s = fmt.Sprintf("%d host devices, first %s (linux.devices)", n, quoteList(shown))
		}
		parts = append(parts, s)
	}
	if w.DevicesAllowAll {
		parts = append(parts, "a device cgroup that allows every device (linux.resources.devices)")
	}
	return fmt.Sprintf("%s must not have %s", subject(w), strings.Join(parts, " or ")), true
}
