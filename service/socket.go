package service

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/internal/logfields"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service/decision"
	"github.com/patchgate/patchgate/service/decision/wire"
)

// requestTimeout bounds reading one request and writing its answer.
const requestTimeout = 10 * time.Second

// ErrInUse is returned when another live process serves the socket path.
var ErrInUse = errors.New("socket in use by a running service")

// listenUnix listens on path, mode 0600. A socket left behind by a service
// that died is removed first; a socket that still answers is left alone
// and refused; anything that is not a socket is never removed.
func listenUnix(path string) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket; not removing it", path)
		}
		c, derr := net.DialTimeout("unix", path, 200*time.Millisecond)
		if derr == nil {
			_ = c.Close()
			return nil, fmt.Errorf("%w: %s", ErrInUse, path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing stale socket %s: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		return nil, err
	}
	ln.SetUnlinkOnClose(true)
	return ln, nil
}

// serve accepts decision requests until ctx is done.
func (s *Service) serve(ctx context.Context) {
	go func() {
		<-ctx.Done()
		_ = s.ln.Close()
	}()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.setErr(fmt.Errorf("decision socket accept: %w", err))
				s.logger.WithError(err).Error("decision socket stopped")
			}
			return
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.handle(ctx, c)
		}()
	}
}

// handle answers the requests on one connection.
func (s *Service) handle(ctx context.Context, c *net.UnixConn) {
	defer func() { _ = c.Close() }()
	cred, err := decision.PeerCred(c)
	if err != nil || !decision.UIDAllowed(cred.Uid, s.allowedUIDs) {
		uid := int64(-1)
		if cred != nil {
			uid = int64(cred.Uid)
		}
		s.logger.WithField("peer_uid", uid).WithError(err).Warn("decision socket: peer refused")
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_ = decision.WriteMessage(c, decision.DecideResponse{Version: decision.ProtocolVersion, Error: "peer not allowed"})
		return
	}
	br := bufio.NewReaderSize(c, 64<<10)
	for ctx.Err() == nil {
		_ = c.SetDeadline(time.Now().Add(requestTimeout))
		line, err := wire.ReadLine(br)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) && !isEOF(err) {
				s.badRequest(c, err)
			}
			return
		}
		// A bundle request (the thin hook) or a workload request; each is
		// decoded strictly as what its version says it is.
		// The span: the request read until the answer is written (what the
		// hook waits for, less the socket's own round trip).
		start := time.Now()
		kind, id := "workload", ""
		var resp any
		if v, verr := wire.MessageVersion(line); verr == nil && v == wire.BundleVersion {
			var req wire.BundleRequest
			if err := wire.Decode(line, &req); err != nil {
				s.logger.WithError(err).Warn("decision socket: bad bundle request")
				_ = decision.WriteMessage(c, wire.BundleResponse{Version: wire.BundleVersion, Fallback: err.Error()})
				return
			}
			resp = s.answerBundle(ctx, &req, cred)
			kind, id = "bundle", req.ContainerID
		} else {
			var req decision.DecideRequest
			if err := wire.Decode(line, &req); err != nil {
				s.badRequest(c, err)
				return
			}
			resp = s.answer(ctx, &req, cred)
			id = req.ContainerID
		}
		if err := decision.WriteMessage(c, resp); err != nil {
			return
		}
		s.logSpan(kind, id, start)
	}
}

// logSpan writes, at debug level only, how long the service took to
// answer one decision socket request (docs/benchmarks.md, the breakdown).
func (s *Service) logSpan(kind, id string, start time.Time) {
	if l, ok := s.logger.(interface{ IsLevelEnabled(logrus.Level) bool }); !ok || !l.IsLevelEnabled(logrus.DebugLevel) {
		return
	}
	s.logger.WithFields(logrus.Fields{
		"kind": kind, "container_id": id, "took_ms": logfields.Ms(time.Since(start)),
	}).Debug("decision socket: answered")
}

// badRequest answers a request that could not be read, and the connection
// is closed.
func (s *Service) badRequest(c *net.UnixConn, err error) {
	s.logger.WithError(err).Warn("decision socket: bad request")
	_ = decision.WriteMessage(c, decision.DecideResponse{Version: decision.ProtocolVersion, Error: err.Error(), OnError: s.Policy().Spec.Hook.OnError})
}

func isEOF(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || err.Error() == "EOF"
}

// answerMargin (or a quarter of the budget, when that is more: a loaded node
// needs it) is kept from the caller's budget for evaluating, writing the
// audit record and sending the answer after the wait for remediation.
const answerMargin = 100 * time.Millisecond

// requestBudget is how long the caller waits for the answer to req.
func requestBudget(req *decision.DecideRequest) (time.Duration, error) {
	switch {
	case req.BudgetMillis < 0:
		return 0, fmt.Errorf("budgetMs %d is negative", req.BudgetMillis)
	case req.BudgetMillis == 0:
		return decision.DefaultTimeout, nil
	}
	return time.Duration(req.BudgetMillis) * time.Millisecond, nil
}

func (s *Service) answer(ctx context.Context, req *decision.DecideRequest, cred *syscall.Ucred) decision.DecideResponse {
	received := time.Now()
	pol := s.Policy()
	resp := decision.DecideResponse{Version: decision.ProtocolVersion, OnError: pol.Spec.Hook.OnError}
	budget, err := requestBudget(req)
	switch {
	case req.Version != decision.ProtocolVersion:
		resp.Error = fmt.Sprintf("protocol version %d not supported (want %d)", req.Version, decision.ProtocolVersion)
		return resp
	case err != nil:
		resp.Error = err.Error()
		return resp
	case req.Workload == nil:
		resp.Error = "request has no workload"
		return resp
	}
	w := req.Workload
	w.Seen = req.Seen
	if w.Source == "" {
		w.Source = audit.SourceHook
	}
	// Answer before the caller gives up: it would decide on its own.
	ctx, cancel := context.WithDeadline(ctx, received.Add(budget-max(answerMargin, budget/4)))
	defer cancel()
	// What the NRI validator judged of this container, on the container as
	// it will run, is not judged again; everything else is. The caller's
	// own claims (the deprecated afterNRI and nriJudged) are never
	// believed: an unknown container is judged in full and audited on its
	// own.
	var judged policy.Field
	var nriRecord string
	e, afterNRI := s.judged.take(req.ContainerID, s.now())
	if afterNRI {
		judged, nriRecord = e.fields, e.auditID
	}
	w.Seen = policy.LeftToJudge(req.Seen, judged)
	res := s.Admit(ctx, w, AdmitOptions{Source: w.Source, AuditID: req.ID, AfterNRI: afterNRI, Final: true, NRIJudged: judged})
	resp.NRIJudged = judged
	resp.AfterNRI = afterNRI
	resp.Decision = &res.Decision
	resp.Audited = res.Audited
	if res.AuditErr != nil {
		resp.AuditError = res.AuditErr.Error()
	}
	if res.Remediation != nil {
		resp.Remediation = res.Remediation.Outcome
	}
	s.logger.WithFields(logrus.Fields{
		"peer_pid": cred.Pid, "pod": w.Pod.Namespace + "/" + w.Pod.Name, "container": w.Container.Name,
		"container_id": w.Container.ID, "decision": res.Decision.Verdict, "rules": ruleIDs(res.Decision),
		"after_nri": afterNRI, "nri_judged": policy.FieldNames(judged), "nri_record": nriRecord,
	}).Debug("decision")
	return resp
}

func ruleIDs(d policy.Decision) []string {
	var ids []string
	for _, v := range d.Violations {
		ids = append(ids, v.Rule)
	}
	return ids
}
