package server

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
	"github.com/hashicorp/raft"

	"github.com/metasrv/metasrv/fsm"
)

func (n *Node) handleHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("OK"))
}

// handleLeader answers the leader's RPC address as text, waiting up to
// --leader-wait for one.
func (n *Node) handleLeader(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.LeaderWait)
	defer cancel()
	for {
		if _, addr := n.leaderRPC(); addr != "" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte(addr + "\n"))
			return
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			writeError(w, errorf(http.StatusServiceUnavailable, codeNoLeader, "no leader known within --leader-wait (%s)", n.cfg.LeaderWait))
			return
		}
	}
}

type raftStatus struct {
	NodeID           string `json:"node_id"`
	State            string `json:"state"`
	Term             uint64 `json:"term"`
	LeaderID         string `json:"leader_id"`
	CommitIndex      uint64 `json:"commit_index"`
	AppliedIndex     uint64 `json:"applied_index"` // the FSM's own
	RaftAppliedIndex uint64 `json:"raft_applied_index"`
	LastIndex        uint64 `json:"last_index"`
}

func (n *Node) raftStatus() raftStatus {
	_, lid := n.raft.LeaderWithID()
	return raftStatus{NodeID: n.cfg.NodeID, State: strings.ToLower(n.raft.State().String()), Term: n.raft.CurrentTerm(),
		LeaderID: string(lid), CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.fsm.AppliedIndex(),
		RaftAppliedIndex: n.raft.AppliedIndex(), LastIndex: n.raft.LastIndex()}
}

func (n *Node) handleRaftStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.raftStatus())
}

// handleReady is 200 only when this node knows a leader and has applied
// everything the leader has applied: a restarted node whose FSM still lags
// is not ready, even though it already forwards.
func (n *Node) handleReady(w http.ResponseWriter, r *http.Request) {
	notReady := func(format string, args ...any) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "code": "not_ready",
			"error": fmt.Sprintf(format, args...)})
	}
	st := n.raftStatus()
	switch {
	case st.LeaderID == "":
		notReady("no leader known")
		return
	case st.LeaderID == n.cfg.NodeID:
		if !n.leaderReady.Load() {
			notReady("leader %s has not completed its leadership barrier", n.cfg.NodeID)
			return
		}
	default:
		_, addr := n.leaderRPC()
		if addr == "" {
			notReady("leader %s is known but not its RPC address", st.LeaderID)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, body, err := n.call(ctx, http.MethodGet, "http://"+addr+"/admin/raft", nil)
		var ls raftStatus
		if err == nil && status == http.StatusOK {
			err = json.Unmarshal(body, &ls)
		} else if err == nil {
			err = fmt.Errorf("status %d", status)
		}
		if err != nil {
			notReady("cannot reach leader %s at %s: %v", st.LeaderID, addr, err)
			return
		}
		if err := n.waitApplied(ctx, ls.AppliedIndex); err != nil {
			notReady("applied index %d is behind the leader's %d", n.fsm.AppliedIndex(), ls.AppliedIndex)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true, "node_id": n.cfg.NodeID, "leader_id": st.LeaderID,
		"applied_index": n.fsm.AppliedIndex()})
}

type clusterMember struct {
	ID        string `json:"id"`
	RaftAddr  string `json:"raft_addr"`
	RPCAddr   string `json:"rpc_addr"`
	Suffrage  string `json:"suffrage"`
	Version   string `json:"version"`
	Protocol  int    `json:"protocol"`
	Leader    bool   `json:"leader"`
	Reachable bool   `json:"reachable"`
}

// handleCluster is this node's view of the cluster. Members come from the
// raft configuration joined with the replicated directory; reachability is
// probed now, each member bounded by 500 ms.
func (n *Node) handleCluster(w http.ResponseWriter, r *http.Request) {
	st := n.raftStatus()
	byID := map[string]*clusterMember{}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			byID[string(s.ID)] = &clusterMember{ID: string(s.ID), RaftAddr: string(s.Address), Suffrage: strings.ToLower(s.Suffrage.String())}
		}
	}
	for _, m := range n.fsm.Members() {
		cm, ok := byID[m.ID]
		if !ok {
			cm = &clusterMember{ID: m.ID, RaftAddr: m.RaftAddr, Suffrage: "none"}
			byID[m.ID] = cm
		}
		cm.RPCAddr, cm.Version, cm.Protocol = m.RPCAddr, m.Version, m.Protocol
	}
	members := make([]*clusterMember, 0, len(byID))
	var wg sync.WaitGroup
	for _, cm := range byID {
		if cm.RPCAddr == "" {
			cm.RPCAddr = n.dir.rpcAddr(cm.ID)
		}
		cm.Leader = cm.ID == st.LeaderID
		members = append(members, cm)
		if cm.ID == n.cfg.NodeID {
			cm.Reachable = true
			continue
		}
		if cm.RPCAddr == "" {
			continue
		}
		wg.Add(1)
		go func(cm *clusterMember) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), 500*time.Millisecond)
			defer cancel()
			status, _, err := n.call(ctx, http.MethodGet, "http://"+cm.RPCAddr+"/admin/health", nil)
			cm.Reachable = err == nil && status == http.StatusOK
		}(cm)
	}
	wg.Wait()
	sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
	_, leaderAddr := n.leaderRPC()
	writeJSON(w, http.StatusOK, map[string]any{
		"cluster_id": n.fsm.ClusterID(), "node_id": n.cfg.NodeID, "version": n.cfg.Version,
		"leader_id": st.LeaderID, "leader_rpc_addr": leaderAddr,
		"state": st.State, "term": st.Term, "commit_index": st.CommitIndex,
		"applied_index": st.AppliedIndex, "last_index": st.LastIndex, "members": members,
	})
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

