package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/patchgate/patchgate/service"
)

// serviceStatus is the node service's state as `patchgate check` reports
// it: read from the status file the service (patchgate serve, or patchgate
// nri in-process) rewrites every poll interval and removes when it stops.
type serviceStatus struct {
	File    string          `json:"file"`
	Running bool            `json:"running"`
	Status  *service.Status `json:"status,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// staleStatus is how old a status file may be before check calls it stale
// (the service rewrites it every poll interval, 2s by default).
const staleStatus = time.Minute

func readServiceStatus(path string) serviceStatus {
	st := serviceStatus{File: path}
	s, err := service.ReadStatusFile(path)
	if err != nil {
		if !errors.Is(err, service.ErrNoStatus) {
			st.Error = err.Error()
		}
		return st
	}
	st.Status = s
	st.Running = time.Since(s.UpdatedAt) <= staleStatus
	if !st.Running {
		st.Error = fmt.Sprintf("status file not updated since %s: the service is stuck or was killed", s.UpdatedAt.UTC().Format(time.RFC3339))
		return st
	}
	// A killed service leaves a fresh-looking file behind: its decision
	// socket says whether anything still serves.
	if s.Socket != "" {
		if err := dialUnix(s.Socket); err != nil {
			st.Running = false
			st.Error = fmt.Sprintf("the status file (updated %s) says running, but nothing answers on its decision socket: %v: the service was killed or stopped",
				s.UpdatedAt.UTC().Format(time.RFC3339), err)
		}
	}
	return st
}

// dialUnix connects to a unix socket and closes the connection: whether a
// process is serving there.
func dialUnix(path string) error {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// writeServiceStatus prints the service part of `patchgate check`'s text
// output: policy in force and its last reload error, audit log health, and
// the NRI plugin's OCI hook injection.
func writeServiceStatus(w io.Writer, st serviceStatus) {
	if st.Status == nil {
		msg := "not running (no " + st.File + ")"
		if st.Error != "" {
			msg = "unknown: " + st.Error
		}
		fmt.Fprintf(w, "node service       %s; hooks decide locally\n", msg)
		return
	}
	s := st.Status
	state := fmt.Sprintf("running (pid %d, since %s)", s.PID, s.StartedAt.UTC().Format(time.RFC3339))
	if !st.Running {
		state = "STALE: " + st.Error
	}
	fmt.Fprintf(w, "node service       %s\n", state)
	fmt.Fprintf(w, "policy in force    %s (%s)\n", s.Policy.Name, s.Policy.Digest)
	if s.Policy.Error != "" {
		fmt.Fprintf(w, "policy reload      FAILING since %s, last good policy kept: %s\n", s.Policy.ErrorAt.UTC().Format(time.RFC3339), s.Policy.Error)
	}
	if s.Policy.CopyError != "" {
		fmt.Fprintf(w, "policy copy        FAILING: %s; hooks deciding alone read an older policy, or none\n", s.Policy.CopyError)
	}
	if a := s.Audit; a != nil {
		if a.OK {
			fmt.Fprintf(w, "audit log          ok: %s, %d records, %d write failures\n", a.Path, a.Records, a.Failures)
		} else {
			fmt.Fprintf(w, "audit log          FAILING: %s: %s (%d write failures)", a.Path, a.LastError, a.Failures)
			if a.FailClosed {
				fmt.Fprint(w, "; failClosed: containers are blocked")
			}
			fmt.Fprintln(w)
		}
	}
	if r := s.Runtime; r != nil && !st.Running {
		fmt.Fprintf(w, "container runtime  NOT CONNECTED: the service is not running (last known: %s)\n", runtimeLine(r))
	} else if r != nil {
		fmt.Fprintf(w, "container runtime  %s\n", runtimeLine(r))
		if len(r.BaseSpecMissing) > 0 {
			fmt.Fprintf(w, "fail-closed hook   MISSING from the base_runtime_spec of runtime handler(s) %s: their containers are not judged while patchgate is down", strings.Join(r.BaseSpecMissing, ", "))
			if r.Mode == "CreateContainer" {
				fmt.Fprint(w, " (no NRI validator on this runtime)")
			} else {
				fmt.Fprint(w, " unless required_plugins refuses them")
			}
			fmt.Fprintln(w)
		}
	}
	if st.Running {
		writeProbes(w, s)
	}
	if h := s.Hook; h != nil {
		line := h.Status
		if h.Reason != "" {
			line += ": " + h.Reason
		}
		if h.Status == "refused" {
			line = "REFUSED by the runtime, capabilities/privileged/AppArmor are not judged: " + h.Reason
		}
		fmt.Fprintf(w, "OCI hook injection %s\n", line)
	}
}

// runtimeLine is the NRI connection as one line: the state, the mode and
// what it cannot see, or why patchgate is not enforcing through NRI.
func runtimeLine(r *service.RuntimeConnection) string {
	rt := strings.TrimSpace(r.Runtime + " " + r.RuntimeVersion)
	if r.NRIVersion != "" {
		rt += " (NRI " + r.NRIVersion + ")"
	}
	switch r.State {
	case "connected":
		line := fmt.Sprintf("connected as %s to %s, mode %s", r.Plugin, rt, r.Mode)
		if len(r.Unseen) > 0 {
			line += "; not seen in this mode: " + strings.Join(r.Unseen, ", ") + " (the OCI hook judges the final spec)"
		}
		return line
	case "refused":
		return "REFUSED by the runtime, NOT ENFORCING through NRI (" + rt + "): " + r.Reason
	}
	line := "NOT CONNECTED (" + r.State + "), NOT ENFORCING through NRI; only an OCI hook judges containers"
	if rt != "" {
		line += "; last runtime " + rt
	}
	if r.Reason != "" {
		line += ": " + r.Reason
	}
	return line
}

// writeProbes prints the liveness and readiness probes' results as the
// service last wrote them (service/health.go; kubelet reads the same from
// /healthz and /readyz).
func writeProbes(w io.Writer, s *service.Status) {
	if s.Live == nil || s.Ready == nil {
		return // a service of an older version
	}
	live := "live"
	if !s.Live.OK {
		live = "NOT LIVE (" + s.Live.Failed() + ")"
	}
	ready := "ready"
	if !s.Ready.OK {
		ready = "NOT READY (" + s.Ready.Failed() + ")"
	}
	fmt.Fprintf(w, "probes             %s, %s\n", live, ready)
}
