package running

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/plugin"
	"github.com/patchgate/patchgate/policy"
)

// What a policy does with a container.
const (
	OutcomeRefuse = "refuse"
	OutcomeFlag   = "flag"
	OutcomeAdmit  = "admit"
)

// Judged is a policy's decision on one container.
type Judged struct {
	Outcome string `json:"outcome"`
	// Rules are the rules behind the outcome: the enforced ones of a
	// refusal, the warned ones of a flag.
	Rules []string `json:"rules,omitempty"`
	// Error is why the container could not be judged (then refuse).
	Error string `json:"error,omitempty"`
	// Message is the one line the node would give for a refusal or flag
	// (policy.Explain, as the NRI plugin and the hook word it): the rule,
	// the field to change where the container came from, and the kernel's
	// cause when the kernel being behind made a rule stricter.
	Message  string           `json:"message,omitempty"`
	Decision *policy.Decision `json:"decision,omitempty"`
}

// Record is what the audit log holds of the container: its latest
// record from each front end (the NRI plugin and the hook each write one
// for what they judged), merged: the most severe action, every rule, the
// sources, and the latest time.
type Record struct {
	Time    time.Time `json:"time"`
	Sources []string  `json:"sources"`
	Action  string    `json:"action"`
	Rules   []string  `json:"rules,omitempty"`
	Policy  string    `json:"policy"`
}

// Result is one container's line.
type Result struct {
	Runtime   string `json:"runtime"`
	Namespace string `json:"namespace,omitempty"`
	ID        string `json:"id"`
	// Name is pod-namespace/pod-name/container for a CRI container whose
	// identity the runtime vouches for (as the hook trusts it).
	Name   string `json:"name,omitempty"`
	Status string `json:"status"`
	Pid    int    `json:"pid,omitempty"`
	Bundle string `json:"bundle"`
	// Sandbox: a containerd CRI pod sandbox, judged as the NRI plugin
	// judges the pod (only the pod rules).
	Sandbox   bool    `json:"sandbox,omitempty"`
	Candidate Judged  `json:"candidate"`
	InForce   *Judged `json:"inForce,omitempty"`
	Audit     *Record `json:"audit,omitempty"`
}

// Judge holds what every container is judged with.
type Judge struct {
	// HostRoot is where the host's / is (default "/").
	HostRoot string
	// Candidate is the policy previewed, with the kernel state read for it.
	Candidate       *policy.Policy
	CandidateKernel *policy.KernelState
	// InForce is the node's policy (nil: not known), with its kernel state.
	InForce       *policy.Policy
	InForceKernel *policy.KernelState
	Now           time.Time
	// Audit is the latest audit record of each source per container id.
	Audit map[string][]*audit.Record
}

// Judge decides every found container under both policies.
func (j *Judge) Judge(found []Found) []Result {
	out := make([]Result, 0, len(found))
	for _, f := range found {
		out = append(out, j.one(f))
	}
	return out
}

func (j *Judge) one(f Found) Result {
	r := Result{Runtime: f.Runtime, Namespace: f.Namespace, ID: f.ID, Name: f.Name, Status: f.Status, Pid: f.Pid, Bundle: f.Bundle}
	if recs := j.Audit[f.ID]; len(recs) > 0 && f.ID != "" {
		r.Audit = summarizeRecord(recs)
	}
	in, err := j.input(&r, f)
	if err == nil {
		err = f.Err
	}
	if err != nil {
		// What cannot be read is refused, never admitted.
		r.Candidate = Judged{Outcome: OutcomeRefuse, Error: err.Error()}
		if j.InForce != nil {
			r.InForce = &Judged{Outcome: OutcomeRefuse, Error: err.Error()}
		}
		return r
	}
	r.Candidate = j.decide(in, j.Candidate, j.CandidateKernel)
	if j.InForce != nil {
		d := j.decide(in, j.InForce, j.InForceKernel)
		r.InForce = &d
	}
	return r
}

// input is what a container is judged on: a workload built by the hook's
// code, or, for a containerd CRI pod sandbox, the pod as NRI shows it.
type input struct {
	w   *policy.Workload
	pod *api.PodSandbox
}

