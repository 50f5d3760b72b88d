package httpapi

// The maintenance preflight: can maintenance be turned off now without
// surprises? GET /admin/maintenance/preflight answers what the leader
// sees; a disable with require_ready=true runs the same checks on the
// leader, inside the write's own endpoint run, just before committing.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/metasrv/metasrv/failover"
	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/raftnode"
	"github.com/metasrv/metasrv/server/wire"
)

// Bounds of the voter check: one probe, and the whole wait for a voter to
// apply what the leader had committed when the check started.
const (
	preflightProbe = time.Second
	preflightWait  = 2 * time.Second
	// preflightListed caps the ids named in one check's detail.
	preflightListed = 5
)

// runPreflight answers the leader's checks; only the leader has the
// datanodes' live view, so ?stale on a follower is answered not_leader.
func (s *Server) runPreflight(ctx context.Context, w http.ResponseWriter, _ *http.Request, _ any) error {
	if !s.node.IsLeader() {
		return raftnode.ErrNotLeader
	}
	writeJSON(w, http.StatusOK, s.preflight(ctx))
	return nil
}

// preflight runs every check on this node, which must be the leader.
func (s *Server) preflight(ctx context.Context) wire.Preflight {
	p := wire.Preflight{Checks: []wire.PreflightCheck{s.checkVoters(ctx)}, MoveFrom: []wire.PreflightMove{}}
	dns := s.lead.Datanodes()
	var bad []string
	for _, d := range dns {
		if d.Status == failover.StatusFailed && d.Regions > 0 {
			p.WouldMove += d.Regions
			p.MoveFrom = append(p.MoveFrom, wire.PreflightMove{Datanode: d.ID, Addr: d.Addr, Regions: d.Regions})
		}
		if d.Status != failover.StatusAlive && d.AdminState == fsm.AdminActive {
			bad = append(bad, fmt.Sprintf("%d (%s, %s, %d regions)", d.ID, d.Addr, d.Status, d.Regions))
		}
	}
	dc := wire.PreflightCheck{Name: wire.CheckDatanodes, OK: len(bad) == 0,
		Detail: fmt.Sprintf("all %d datanodes alive (or cordoned or draining)", len(dns))}
	if len(bad) > 0 {
		dc.Detail = fmt.Sprintf("%d of %d datanodes not alive: %s", len(bad), len(dns), listed(bad))
	}
	p.Checks = append(p.Checks, dc)

	routes := s.lead.Routes(s.fsm.Regions())
	var moving []string
	for _, r := range routes {
		if r.InFlight {
			moving = append(moving, fmt.Sprintf("%d on datanode %d", r.ID, r.Datanode))
		}
	}
	rc := wire.PreflightCheck{Name: wire.CheckRegions, OK: len(moving) == 0,
		Detail: fmt.Sprintf("all %d regions served by their owners", len(routes))}
	if len(moving) > 0 {
		rc.Detail = fmt.Sprintf("%d of %d regions not served by their owner yet: region %s", len(moving), len(routes), listed(moving))
	}
	p.Checks = append(p.Checks, rc)

	p.Ready = true
	for _, c := range p.Checks {
		p.Ready = p.Ready && c.OK
	}
	return p
}

func listed(items []string) string {
	if len(items) > preflightListed {
		return strings.Join(items[:preflightListed], ", ") + fmt.Sprintf(" and %d more", len(items)-preflightListed)
	}
	return strings.Join(items, ", ")
}

// checkVoters: every voter answers /admin/raft, follows this leader, and
// has applied what this leader had committed when the check started.
func (s *Server) checkVoters(ctx context.Context) wire.PreflightCheck {
	c := wire.PreflightCheck{Name: wire.CheckVoters}
	servers, err := s.node.Servers()
	if err != nil {
		c.Detail = fmt.Sprintf("cannot read the raft configuration: %v", err)
		return c
	}
	target := s.node.Status().CommitIndex
	ctx, cancel := context.WithTimeout(ctx, preflightWait)
	defer cancel()
	var mu sync.Mutex
	var bad []string
	var wg sync.WaitGroup
	voters := 0
	for _, sv := range servers {
		if !sv.Voter {
			continue
		}
		voters++
		wg.Add(1)
		go func(sv raftnode.Server) {
			defer wg.Done()
			if why := s.voterBehind(ctx, sv.ID, target); why != "" {
				mu.Lock()
				bad = append(bad, sv.ID+" "+why)
				mu.Unlock()
			}
		}(sv)
	}
	wg.Wait()
	sort.Strings(bad)
	c.OK = len(bad) == 0
	c.Detail = fmt.Sprintf("all %d voters reachable and caught up (index %d)", voters, target)
	if !c.OK {
		c.Detail = fmt.Sprintf("%d of %d voters not ready: %s", len(bad), voters, strings.Join(bad, "; "))
	}
	return c
}

