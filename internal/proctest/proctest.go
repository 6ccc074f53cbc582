// Package proctest answers, for tests, whether processes are still running:
// a process that runs, and the live members of a process group, read from
// /proc (Linux). A zombie (exited, not yet reaped) no longer runs.
package proctest

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// stat returns the fields of /proc/<pid>/stat after the command name:
// state, ppid, pgrp, ...
func stat(pid string) []string {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// Alive reports whether process pid runs.
func Alive(pid int) bool {
	f := stat(strconv.Itoa(pid))
	return len(f) > 0 && f[0] != "Z"
}

// GroupMembers lists the running processes of process group pgid.
func GroupMembers(pgid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := stat(e.Name()); len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out
}

// WaitGone waits at most limit for cond to become false (a process killed
// a moment ago may show until it has died) and reports whether it did.
func WaitGone(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