func (j *Judge) hostRoot() string {
	if j.HostRoot == "" {
		return "/"
	}
	return j.HostRoot
}

func (j *Judge) input(r *Result, f Found) (*input, error) {
	if f.Err != nil {
		return nil, f.Err
	}
	info, err := hook.ClassifyBundle(f.Bundle, f.ID)
	if err != nil {
		return nil, err
	}
	spec, _, err := hook.ReadSpec(underRoot(j.hostRoot(), f.Bundle))
	if err != nil {
		return nil, err
	}
	ident := hook.IdentityFrom(f.ID, spec.Annotations)
	// Whose identity is trusted is what Discover says from where it found
	// the container (containerd's task state, a storage root), never the
	// bundle's path alone: a container found only in a runc root has a
	// bundle wherever its creator put it.
	identityFrom := f.IdentityFrom
	if identityFrom == "" {
		identityFrom = hook.IdentityFromNone
	}
	trusted := hook.Vouches(identityFrom, ident.Runtime)
	if info.Layout == hook.LayoutContainersStorage {
		switch {
		case ident.Runtime == hook.RuntimePodman:
			r.Runtime = RuntimePodman
		case ident.Runtime == hook.RuntimeCRIO && trusted:
			r.Runtime = RuntimeCRIO
		}
	}
	// containerd never runs patchgate's hook for a CRI pod sandbox; the
	// NRI plugin judges the pod in RunPodSandbox. A sandbox is one only
	// when it is its own sandbox (an application container names its
	// pod's), and only when containerd's CRI vouches for it: anything
	// else claiming to be one is judged in full.
	if info.Layout == hook.LayoutContainerd && info.Namespace == hook.NamespaceCRI && trusted && ident.Sandbox && ident.SandboxID == f.ID {
		r.Sandbox = true
		pod := podSandbox(f.ID, spec)
		r.Name = pod.Namespace + "/" + pod.Name
		return &input{pod: pod}, nil
	}
	st := &hook.State{OCIVersion: spec.Version, ID: f.ID, Status: f.Status, Pid: f.Pid, Bundle: f.Bundle}
	if st.Status == StatusUnknown {
		st.Status = StatusRunning
	}
	w, err := hook.BuildWorkloadOnHost(st, j.hostRoot(), identityFrom)
	if err != nil {
		return nil, err
	}
	if w.Pod.Name != "" || w.Container.Name != "" {
		r.Name = strings.Trim(w.Pod.Namespace+"/"+w.Pod.Name+"/"+w.Container.Name, "/")
	}
	return &input{w: w}, nil
}

// podSandbox is the api.PodSandbox that containerd's NRI adaptation
// builds for a sandbox from its spec: its identity annotations and its
// namespaces (where the pod's host namespaces show).
func podSandbox(id string, spec *specs.Spec) *api.PodSandbox {
	ident := hook.IdentityFrom(id, spec.Annotations)
	pod := &api.PodSandbox{
		Id: id, Name: ident.Pod.Name, Namespace: ident.Pod.Namespace, Uid: ident.Pod.UID,
		Annotations: spec.Annotations,
		Linux:       &api.LinuxPodSandbox{},
	}
	if spec.Linux != nil {
		pod.Linux.Namespaces = api.FromOCILinuxNamespaces(spec.Linux.Namespaces)
	}
	return pod
}

func (j *Judge) decide(in *input, pol *policy.Policy, k *policy.KernelState) Judged {
	if in.pod != nil {
		w, err := plugin.PodWorkload(in.pod, hook.IdentityFromContainerd)
		if err != nil {
			return Judged{Outcome: OutcomeRefuse, Error: err.Error()}
		}
		d := plugin.JudgePod(pol, w, k, j.Now)
		return judged(&d, w)
	}
	// A copy: Evaluate may note what it judged on the workload.
	w := *in.w
	d := policy.Evaluate(pol, &w, k, j.Now)
	// As the hook deciding alone: what nobody saw follows
	// spec.hook.onError.
	policy.MarkUnjudged(&d, 0, pol.Spec.Hook.OnError)
	return judged(&d, &w)
}

