package audit

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/policy"

	"github.com/patchgate/patchgate/internal/uuid"
)

// TimeLayout is the layout of a record's "time": RFC 3339, UTC, always nine
// fractional digits so that the strings sort like the instants.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Sources, actions, results and severities as they appear in records.
const (
	SourceNRI  = "nri"
	SourceHook = "hook"
	SourceEval = "eval"

	ActionBlocked = "blocked"
	ActionFlagged = "flagged"
	ActionAllowed = "allowed"

	// Results use the PolicyReport (wg-policy-prototypes) vocabulary.
	ResultFail = "fail"
	ResultWarn = "warn"
	ResultPass = "pass"

	// Severities use the PolicyReport vocabulary.
	SeverityHigh   = "high"
	SeverityMedium = "medium"
	SeverityLow    = "low"
	SeverityInfo   = "info"
)

// ErrInvalidRecord is returned (wrapped) for a line that is not a valid record.
var ErrInvalidRecord = errors.New("invalid audit record")

// Record is one audit log line. Field names are the schema in docs/audit.md.
type Record struct {
	// Time is when the decision was made, UTC.
	Time Time `json:"time"`
	// UUID identifies the record; it is what de-duplication keys on.
	UUID     string `json:"uuid"`
	Hostname string `json:"hostname"`
	// Source is the front end: nri, hook or eval.
	Source string `json:"source"`
	// Output is a one-line summary for people (Falco's "output").
	Output string `json:"output"`
	// Priority is Falco's priority name for the record.
	Priority string `json:"priority"`
	// Action is blocked, flagged or allowed.
	Action string `json:"action"`
	// Result is the PolicyReport result: fail, warn or pass.
	Result string `json:"result"`
	// Severity is the PolicyReport severity: high, medium, low or info.
	Severity   string             `json:"severity"`
	Violations []policy.Violation `json:"violations"`
	Deferred   []string           `json:"deferred"`
	Exemptions []string           `json:"exemptions"`
	Pod        Pod                `json:"pod"`
	Container  Container          `json:"container"`
	Kernel     Kernel             `json:"kernel"`
	Policy     policy.PolicyRef   `json:"policy"`
	// Remediation is present only when a remediation was considered.
	Remediation *Remediation `json:"remediation,omitempty"`
	// Mode and Unseen are the deciding front end's protocol mode and what it
	// could not see (policy.Decision.Mode, Unseen), when it matters.
	Mode   string   `json:"mode,omitempty"`
	Unseen []string `json:"unseen,omitempty"`
}

// Pod identifies the pod of the container.
type Pod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// Container identifies the container.
type Container struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Image string `json:"image"`
}

// Kernel is the kernel state the decision saw.
type Kernel struct {
	Release          string `json:"release"`
	EffectiveVersion string `json:"effectiveVersion"`
	// Behind is set when a kernel rule failed (Decision.KernelBehind).
	Behind bool `json:"behind"`
	// Patches are the live patches with their state.
	Patches []policy.Patch `json:"patches"`
	// ObservedAt is when the state was read; zero time if never.
	ObservedAt Time `json:"observedAt"`
}

