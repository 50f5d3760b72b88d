package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/raftnode"
	"github.com/metasrv/metasrv/server/wire"
)

// handleHealth answers "OK\n", as GreptimeDB's legacy admin router does.
func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("OK\n"))
}

// handleLeader answers the leader's RPC address as bare text (no newline,
// as GreptimeDB), waiting up to --leader-wait for one.
func (s *Server) handleLeader(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.LeaderWait)
	defer cancel()
	for {
		if s.node.Removed() {
			writeError(w, s.removedErr())
			return
		}
		if _, addr := s.node.Leader(); addr != "" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte(addr))
			return
		}
		if !raftnode.SleepCtx(ctx, 20*time.Millisecond) {
			writeError(w, s.noLeaderErr(r.Context(), fmt.Sprintf("no leader known within --leader-wait (%s)", s.cfg.LeaderWait)))
			return
		}
	}
}

func (s *Server) handleRaftStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.node.Status())
}

// handleReady is 200 only when this node knows a leader and has applied
// everything the leader has applied: a restarted node whose FSM still lags
// is not ready, even though it already forwards.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	st, why := s.readiness(r.Context())
	if why != "" {
		writeJSON(w, http.StatusServiceUnavailable, wire.NotReady{Code: "not_ready", Error: why})
		return
	}
	writeJSON(w, http.StatusOK, wire.Ready{Ready: true, NodeID: s.cfg.NodeID, LeaderID: st.LeaderID,
		AppliedIndex: s.fsm.AppliedIndex()})
}

// readiness says why this node is not ready ("" when it is).
func (s *Server) readiness(ctx context.Context) (wire.RaftStatus, string) {
	st := s.node.Status()
	switch {
	case s.node.Removed():
		return st, fmt.Sprintf("node %s was removed from the cluster", s.cfg.NodeID)
	case st.LeaderID == "":
		return st, "no leader known"
	case st.LeaderID == s.cfg.NodeID:
		if !s.node.BarrierDone() {
			return st, fmt.Sprintf("leader %s has not completed its leadership barrier", s.cfg.NodeID)
		}
		return st, ""
	}
	_, addr := s.node.Leader()
	if addr == "" {
		return st, fmt.Sprintf("leader %s is known but not its RPC address", st.LeaderID)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	status, body, err := s.call(ctx, http.MethodGet, s.url(addr, "/admin/raft"), nil)
	var ls wire.RaftStatus
	if err == nil && status == http.StatusOK {
		err = json.Unmarshal(body, &ls)
	} else if err == nil {
		err = fmt.Errorf("status %d", status)
	}
	if err != nil {
		return st, fmt.Sprintf("cannot reach leader %s at %s: %v", st.LeaderID, addr, err)
	}
	if err := s.node.WaitApplied(ctx, ls.AppliedIndex); err != nil {
		return st, fmt.Sprintf("applied index %d is behind the leader's %d", s.fsm.AppliedIndex(), ls.AppliedIndex)
	}
	return st, ""
}

// handleCluster is this node's view of the cluster. Members come from the
// raft configuration joined with the replicated directory; reachability is
// probed now, each member bounded by 500 ms.
func (s *Server) handleCluster(w http.ResponseWriter, r *http.Request) {
	st := s.node.Status()
	byID := map[string]*wire.ClusterMember{}
	if servers, err := s.node.Servers(); err == nil {
		for _, sv := range servers {
			byID[sv.ID] = &wire.ClusterMember{ID: sv.ID, RaftAddr: sv.RaftAddr, Suffrage: sv.Suffrage}
		}
	}
	for _, m := range s.fsm.Members() {
		cm, ok := byID[m.ID]
		if !ok {
			cm = &wire.ClusterMember{ID: m.ID, RaftAddr: m.RaftAddr, Suffrage: "none"}
			byID[m.ID] = cm
		}
		cm.RPCAddr, cm.Version, cm.Protocol = m.RPCAddr, m.Version, m.Protocol
	}
	members := make([]*wire.ClusterMember, 0, len(byID))
	var wg sync.WaitGroup
	for _, cm := range byID {
		if cm.RPCAddr == "" {
			cm.RPCAddr = s.node.DirectoryRPCAddr(cm.ID)
		}
		cm.Leader = cm.ID == st.LeaderID
		members = append(members, cm)
		if cm.ID == s.cfg.NodeID {
			cm.Reachable = true
			continue
		}
		if cm.RPCAddr == "" {
			continue
		}
		wg.Add(1)
		go func(cm *wire.ClusterMember) {
			defer wg.Done()
			cm.Reachable = s.probe(r.Context(), cm.RPCAddr)
		}(cm)
	}
	wg.Wait()
	sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
	view := wire.Cluster{ClusterID: s.fsm.ClusterID(), NodeID: s.cfg.NodeID, Version: s.cfg.Version,
		LeaderID: st.LeaderID, State: st.State, Term: st.Term, CommitIndex: st.CommitIndex,
		AppliedIndex: st.AppliedIndex, LastIndex: st.LastIndex, Members: make([]wire.ClusterMember, 0, len(members))}
	_, view.LeaderRPCAddr = s.node.Leader()
	for _, cm := range members {
		view.Members = append(view.Members, *cm)
	}
	writeJSON(w, http.StatusOK, view)
}

func validMemberID(id string) error {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "/=, \t\n") {
		return badRequest("member id %q: want 1 to 128 characters without '/', '=', ',' or spaces", id)
	}
	return nil
}