func parseJoinBody(body []byte) (joinRequest, error) {
	var jr joinRequest
	if err := decodeJSON(body, &jr); err != nil {
		return jr, err
	}
	if err := validMemberID(jr.ID); err != nil {
		return jr, err
	}
	if err := checkHostPort(jr.RaftAddr); err != nil {
		return jr, badRequest("raft_addr %q: %v", jr.RaftAddr, err)
	}
	if err := checkHostPort(jr.RPCAddr); err != nil {
		return jr, badRequest("rpc_addr %q: %v", jr.RPCAddr, err)
	}
	return jr, nil
}

func parseJoin(_ *http.Request, body []byte) (any, error) { return parseJoinBody(body) }

func parseMemberUpdate(r *http.Request, body []byte) (any, error) {
	jr, err := parseJoinBody(body)
	if err == nil && jr.ID != mux.Vars(r)["id"] {
		err = badRequest("body id %q does not match the path id %q", jr.ID, mux.Vars(r)["id"])
	}
	return jr, err
}

func parseMemberID(r *http.Request, _ []byte) (any, error) {
	id := mux.Vars(r)["id"]
	return id, validMemberID(id)
}

// afterChange maps an error that follows a committed membership change: a
// "nothing applied" answer would be false, so it becomes outcome unknown.
func afterChange(err error) error {
	if errors.Is(err, errRetryElsewhere) {
		return outcomeUnknown(fmt.Errorf("the membership change committed, but recording it in the member table failed: %w", err))
	}
	return err
}

// configChangeErr maps a raft membership-change error.
func configChangeErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrEnqueueTimeout) {
		return errRetryElsewhere
	}
	return outcomeUnknown(err)
}

func (n *Node) raftServers() ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, configChangeErr(err)
	}
	return f.Configuration().Servers, nil
}

func (n *Node) runJoin(ctx context.Context, w http.ResponseWriter, _ *http.Request, in any) error {
	jr := in.(joinRequest)
	if cid := n.fsm.ClusterID(); jr.ClusterID != "" && cid != "" && jr.ClusterID != cid {
		return errorf(http.StatusConflict, "cluster_id_mismatch",
			"node %s belongs to cluster %s, this is cluster %s: wipe its data dir to join", jr.ID, jr.ClusterID, cid)
	}
	// Snapshots and commands follow the cluster's protocol level: an older
	// binary could not install them, so it may not join.
	if have, need := max(jr.Protocol, 1), n.clusterProtocol(); have < need {
		return errorf(http.StatusConflict, "protocol_too_old",
			"node %s speaks protocol %d but this cluster uses %d: run the current binary on it", jr.ID, have, need)
	}
	servers, err := n.raftServers()
	if err != nil {
		return err
	}
	present := false
	for _, s := range servers {
		switch {
		case string(s.ID) == jr.ID && string(s.Address) == jr.RaftAddr:
			present = true
		case string(s.ID) != jr.ID && string(s.Address) == jr.RaftAddr:
			return errorf(http.StatusConflict, codeConflict, "raft address %s is already used by member %s", jr.RaftAddr, s.ID)
		}
	}
	if !present {
		// AddVoter with a known id and a new address moves that member.
		if err := waitFuture(ctx, n.raft.AddVoter(raft.ServerID(jr.ID), raft.ServerAddress(jr.RaftAddr), 0, n.cfg.ApplyTimeout)); err != nil {
			return configChangeErr(err)
		}
		n.log.Info("member added", "id", jr.ID, "raft_addr", jr.RaftAddr, "rpc_addr", jr.RPCAddr)
	}
	if err := n.setMember(ctx, jr); err != nil {
		if !present {
			return afterChange(err) // the voter was added already
		}
		return err
	}
	writeJSON(w, http.StatusOK, joinResponse{ClusterID: n.fsm.ClusterID(), LeaderID: n.cfg.NodeID, Members: n.fsm.Members()})
	return nil
}

