package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/policy"
)

func init() {
	register(newAuditCmd)
}

// auditSummary is the counts printed under the table (and in -o json).
type auditSummary struct {
	Total       int            `json:"total"`
	ByAction    map[string]int `json:"byAction"`
	ByRule      map[string]int `json:"byRule"`
	ByNamespace map[string]int `json:"byNamespace"`
}

type auditProblem struct {
	File  string `json:"file"`
	Line  int    `json:"line"`
	Error string `json:"error"`
}

type auditOutput struct {
	// Log is the log read, and why that one.
	Log      auditLogSource `json:"log"`
	Records  []audit.Record `json:"records"`
	Summary  auditSummary   `json:"summary"`
	Problems []auditProblem `json:"problems"`
}

// parseSince accepts a Go duration or a number of days ("7d").
func parseSince(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return v, nil
}

// auditFlags are `patchgate audit`'s flags.
type auditFlags struct {
	log                                    auditLogFlags
	since, action, rule, namespace, output string
	spool                                  bool
}

func newAuditCmd() *cobra.Command {
	f := &auditFlags{}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "show the audit log (blocked and flagged containers)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return codeErr(runAudit(f, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.log.path, "path", "", "audit log `file` (its rotated backups FILE.<time> are read too); default: the log the node service writes, else the node policy's spec.audit.path, else "+audit.DefaultPath)
	fs.StringVar(&f.log.policyPath, "policy", "", "policy file or directory whose spec.audit.path names the log (when --path is not given)")
	nodeNameFlag(fs, &f.log.nodeName, hostname(), "node name: selects nodes/<name>.yaml in a policy directory", "this host's name")
	fs.StringVar(&f.log.statusFile, "status-file", defaultStatusFile, "node service status file, which names the audit log the service writes; \"\" to skip")
	cmd.MarkFlagsMutuallyExclusive("path", "policy")
	_ = cmd.RegisterFlagCompletionFunc("rule", cobra.FixedCompletions(auditRuleIDs(), cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("action", cobra.FixedCompletions([]string{audit.ActionBlocked, audit.ActionFlagged, audit.ActionAllowed}, cobra.ShellCompDirectiveNoFileComp))
	fs.BoolVar(&f.spool, "spool", true, "also show records still waiting in the spool")
	fs.StringVar(&f.since, "since", "", "only records newer than this `duration` (e.g. 90m, 24h, 7d)")
	fs.StringVar(&f.action, "action", "", "only records with this action: blocked, flagged or allowed")
	fs.StringVar(&f.rule, "rule", "", "only records with a violation of this rule `ID`")
	fs.StringVar(&f.namespace, "namespace", "", "only records of pods in this namespace `NS`")
	addOutputFlag(cmd, &f.output)
	return cmd
}

func runAudit(f *auditFlags, stdout, stderr io.Writer) int {
	switch f.action {
	case "", audit.ActionBlocked, audit.ActionFlagged, audit.ActionAllowed:
	default:
		fmt.Fprintf(stderr, "patchgate audit: --action %q: want blocked, flagged or allowed\n", f.action)
		return exitInvalid
	}
	if f.rule != "" && !slices.Contains(auditRuleIDs(), f.rule) {
		fmt.Fprintf(stderr, "patchgate audit: --rule %q is not a rule; want one of %s\n", f.rule, strings.Join(auditRuleIDs(), ", "))
		return exitInvalid
	}
	src, err := f.log.resolve()
	if err != nil {
		fmt.Fprintf(stderr, "patchgate audit: %v\n", err)
		return exitInvalid
	}
	// A log that is not there is an error, not an empty log: a mistyped
	// --path, or a node whose service never wrote one, must not read as
	// "no containers refused".
	files, err := audit.LogFiles(src.Path)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate audit: %v\n", err)
		return exitInvalid
	}
	if len(files) == 0 {
		fmt.Fprintf(stderr, "patchgate audit: no audit log at %s (nor rotated backups of it)\n", src)
		return exitInvalid
	}
	var cutoff time.Time
	if f.since != "" {
		d, err := parseSince(f.since)
		if err != nil {
			fmt.Fprintf(stderr, "patchgate audit: --since: %v\n", err)
			return exitInvalid
		}
		cutoff = time.Now().Add(-d)
	}
	opts := audit.ReadOptions{}
	if f.spool {
		opts.SpoolPath = audit.SpoolPathFor(src.Path)
	}
	recs, problems, err := audit.ReadAll(context.Background(), src.Path, opts)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate audit: %v\n", err)
		return exitInvalid
	}
	res := auditOutput{Log: src, Records: []audit.Record{}, Problems: []auditProblem{}}
	for _, p := range problems {
		fmt.Fprintf(stderr, "patchgate audit: %s:%d: corrupt line skipped: %s\n", safe(p.File), p.Line, safe(p.Err.Error()))
		res.Problems = append(res.Problems, auditProblem{File: p.File, Line: p.Line, Error: p.Err.Error()})
	}
	for _, r := range recs {
		if keepRecord(r, cutoff, f.action, f.rule, f.namespace) {
			res.Records = append(res.Records, r)
		}
	}
	res.Summary = summarize(res.Records)
	if f.output != outputText {
		return writeStructured(stdout, stderr, "patchgate audit", f.output, res)
	}
	printAuditTable(stdout, res)
	return exitOK
}