func decodeJSON(body []byte, v any) error {
	if len(body) == 0 {
		return badRequest("request body is empty; want a JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(v); err != nil {
		return badRequest("request body is not valid JSON: %v", err)
	}
	if dec.More() {
		return badRequest("request body has trailing data after the JSON object")
	}
	return nil
}

func parseJoinBody(body []byte) (wire.JoinRequest, error) {
	var jr wire.JoinRequest
	if err := decodeJSON(body, &jr); err != nil {
		return jr, err
	}
	if err := validMemberID(jr.ID); err != nil {
		return jr, err
	}
	if err := wire.CheckHostPort(jr.RaftAddr); err != nil {
		return jr, badRequest("raft_addr %q: %v", jr.RaftAddr, err)
	}
	if err := wire.CheckHostPort(jr.RPCAddr); err != nil {
		return jr, badRequest("rpc_addr %q: %v", jr.RPCAddr, err)
	}
	return jr, nil
}

// joinInput is a parsed POST /admin/cluster/join.
type joinInput struct {
	wire.JoinRequest
	force bool
}

func parseJoin(r *http.Request, body []byte) (any, error) {
	jr, err := parseJoinBody(body)
	if err != nil {
		return nil, err
	}
	force, err := parseForce(r)
	return joinInput{jr, force}, err
}

// parseForce reads ?force (true/false; a bare ?force is true): true skips
// the quorum check of a membership change, never the probe of a joining
// member.
func parseForce(r *http.Request) (bool, error) { return boolParam(r, "force", false) }

// Codes of the membership-safety refusals (the table in answers.go maps
// the raftnode sentinels to them).
const (
	codeJoinUnreachable = "join_unreachable"
	codeQuorumAtRisk    = "quorum_at_risk"
)

// transientJoinRefusal reports whether a 409 answer to a join (its body)
// is one the joining node should retry rather than give up on: it was not
// reachable yet, or the cluster had too few reachable voters at that
// moment. The other 409s (another cluster, too old a protocol, an address
// in use) are refusals for good.
func transientJoinRefusal(body []byte) bool {
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Code == codeJoinUnreachable || e.Code == codeQuorumAtRisk
}

func parseMemberUpdate(r *http.Request, body []byte) (any, error) {
	jr, err := parseJoinBody(body)
	if err == nil && jr.ID != mux.Vars(r)["id"] {
		err = badRequest("body id %q does not match the path id %q", jr.ID, mux.Vars(r)["id"])
	}
	return jr, err
}

// removeInput is a parsed DELETE /admin/cluster/members/{id}.
type removeInput struct {
	id    string
	force bool
}

func parseMemberID(r *http.Request, _ []byte) (any, error) {
	id := mux.Vars(r)["id"]
	if err := validMemberID(id); err != nil {
		return nil, err
	}
	force, err := parseForce(r)
	return removeInput{id, force}, err
}

// afterChange maps an error that follows a committed membership change: a
// "nothing applied" answer would be false, so it becomes outcome unknown.
func afterChange(err error) error {
	if errors.Is(err, raftnode.ErrNotLeader) {
		return raftnode.OutcomeUnknown(fmt.Errorf("the membership change committed, but recording it in the member table failed: %w", err))
	}
	return err
}

func (s *Server) runJoin(ctx context.Context, w http.ResponseWriter, r *http.Request, in any) error {
	ji := in.(joinInput)
	jr := ji.JoinRequest
	if cid := s.fsm.ClusterID(); jr.ClusterID != "" && cid != "" && jr.ClusterID != cid {
		return errorf(http.StatusConflict, "cluster_id_mismatch",
			"node %s belongs to cluster %s, this is cluster %s: wipe its data dir to join", jr.ID, jr.ClusterID, cid)
	}
	// Snapshots and commands follow the cluster's protocol level: a binary
	// that says it speaks less could not install them, so it may not join.
	// A body without "protocol" (an operator's manual join) is let in: the
	// member counts as the lowest level until the node registers its own.
	if have, need := jr.Protocol, s.node.ClusterProtocol(); have > 0 && have < need {
		return errorf(http.StatusConflict, "protocol_too_old",
			"node %s runs an older metasrv binary (command protocol %d) than this cluster already uses (protocol %d): it could not read this cluster's snapshots or commands; upgrade its binary, then join again", jr.ID, have, need)
	}
	servers, err := s.node.Servers()
	if err != nil {
		return err
	}
	present, moved := false, false
	for _, sv := range servers {
		switch {
		case sv.ID == jr.ID && sv.RaftAddr == jr.RaftAddr:
			present = true
		case sv.ID == jr.ID:
			moved = true
		case sv.RaftAddr == jr.RaftAddr:
			return errorf(http.StatusConflict, codeConflict, "raft address %s is already used by member %s", jr.RaftAddr, sv.ID)
		}
	}
	if !present {
		// The new voter must prove it is there before it counts toward
		// the quorum; ?force does not skip this. Having answered, it
		// counts as reachable in the quorum check.
		if err := s.node.ProbePeer(ctx, jr.ID, jr.RaftAddr); err != nil {
			s.log.Warn("join refused: the member does not answer on its raft address", "id", jr.ID, "raft_addr", jr.RaftAddr, "error", err)
			return err
		}
		change := fmt.Sprintf("adding voter %s", jr.ID)
		if moved {
			change = fmt.Sprintf("moving member %s to raft address %s", jr.ID, jr.RaftAddr)
		}
		if err := s.quorumCheck(ctx, ji.force, r, change, servers, jr.ID, ""); err != nil {
			return err
		}
		// AddVoter with a known id and a new address moves that member.
		if err := s.node.AddVoter(ctx, jr.ID, jr.RaftAddr); err != nil {
			return err
		}
		s.log.Info("member added", "id", jr.ID, "raft_addr", jr.RaftAddr, "rpc_addr", jr.RPCAddr)
	}
	if err := s.setMember(ctx, jr); err != nil {
		if !present {
			return afterChange(err) // the voter was added already
		}
		return err
	}
	resp := wire.JoinResponse{ClusterID: s.fsm.ClusterID(), LeaderID: s.cfg.NodeID, Members: []wire.Member{}}
	for _, m := range s.fsm.Members() {
		resp.Members = append(resp.Members, wire.Member(m))
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) setMember(ctx context.Context, jr wire.JoinRequest) error {
	_, err := s.node.Commit(ctx, fsm.CmdSetMember, fsm.SetMember{
		Member: fsm.Member{ID: jr.ID, RaftAddr: jr.RaftAddr, RPCAddr: jr.RPCAddr, Version: jr.Version, Protocol: jr.Protocol},
		Time:   s.cfg.Now().UTC()})
	return err
}

// runMemberUpdate records a member's own addresses and version; it never
// adds a voter (a removed node must not re-add itself).
func (s *Server) runMemberUpdate(ctx context.Context, w http.ResponseWriter, _ *http.Request, in any) error {
	jr := in.(wire.JoinRequest)
	servers, err := s.node.Servers()
	if err != nil {
		return err
	}
	for _, sv := range servers {
		if sv.ID == jr.ID {
			if sv.RaftAddr != jr.RaftAddr {
				return errorf(http.StatusConflict, codeConflict, "member %s has raft address %s, not %s; use POST /admin/cluster/join to move it", jr.ID, sv.RaftAddr, jr.RaftAddr)
			}
			if err := s.setMember(ctx, jr); err != nil {
				return err
			}
			// Answer what this write recorded: a later write (the member
			// registering itself) may already have replaced it.
			want := fsm.Member{ID: jr.ID, RaftAddr: jr.RaftAddr, RPCAddr: jr.RPCAddr, Version: jr.Version, Protocol: jr.Protocol}
			m, _ := s.fsm.Member(jr.ID)
			got := m
			got.Updated = time.Time{}
			if got != want {
				m = want
				m.Updated = s.cfg.Now().UTC()
			}
			writeJSON(w, http.StatusOK, m)
			return nil
		}
	}
	return errorf(http.StatusNotFound, codeNotFound, "%s is not a member of the raft configuration", jr.ID)
}

func (s *Server) runRemoveMember(ctx context.Context, w http.ResponseWriter, r *http.Request, in any) error {
	ri := in.(removeInput)
	id := ri.id
	if id == s.cfg.NodeID {
		return errorf(http.StatusConflict, codeConflict,
			"%s is the leader: move leadership first with POST /admin/cluster/transfer-leadership", id)
	}
	servers, err := s.node.Servers()
	if err != nil {
		return err
	}
	inConfig := false
	for _, sv := range servers {
		inConfig = inConfig || sv.ID == id
	}
	if _, inDir := s.fsm.Member(id); !inConfig && !inDir {
		return errorf(http.StatusNotFound, codeNotFound, "no member %s", id)
	}
	if inConfig {
		if err := s.quorumCheck(ctx, ri.force, r, "removing member "+id, servers, "", id); err != nil {
			return err
		}
		if err := s.node.RemoveServer(ctx, id); err != nil {
			return err
		}
	}
	a := s.actor(r)
	res, err := s.node.Propose(ctx, fsm.CmdRemoveMember, fsm.RemoveMember{ID: id, By: a.By, Identity: a.Identity, Time: s.cfg.Now().UTC()})
	if err != nil {
		if inConfig {
			return afterChange(err) // the server was removed already
		}
		return err
	}
	s.log.Info("member removed", "id", id, "index", res.Index)
	writeJSON(w, http.StatusOK, map[string]any{"removed": id})
	return nil
}

// quorumCheck refuses (409 quorum_at_risk) a configuration change that
// would leave fewer reachable voters than a quorum, unless force; a forced
// change that would have been refused is logged.
func (s *Server) quorumCheck(ctx context.Context, force bool, r *http.Request, change string, servers []raftnode.Server, add, remove string) error {
	err := s.node.CheckQuorum(ctx, change, servers, add, remove)
	if err == nil || !errors.Is(err, raftnode.ErrQuorumAtRisk) {
		return err
	}
	if force {
		s.log.Warn("membership change forced past the quorum check", "change", change, "by", clientAddr(r), "check", err.Error())
		return nil
	}
	return err
}

func parseTransfer(r *http.Request, _ []byte) (any, error) {
	to := r.URL.Query().Get("to")
	if to != "" {
		return to, validMemberID(to)
	}
	return to, nil
}

func (s *Server) runTransfer(ctx context.Context, w http.ResponseWriter, _ *http.Request, in any) error {
	to := in.(string)
	if to == s.cfg.NodeID {
		writeJSON(w, http.StatusOK, map[string]any{"previous_leader_id": to, "leader_id": to})
		return nil
	}
	lid, err := s.node.TransferLeadership(ctx, to)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"previous_leader_id": s.cfg.NodeID, "leader_id": lid})
	return nil
}