func (n *Node) setMember(ctx context.Context, jr joinRequest) error {
	res, err := n.apply(ctx, fsm.CmdSetMember, fsm.SetMember{
		Member: fsm.Member{ID: jr.ID, RaftAddr: jr.RaftAddr, RPCAddr: jr.RPCAddr, Version: jr.Version, Protocol: jr.Protocol},
		Time:   n.cfg.Now().UTC()})
	if err == nil && res.Code != "" {
		err = badRequest("%s", res.Reason)
	}
	return err
}

// runMemberUpdate records a member's own addresses and version; it never
// adds a voter (a removed node must not re-add itself).
func (n *Node) runMemberUpdate(ctx context.Context, w http.ResponseWriter, _ *http.Request, in any) error {
	jr := in.(joinRequest)
	servers, err := n.raftServers()
	if err != nil {
		return err
	}
	for _, s := range servers {
		if string(s.ID) == jr.ID {
			if string(s.Address) != jr.RaftAddr {
				return errorf(http.StatusConflict, codeConflict, "member %s has raft address %s, not %s; use POST /admin/cluster/join to move it", jr.ID, s.Address, jr.RaftAddr)
			}
			if err := n.setMember(ctx, jr); err != nil {
				return err
			}
			m, _ := n.fsm.Member(jr.ID)
			writeJSON(w, http.StatusOK, m)
			return nil
		}
	}
	return errorf(http.StatusNotFound, codeNotFound, "%s is not a member of the raft configuration", jr.ID)
}

func (n *Node) runRemoveMember(ctx context.Context, w http.ResponseWriter, r *http.Request, in any) error {
	id := in.(string)
	if id == n.cfg.NodeID {
		return errorf(http.StatusConflict, codeConflict,
			"%s is the leader: move leadership first with POST /admin/cluster/transfer-leadership", id)
	}
	servers, err := n.raftServers()
	if err != nil {
		return err
	}
	inConfig := false
	for _, s := range servers {
		inConfig = inConfig || string(s.ID) == id
	}
	if _, inDir := n.fsm.Member(id); !inConfig && !inDir {
		return errorf(http.StatusNotFound, codeNotFound, "no member %s", id)
	}
	if inConfig {
		if err := waitFuture(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout)); err != nil {
			return configChangeErr(err)
		}
	}
	res, err := n.apply(ctx, fsm.CmdRemoveMember, fsm.RemoveMember{ID: id, By: clientAddr(r), Time: n.cfg.Now().UTC()})
	if err != nil {
		if inConfig {
			return afterChange(err) // the server was removed already
		}
		return err
	}
	n.log.Info("member removed", "id", id, "index", res.Index)
	writeJSON(w, http.StatusOK, map[string]any{"removed": id})
	return nil
}

func parseTransfer(r *http.Request, _ []byte) (any, error) {
	to := r.URL.Query().Get("to")
	if to != "" {
		return to, validMemberID(to)
	}
	return to, nil
}

func (n *Node) runTransfer(ctx context.Context, w http.ResponseWriter, _ *http.Request, in any) error {
	to := in.(string)
	var f raft.Future
	if to == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		if to == n.cfg.NodeID {
			writeJSON(w, http.StatusOK, map[string]any{"leader_id": to})
			return nil
		}
		servers, err := n.raftServers()
		if err != nil {
			return err
		}
		var target *raft.Server
		for i := range servers {
			if string(servers[i].ID) == to && servers[i].Suffrage == raft.Voter {
				target = &servers[i]
			}
		}
		if target == nil {
			return errorf(http.StatusNotFound, codeNotFound, "no voting member %s", to)
		}
		f = n.raft.LeadershipTransferToServer(target.ID, target.Address)
	}
	if err := waitFuture(ctx, f); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return errRetryElsewhere
		}
		return errorf(http.StatusServiceUnavailable, "transfer_failed", "leadership transfer failed: %v", err)
	}
	// The old leader learns the new one from its first heartbeat: wait for
	// it briefly so the answer can name it.
	var lid raft.ServerID
	for i := 0; i < 100 && ctx.Err() == nil; i++ {
		if _, lid = n.raft.LeaderWithID(); lid != "" && string(lid) != n.cfg.NodeID {
			break
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
	writeJSON(w, http.StatusOK, map[string]any{"previous_leader_id": n.cfg.NodeID, "leader_id": string(lid)})
	return nil
}

type eventsQuery struct {
	since uint64
	limit int
}

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
	return eq, nil
}

func (n *Node) runEvents(_ context.Context, w http.ResponseWriter, _ *http.Request, in any) error {
	eq := in.(eventsQuery)
	events, first := n.fsm.Events(eq.since, eq.limit)
	writeJSON(w, http.StatusOK, map[string]any{"first_index": first, "events": events})
	return nil
}
