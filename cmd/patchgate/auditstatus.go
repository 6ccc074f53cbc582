package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/patchgate/patchgate/audit"
)

// auditStatus is the audit log's health as `patchgate check` reports it: asked
// from the daemon over the audit socket (the daemon owns the log).
type auditStatus struct {
	Socket string `json:"socket"`
	// Reachable is false when no daemon answered; Health is then nil.
	Reachable bool          `json:"reachable"`
	Health    *audit.Health `json:"health,omitempty"`
	Error     string        `json:"error,omitempty"`
}

// queryAuditStatus asks the daemon on socket for its audit log's health,
// waiting at most timeout.
func queryAuditStatus(ctx context.Context, socket string, timeout time.Duration) auditStatus {
	st := auditStatus{Socket: socket}
	c, err := audit.NewClient(audit.WithClientSocket(socket), audit.WithTimeout(timeout))
	if err != nil {
		st.Error = err.Error()
		return st
	}
	h, err := c.Health(ctx)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Reachable, st.Health = true, &h
	return st
}

// writeAuditStatus prints the audit part of `patchgate check`'s text output.
func writeAuditStatus(w io.Writer, st auditStatus) {
	fmt.Fprintf(w, "audit log          ")
	switch {
	case !st.Reachable:
		fmt.Fprintf(w, "unknown: no daemon on %s (%s); records go to the spool\n", st.Socket, st.Error)
	case st.Health.OK:
		fmt.Fprintf(w, "ok: %s, %d records written, %d write failures, %d taken from the spool\n",
			st.Health.Path, st.Health.Records, st.Health.Failures, st.Health.SpoolIngested)
	default:
		fmt.Fprintf(w, "FAILING: %s: %s (%d write failures since %s)", st.Health.Path, st.Health.LastError,
			st.Health.Failures, st.Health.LastErrorAt.Format(time.RFC3339))
		if st.Health.FailClosed {
			fmt.Fprint(w, "; failClosed: containers are blocked")
		}
		fmt.Fprintln(w)
	}
}