// auditRuleIDs are the rule IDs a record's violation can name: every
// policy rule, and the audit log's own fail-closed refusal.
func auditRuleIDs() []string {
	return append(policy.RuleIDs(), audit.FailClosedRule)
}

func keepRecord(r audit.Record, cutoff time.Time, action, rule, namespace string) bool {
	if !cutoff.IsZero() && r.Time.Before(cutoff) {
		return false
	}
	if action != "" && r.Action != action {
		return false
	}
	if namespace != "" && r.Pod.Namespace != namespace {
		return false
	}
	if rule != "" {
		for _, v := range r.Violations {
			if v.Rule == rule {
				return true
			}
		}
		return false
	}
	return true
}

func summarize(recs []audit.Record) auditSummary {
	s := auditSummary{Total: len(recs), ByAction: map[string]int{}, ByRule: map[string]int{}, ByNamespace: map[string]int{}}
	for _, r := range recs {
		s.ByAction[r.Action]++
		ns := r.Pod.Namespace
		if ns == "" {
			ns = "-"
		}
		s.ByNamespace[ns]++
		seen := map[string]bool{}
		for _, v := range r.Violations {
			if !seen[v.Rule] {
				seen[v.Rule] = true
				s.ByRule[v.Rule]++
			}
		}
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printAuditTable(w io.Writer, res auditOutput) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTION\tSOURCE\tNAMESPACE/POD\tCONTAINER\tIMAGE\tRULES")
	for _, r := range res.Records {
		rules := make([]string, 0, len(r.Violations))
		seen := map[string]bool{}
		for _, v := range r.Violations {
			if !seen[v.Rule] {
				seen[v.Rule] = true
				rules = append(rules, v.Rule)
			}
		}
		pod := "-"
		if r.Pod.Name != "" || r.Pod.Namespace != "" {
			pod = dash(r.Pod.Namespace) + "/" + dash(r.Pod.Name)
		}
		ctr := dash(r.Container.Name)
		if ctr == "-" && r.Container.ID != "" {
			ctr = shortID(r.Container.ID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.UTC().Format(time.RFC3339), safe(string(r.Action)), safe(r.Source),
			safe(pod), safe(ctr), safe(dash(r.Container.Image)), safe(dash(strings.Join(rules, ","))))
	}
	_ = tw.Flush()
	s := res.Summary
	fmt.Fprintf(w, "\n%d records: %d blocked, %d flagged, %d allowed", s.Total,
		s.ByAction[audit.ActionBlocked], s.ByAction[audit.ActionFlagged], s.ByAction[audit.ActionAllowed])
	if n := len(res.Problems); n > 0 {
		fmt.Fprintf(w, "; %d corrupt lines skipped", n)
	}
	fmt.Fprintln(w)
	printCounts(w, "BY RULE", s.ByRule)
	printCounts(w, "BY NAMESPACE", s.ByNamespace)
	fmt.Fprintf(w, "\naudit log: %s\n", safe(res.Log.String()))
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// printCounts prints counts sorted by count (descending), then by key.
func printCounts(w io.Writer, title string, m map[string]int) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	fmt.Fprintf(w, "\n%s\n", title)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, k := range keys {
		fmt.Fprintf(tw, "  %s\t%d\n", safe(k), m[k])
	}
	_ = tw.Flush()
}

// safe returns s as it is when it prints as plain text, else quoted with
// strconv.Quote: a pod, container or image name (chosen by whoever creates
// the container) with a newline, carriage return, tab, terminal escape
// (\x1b), other control or format character (such as a bidi override), a
// quote or a backslash, or invalid UTF-8, would otherwise forge table lines
// or drive the terminal.
func safe(s string) string {
	if q := strconv.Quote(s); q[1:len(q)-1] != s {
		return q
	}
	return s
}