// judged sums up d, made for w, as a Judged.
func judged(d *policy.Decision, w *policy.Workload) Judged {
	out := Judged{Decision: d}
	var action policy.Action
	switch d.Verdict {
	case policy.Deny:
		out.Outcome, action = OutcomeRefuse, policy.ActionEnforce
	case policy.Warn:
		out.Outcome, action = OutcomeFlag, policy.ActionWarn
	default:
		out.Outcome = OutcomeAdmit
	}
	for _, v := range d.Violations {
		if action != "" && v.Action == action && !slices.Contains(out.Rules, v.Rule) {
			out.Rules = append(out.Rules, v.Rule)
		}
	}
	if action != "" {
		out.Message = policy.Explain(d, w, action)
	}
	return out
}

// summarizeRecord merges a container's latest record of each source.
func summarizeRecord(recs []*audit.Record) *Record {
	r := &Record{}
	for _, rec := range recs {
		if rec.Time.Time.After(r.Time) {
			r.Time, r.Policy = rec.Time.Time, rec.Policy.Name
		}
		r.Sources = append(r.Sources, rec.Source)
		if severity(rec.Action) > severity(r.Action) {
			r.Action = rec.Action
		}
		for _, v := range rec.Violations {
			if !slices.Contains(r.Rules, v.Rule) {
				r.Rules = append(r.Rules, v.Rule)
			}
		}
	}
	slices.Sort(r.Sources)
	slices.Sort(r.Rules)
	return r
}

func severity(action string) int {
	switch action {
	case audit.ActionBlocked:
		return 3
	case audit.ActionFlagged:
		return 2
	case audit.ActionAllowed:
		return 1
	}
	return 0
}

// LatestRecords indexes records by container id: the latest record of
// each source (nri, hook, ...) for each container.
func LatestRecords(recs []audit.Record) map[string][]*audit.Record {
	latest := map[[2]string]*audit.Record{}
	for i := range recs {
		r := &recs[i]
		if r.Container.ID == "" {
			continue
		}
		k := [2]string{r.Container.ID, r.Source}
		if old := latest[k]; old == nil || !r.Time.Time.Before(old.Time.Time) {
			latest[k] = r
		}
	}
	m := map[string][]*audit.Record{}
	for k, r := range latest {
		m[k[0]] = append(m[k[0]], r)
	}
	return m
}

func underRoot(root, p string) string {
	if root == "/" {
		return p
	}
	return filepath.Join(root, p)
}

// ErrRefused is returned by Report.Err when the candidate refuses a
// container.
var ErrRefused = errors.New("the candidate policy would refuse running containers")

// Summary counts the results.
type Summary struct {
	Containers int `json:"containers"`
	Refuse     int `json:"refuse"`
	Flag       int `json:"flag"`
	Admit      int `json:"admit"`
	Errors     int `json:"errors"`
	// Changed is how many the candidate decides otherwise than the policy
	// in force.
	Changed int `json:"changed"`
	Skipped int `json:"skipped"`
}

// Summarize counts results and skipped containers.
func Summarize(rs []Result, skipped int) Summary {
	s := Summary{Containers: len(rs), Skipped: skipped}
	for _, r := range rs {
		switch r.Candidate.Outcome {
		case OutcomeRefuse:
			s.Refuse++
		case OutcomeFlag:
			s.Flag++
		default:
			s.Admit++
		}
		if r.Candidate.Error != "" {
			s.Errors++
		}
		if r.InForce != nil && (r.InForce.Outcome != r.Candidate.Outcome || !slices.Equal(r.InForce.Rules, r.Candidate.Rules)) {
			s.Changed++
		}
	}
	return s
}

func (s Summary) String() string {
	return fmt.Sprintf("%d running: %d would be refused, %d flagged, %d admitted (%d unreadable, counted as refused); %d decided otherwise than the policy in force; %d not running, skipped",
		s.Containers, s.Refuse, s.Flag, s.Admit, s.Errors, s.Changed, s.Skipped)
}