// voterBehind says why voter id is not caught up with target ("" when it
// is), retrying until ctx ends.
func (s *Server) voterBehind(ctx context.Context, id string, target uint64) string {
	if id == s.cfg.NodeID {
		if err := s.node.WaitApplied(ctx, target); err != nil {
			return fmt.Sprintf("(this leader) applied %d, behind its own commit index %d", s.fsm.AppliedIndex(), target)
		}
		return ""
	}
	addr := s.node.DirectoryRPCAddr(id)
	if m, ok := s.fsm.Member(id); ok && m.RPCAddr != "" {
		addr = m.RPCAddr
	}
	if addr == "" {
		return "has no known RPC address"
	}
	for {
		why := s.probeVoter(ctx, addr, target)
		if why == "" || !raftnode.SleepCtx(ctx, 100*time.Millisecond) {
			return why
		}
	}
}

func (s *Server) probeVoter(ctx context.Context, addr string, target uint64) string {
	pctx, cancel := context.WithTimeout(ctx, preflightProbe)
	defer cancel()
	status, body, err := s.call(pctx, http.MethodGet, s.url(addr, "/admin/raft"), nil)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("status %d", status)
	}
	var st wire.RaftStatus
	if err == nil {
		err = json.Unmarshal(body, &st)
	}
	switch {
	case err != nil:
		return fmt.Sprintf("unreachable at %s: %v", addr, err)
	case st.LeaderID != s.cfg.NodeID:
		return fmt.Sprintf("at %s follows leader %q, not %s", addr, st.LeaderID, s.cfg.NodeID)
	case st.AppliedIndex < target:
		return fmt.Sprintf("at %s applied %d, behind the leader's commit index %d", addr, st.AppliedIndex, target)
	}
	return ""
}

// guarded is a maintenance write that may require a passing preflight.
type guarded struct {
	set          any // what the maintenance parser made (fsm.SetMaintenance)
	requireReady bool
}

// parseGuarded wraps a maintenance parser with ?require_ready, which only
// a disable may carry.
func parseGuarded(inner func(*http.Request, []byte) (any, error)) func(*http.Request, []byte) (any, error) {
	return func(r *http.Request, body []byte) (any, error) {
		req, err := boolParam(r, "require_ready", false)
		if err != nil {
			return nil, err
		}
		in, err := inner(r, body)
		if err != nil {
			return nil, err
		}
		if c, ok := in.(fsm.SetMaintenance); ok && req && c.Enabled {
			return nil, badRequest("require_ready applies only when disabling maintenance")
		}
		return guarded{set: in, requireReady: req}, nil
	}
}

// runGuarded runs the preflight on the leader just before the write and
// refuses it, changing nothing, when a check failed.
func (s *Server) runGuarded(ctx context.Context, w http.ResponseWriter, r *http.Request, in any) error {
	g := in.(guarded)
	if g.requireReady {
		if !s.node.IsLeader() {
			return raftnode.ErrNotLeader
		}
		p := s.preflight(ctx)
		if !p.Ready {
			var failed []wire.PreflightCheck
			var names []string
			for _, c := range p.Checks {
				if !c.OK {
					failed = append(failed, c)
					names = append(names, c.Name+": "+c.Detail)
				}
			}
			return &apiError{Status: http.StatusConflict, Code: wire.CodePreflightFailed,
				Msg:   "maintenance stays on: preflight failed: " + strings.Join(names, "; "),
				Extra: map[string]any{"checks": failed, "would_move": p.WouldMove, "move_from": p.MoveFrom}}
		}
	}
	return s.runMaintenanceSet(ctx, w, r, g.set)
}
