// Package decision is the node service's decision socket protocol and its
// client, kept free of the service's heavier dependencies (metrics, the
// audit log owner) so that the per-container hook process starts fast.
package decision

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service/decision/wire"
)

// ProtocolVersion is the decision socket's protocol version.
const ProtocolVersion = 1

// MaxMessageBytes bounds one request or response line on the decision
// socket. A workload is a few KiB.
const MaxMessageBytes = wire.MaxMessageBytes

// ErrProtocol is wrapped by errors about malformed decision socket traffic.
var ErrProtocol = wire.ErrProtocol

// DecideRequest asks the service to judge one workload. It is one JSON
// object on one line.
type DecideRequest struct {
	Version int `json:"v"`
	// ID is the audit record's UUID. A caller that falls back to deciding
	// locally after a lost reply sends its record with the same UUID, and
	// the audit log keeps only one of the two.
	ID string `json:"id"`
	// Seen is Workload.Seen, which Workload does not marshal.
	Seen     policy.Field     `json:"seen"`
	Workload *policy.Workload `json:"workload"`
	// ContainerID is the runtime's container ID (the hook's state "id").
	// When the NRI validator judged this container, the service remembers
	// which fields it judged on the container as it will run, and judges
	// only the rest (DecideResponse.NRIJudged); otherwise it judges
	// everything.
	ContainerID string `json:"containerID,omitempty"`
	// AfterNRI and NRIJudged are what older hooks sent to claim that NRI
	// had judged some fields. They are accepted so that such a request
	// still decodes, and ignored: a caller's claim never makes the
	// service skip a rule.
	AfterNRI  bool         `json:"afterNRI,omitempty"`
	NRIJudged policy.Field `json:"nriJudged,omitempty"`
	// BudgetMillis is how long, in milliseconds from sending, the caller
	// waits for the answer. The service answers within it less a margin,
	// cutting short its wait for remediation: a caller that gave up would
	// decide locally and write a second record for the same ID. 0 (not
	// sent) means DefaultTimeout.
	BudgetMillis int64 `json:"budgetMs,omitempty"`
}

// UnmarshalJSON decodes a request strictly (unknown keys refused) and
// refuses one without "seen": a workload whose seen fields are missing
// would have every container rule deferred and be judged on the kernel
// alone, so it is a protocol error, never an allow.
func (r *DecideRequest) UnmarshalJSON(data []byte) error {
	type plain DecideRequest
	var aux struct {
		plain
		Seen *policy.Field `json:"seen"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	if aux.Seen == nil {
		return fmt.Errorf("request has no \"seen\" fields")
	}
	*r = DecideRequest(aux.plain)
	r.Seen = *aux.Seen
	return nil
}

// DecideResponse is the service's answer.
type DecideResponse struct {
	Version  int              `json:"v"`
	Decision *policy.Decision `json:"decision,omitempty"`
	// Audited is set when the service wrote the audit record (or was told
	// by policy not to write one for this decision).
	Audited bool `json:"audited"`
	// AuditError says why the record could not be written.
	AuditError string `json:"auditError,omitempty"`
	// Remediation is the remediation outcome when one was considered.
	Remediation string `json:"remediation,omitempty"`
	// OnError is the policy's spec.hook.onError, for a caller that cannot
	// use the decision.
	OnError string `json:"onError,omitempty"`
	// Error is set when the service could not decide.
	Error string `json:"error,omitempty"`
	// AfterNRI is set when the NRI validator judged this container
	// (DecideRequest.ContainerID) and NRIJudged are the fields it judged:
	// the decision covers the rest, and a rule still deferred whose fields
	// are not all among them was judged by nobody.
	AfterNRI  bool         `json:"afterNRI,omitempty"`
	NRIJudged policy.Field `json:"nriJudged,omitempty"`
}

// The framing lives in package wire, which the thin hook links alone.
var (
	// WriteMessage writes v as one JSON line.
	WriteMessage = wire.WriteMessage
	// ReadMessage reads one JSON line of at most MaxMessageBytes into v,
	// refusing unknown keys and trailing data.
	ReadMessage = wire.ReadMessage
)
