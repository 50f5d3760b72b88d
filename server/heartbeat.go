package server

import (
	"context"
	"net/http"

	"github.com/metasrv/metasrv/failover"
	"github.com/metasrv/metasrv/fsm"
)

// heartbeatResponse tells a datanode what to serve. Regions is the full,
// authoritative list it owns; Open and Close are the changes to make now.
// The lease covers every owned region it has open, for LeaseMs from the
// moment the datanode sent the heartbeat.
type heartbeatResponse struct {
	LeaderID            string   `json:"leader_id"`
	HeartbeatIntervalMs int64    `json:"heartbeat_interval_ms"`
	LeaseMs             int64    `json:"lease_ms"`
	Regions             []uint64 `json:"regions"`
	Open                []uint64 `json:"open"`
	Close               []uint64 `json:"close"`
}

// handleHeartbeat is POST /v1/heartbeat. Only the leader takes heartbeats;
// a follower answers 503 not_leader with the leader's address so the
// datanode switches at once.
func (n *Node) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	var hb failover.Heartbeat
	body, err := readBody(w, r)
	if err == nil {
		err = decodeJSON(body, &hb)
	}
	if err == nil && hb.ID == 0 {
		err = badRequest("id must be a positive integer")
	}
	if err == nil {
		if e := checkHostPort(hb.Addr); e != nil {
			err = badRequest("addr %q: %v", hb.Addr, e)
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	t := n.term.Load()
	if !n.isReadyLeader() || t == nil {
		lid, addr := n.leaderRPC()
		writeError(w, &apiError{Status: http.StatusServiceUnavailable, Code: codeNotLeader,
			Msg:   "this node is not the leader; send heartbeats to leader_rpc_addr",
			Extra: map[string]any{"leader_id": lid, "leader_rpc_addr": addr}})
		return
	}
	if d, ok := n.fsm.Datanode(hb.ID); !ok || d.Addr != hb.Addr {
		ctx, cancel := context.WithTimeout(r.Context(), n.cfg.HeartbeatInterval)
		res, err := n.apply(ctx, fsm.CmdRegisterDatanode, fsm.RegisterDatanode{ID: hb.ID, Addr: hb.Addr, Time: n.cfg.Now().UTC()})
		cancel()
		if err == nil && res.Code != "" {
			err = badRequest("%s", res.Reason)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		n.log.Info("datanode registered", "datanode", hb.ID, "addr", hb.Addr)
	}
	resp := heartbeatResponse{LeaderID: n.cfg.NodeID, HeartbeatIntervalMs: n.cfg.HeartbeatInterval.Milliseconds(),
		LeaseMs: n.cfg.RegionLease.Milliseconds(), Regions: []uint64{}, Open: []uint64{}, Close: []uint64{}}
	owned := map[uint64]bool{}
	for _, reg := range n.fsm.RegionsOf(hb.ID) {
		owned[reg.ID] = true
		resp.Regions = append(resp.Regions, reg.ID)
	}
	if open := t.mon.Grant(hb, resp.Regions); open != nil {
		resp.Open = open
	}
	for _, id := range hb.Regions {
		if !owned[id] {
			resp.Close = append(resp.Close, id)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}