type eventsQuery struct {
	since  uint64
	limit  int
	latest int           // the newest N instead of a page from since
	wait   time.Duration // long-poll: wait up to this for an event past since
	// watch merges in the watch ring (leader and datanode status events).
	// Off by default: a reader that reads "the last event" after its own
	// write keeps getting that write's event.
	watch bool
}

// maxEventsWait bounds ?wait.
const maxEventsWait = 25 * time.Second

const maxEventsPerPage = 10000

func parseEvents(r *http.Request, _ []byte) (any, error) {
	q := r.URL.Query()
	eq := eventsQuery{limit: 1000}
	if q.Has("since") {
		v, err := strconv.ParseUint(q.Get("since"), 10, 64)
		if err != nil {
			return nil, badRequest("since=%q: want a raft index (non-negative integer)", q.Get("since"))
		}
		eq.since = v
	}
	if q.Has("limit") {
		v, err := strconv.Atoi(q.Get("limit"))
		if err != nil || v < 1 || v > maxEventsPerPage {
			return nil, badRequest("limit=%q: want an integer from 1 to %d", q.Get("limit"), maxEventsPerPage)
		}
		eq.limit = v
	}
	if q.Has("latest") {
		v, err := strconv.Atoi(q.Get("latest"))
		if err != nil || v < 1 || v > maxEventsPerPage {
			return nil, badRequest("latest=%q: want an integer from 1 to %d", q.Get("latest"), maxEventsPerPage)
		}
		if q.Has("since") || q.Has("wait") {
			return nil, badRequest("latest= takes the newest events; it does not go with since= or wait=")
		}
		eq.latest = v
	}
	if q.Has("watch") {
		v, err := strconv.ParseBool(q.Get("watch"))
		if err != nil {
			return nil, badRequest("watch=%q: want true or false", q.Get("watch"))
		}
		eq.watch = v
	}
	if q.Has("wait") {
		d, err := time.ParseDuration(q.Get("wait"))
		if err != nil || d <= 0 || d > maxEventsWait {
			return nil, badRequest("wait=%q: want a duration up to %s, such as 10s", q.Get("wait"), maxEventsWait)
		}
		eq.wait = d
	}
	return eq, nil
}