// Remediation says whether a live-patch update was started for this decision
// and how it ended (livepatch Outcome.Status: patched, running, failed,
// notNeeded).
type Remediation struct {
	Started bool   `json:"started"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
}

// Time is a time.Time that marshals as TimeLayout in UTC.
type Time struct{ time.Time }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON implements json.Unmarshaler; it accepts any RFC 3339 time.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("time: %w", err)
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("time: %w", err)
	}
	t.Time = v.UTC()
	return nil
}

var hostname = sync.OnceValue(func() string {
	if n := os.Getenv("NODE_NAME"); n != "" {
		return n
	}
	n, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return n
})

// NewUUID returns a random RFC 4122 version 4 UUID.
func NewUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("audit: crypto/rand failed: " + err.Error()) // never happens on Linux (getrandom)
	}
	return uuid.V4(b)
}

// NewRecord builds the audit record for one decision. w, d and k may be nil
// (a decision about nothing in particular still gets a record); rem is nil when
// no remediation was considered. The hostname is $NODE_NAME, else os.Hostname.
func NewRecord(source string, w *policy.Workload, d *policy.Decision, k *policy.KernelState, rem *Remediation) Record {
	r := Record{
		Time:       Time{time.Now().UTC()},
		UUID:       NewUUID(),
		Hostname:   hostname(),
		Source:     source,
		Violations: []policy.Violation{},
		Deferred:   []string{},
		Exemptions: []string{},
		Kernel:     Kernel{Patches: []policy.Patch{}},
	}
	if w != nil {
		r.Pod = Pod{Namespace: w.Pod.Namespace, Name: w.Pod.Name, UID: w.Pod.UID}
		r.Container = Container{ID: w.Container.ID, Name: w.Container.Name, Image: w.Container.Image}
	}
	verdict := policy.Allow
	if d != nil {
		verdict = d.Verdict
		r.Violations = append(r.Violations, d.Violations...)
		r.Deferred = append(r.Deferred, d.Deferred...)
		r.Exemptions = append(r.Exemptions, d.Exemptions...)
		r.Kernel.Behind = d.KernelBehind
		r.Policy = d.Policy
		r.Mode = d.Mode
		r.Unseen = append(r.Unseen, d.Unseen...)
	}
	if k != nil {
		r.Kernel.Release = k.Release
		r.Kernel.EffectiveVersion = k.EffectiveVersion
		r.Kernel.Patches = append(r.Kernel.Patches, k.Patches...)
		r.Kernel.ObservedAt = Time{k.ObservedAt.UTC()}
	}
	if rem != nil {
		c := *rem
		r.Remediation = &c
	}
	r.Action, r.Result, r.Severity, r.Priority = classify(verdict, len(r.Violations), len(r.Exemptions))
	r.Output = output(&r)
	return r
}

// classify maps a verdict to the record's action, PolicyReport result and
// severity, and Falco priority. An allowed container that still has
// violations (rules in audit mode) is a "warn" of low severity; one admitted
// only because an exemption lifted rules passes, with low severity.
func classify(v policy.Verdict, violations, exemptions int) (action, result, severity, priority string) {
	switch v {
	case policy.Deny:
		return ActionBlocked, ResultFail, SeverityHigh, "Error"
	case policy.Warn:
		return ActionFlagged, ResultWarn, SeverityMedium, "Warning"
	default:
		switch {
		case violations > 0:
			return ActionAllowed, ResultWarn, SeverityLow, "Notice"
		case exemptions > 0:
			return ActionAllowed, ResultPass, SeverityLow, "Notice"
		}
		return ActionAllowed, ResultPass, SeverityInfo, "Informational"
	}
}

func output(r *Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "patchgate %s container", r.Action)
	if r.Container.Name != "" {
		fmt.Fprintf(&b, " %q", r.Container.Name)
	}
	if r.Pod.Name != "" {
		fmt.Fprintf(&b, " in pod %s/%s", r.Pod.Namespace, r.Pod.Name)
	}
	if r.Container.Image != "" {
		fmt.Fprintf(&b, " (image %s)", r.Container.Image)
	}
	if len(r.Violations) > 0 {
		reasons := make([]string, 0, len(r.Violations))
		seen := map[string]bool{}
		for _, v := range r.Violations {
			if !seen[v.Reason] {
				seen[v.Reason] = true
				reasons = append(reasons, v.Reason)
			}
		}
		sort.Strings(reasons)
		fmt.Fprintf(&b, ": %s", strings.Join(reasons, ", "))
	}
	if len(r.Exemptions) > 0 {
		fmt.Fprintf(&b, " (exemptions: %s)", strings.Join(r.Exemptions, ", "))
	}
	if r.Kernel.Behind {
		b.WriteString(" [kernel behind]")
	}
	return b.String()
}

// ShouldRecord reports whether a decision is written to the audit log: every
// blocked or flagged decision, every decision with violations (rules in audit
// mode) or with exemptions that lifted rules, and allowed ones too when
// recordAllowed is set.
func ShouldRecord(d *policy.Decision, recordAllowed bool) bool {
	if recordAllowed || d == nil {
		return recordAllowed
	}
	return d.Verdict != policy.Allow || len(d.Violations) > 0 || len(d.Exemptions) > 0
}

// FailClosedRule is the rule ID of the violation FailClosed adds.
const FailClosedRule = "auditUnavailable"

// FailClosed turns d into a denial because its audit record cannot be stored
// and the policy sets audit.failClosed. Front ends call it when Write or Send
// failed, or before deciding when Health().Blocks().
func FailClosed(d *policy.Decision, why error) {
	d.Verdict = policy.Deny
	detail := "the audit log cannot be written and spec.audit.failClosed is true"
	if why != nil {
		detail += ": " + why.Error()
	}
	d.Violations = append(d.Violations, policy.Violation{
		Rule: FailClosedRule, Action: policy.ActionEnforce, Reason: "audit unavailable", Detail: detail,
	})
}

// Marshal returns the record as one JSON line ending in '\n'. JSON string
// escaping guarantees that the line contains no other newline.
func (r *Record) Marshal() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(1024)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil { // Encode appends '\n'
		return nil, fmt.Errorf("%w: %v", ErrInvalidRecord, err)
	}
	return buf.Bytes(), nil
}

// Validate checks the fields every record must have.
func (r *Record) Validate() error {
	switch {
	case r.Time.IsZero():
		return fmt.Errorf("%w: time is missing", ErrInvalidRecord)
	case !uuid.Valid(r.UUID):
		return fmt.Errorf("%w: uuid %q is not 1-64 characters of [0-9a-zA-Z-]", ErrInvalidRecord, r.UUID)
	}
	switch r.Source {
	case SourceNRI, SourceHook, SourceEval:
	default:
		return fmt.Errorf("%w: source %q is not nri, hook or eval", ErrInvalidRecord, r.Source)
	}
	switch r.Action {
	case ActionBlocked, ActionFlagged, ActionAllowed:
	default:
		return fmt.Errorf("%w: action %q is not blocked, flagged or allowed", ErrInvalidRecord, r.Action)
	}
	switch r.Result {
	case ResultFail, ResultWarn, ResultPass:
	default:
		return fmt.Errorf("%w: result %q is not fail, warn or pass", ErrInvalidRecord, r.Result)
	}
	return nil
}

// ParseRecord parses one log line (with or without its trailing newline) and
// validates it. Unknown fields are an error: a line that does not match the
// schema is reported, not half-read.
func ParseRecord(line []byte) (Record, error) {
	var r Record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrInvalidRecord, err)
	}
	if rest := bytes.TrimSpace(line[dec.InputOffset():]); len(rest) > 0 {
		return Record{}, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidRecord)
	}
	if err := r.Validate(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// Fields returns the fields for an operational log line about this decision
// (logrus; never the audit log itself): pod, container, image, decision and
// the violated rules.
func (r *Record) Fields() logrus.Fields {
	f := logrus.Fields{"decision": r.Action, "source": r.Source, "audit_uuid": r.UUID}
	if r.Pod.Name != "" {
		f["pod"] = r.Pod.Namespace + "/" + r.Pod.Name
	}
	if r.Container.Name != "" || r.Container.ID != "" {
		f["container"] = r.Container.Name
		f["container_id"] = r.Container.ID
	}
	if r.Container.Image != "" {
		f["image"] = r.Container.Image
	}
	if len(r.Violations) > 0 {
		rules := make([]string, 0, len(r.Violations))
		for _, v := range r.Violations {
			rules = append(rules, v.Rule)
		}
		f["rule"] = strings.Join(rules, ",")
	}
	return f
}

// ValidUUID reports whether s is a valid audit record UUID: 1-64
// characters of [0-9a-zA-Z-].
func ValidUUID(s string) bool { return uuid.Valid(s) }