// runEvents answers a page of events. With wait and nothing past since
// yet, it waits for the next applied entry, up to wait and within the
// request's own bound, and answers an empty page when none came.
func (s *Server) runEvents(ctx context.Context, w http.ResponseWriter, _ *http.Request, in any) error {
	eq := in.(eventsQuery)
	var events []fsm.Event
	var first uint64
	if eq.latest > 0 {
		events, first = s.fsm.EventsWith(0, 0, eq.watch)
		if len(events) > eq.latest {
			events = events[len(events)-eq.latest:]
		}
	} else {
		events, first = s.fsm.EventsWith(eq.since, eq.limit, eq.watch)
	}
	if len(events) == 0 && eq.wait > 0 {
		until := time.Now().Add(eq.wait)
		if dl, ok := ctx.Deadline(); ok && dl.Add(-500*time.Millisecond).Before(until) {
			until = dl.Add(-500 * time.Millisecond)
		}
		timer := time.NewTimer(time.Until(until))
		defer timer.Stop()
		for len(events) == 0 {
			changed := s.fsm.Changed()
			if events, first = s.fsm.EventsWith(eq.since, eq.limit, eq.watch); len(events) > 0 {
				break
			}
			select {
			case <-changed:
				continue
			case <-timer.C:
			case <-ctx.Done():
			}
			break
		}
	}
	page := wire.EventsPage{FirstIndex: first, Events: make([]wire.Event, len(events))}
	for i, e := range events {
		page.Events[i] = wire.Event(e)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
