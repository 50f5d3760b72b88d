package leader

import (
	"context"
	"errors"
	"time"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/raftnode"
	"github.com/metasrv/metasrv/server/wire"
)

// Heartbeat takes one datanode heartbeat (already validated) and assembles
// its answer: the regions it owns, those it may open now, those it must
// close, and its lease. Only the ready leader takes heartbeats; elsewhere
// the answer is a *NotLeaderError naming the leader. A datanode seen for the
// first time, or at a new address, is registered first.
// fleet says the sender's credential is not bound to hb.ID: a heartbeat
// that would start an incarnation of a known datanode is then believed
// only once the datanode confirms it (see incarnation.go).
func (l *Leader) Heartbeat(ctx context.Context, hb wire.Heartbeat, fleet bool) (wire.HeartbeatResponse, error) {
	t := l.term.Load()
	if !l.node.IsReadyLeader() || t == nil {
		lid, addr := l.node.Leader()
		return wire.HeartbeatResponse{}, &NotLeaderError{LeaderID: lid, LeaderRPCAddr: addr}
	}
	// Refused before anything is registered: nothing changes.
	if err := t.mon.Check(hb); err != nil {
		return wire.HeartbeatResponse{}, err
	}
	if d, ok := l.fsm.Datanode(hb.ID); fleet && ok && !t.mon.Heard(hb) {
		owner := len(l.fsm.RegionsOf(hb.ID)) > 0
		if err := l.confirmations.confirm(ctx, hb, d.Addr, l.confirmTimeout(), owner); err != nil {
			detail := err.Error()
			var ce *confirmError
			if errors.As(err, &ce) {
				detail = ce.detail
			}
			l.log.Warn("a fleet credential's heartbeat was refused", "datanode", hb.ID, "addr", d.Addr, "error", err, "detail", detail)
			return wire.HeartbeatResponse{}, err
		}
	}
	if d, ok := l.fsm.Datanode(hb.ID); !ok || d.Addr != hb.Addr {
		if err := l.admitRegistration(hb.ID, ok); err != nil {
			return wire.HeartbeatResponse{}, err
		}
		reg := fsm.RegisterDatanode{ID: hb.ID, Addr: hb.Addr, Time: l.cfg.Now().UTC()}
		if l.cfg.Approval && !ok {
			// Older replicas would register it active: wait for them.
			if p := l.node.ClusterProtocol(); p < fsm.IdentityProtocol {
				return wire.HeartbeatResponse{}, raftnode.Errorf(raftnode.ErrUpgradeInProgress,
					"--datanode-approval registers datanodes cordoned, which needs every member at protocol %d (the cluster is at %d): finish the upgrade", fsm.IdentityProtocol, p)
			}
			reg.Cordoned = true
		}
		ctx, cancel := context.WithTimeout(ctx, l.cfg.HeartbeatInterval)
		_, err := l.node.Commit(ctx, fsm.CmdRegisterDatanode, reg)
		cancel()
		if err != nil {
			return wire.HeartbeatResponse{}, err
		}
		l.log.Info("datanode registered", "datanode", hb.ID, "addr", hb.Addr, "cordoned", reg.Cordoned)
	}
	resp := wire.HeartbeatResponse{LeaderID: l.cfg.NodeID, HeartbeatIntervalMs: l.cfg.HeartbeatInterval.Milliseconds(),
		LeaseMs: l.cfg.RegionLease.Milliseconds(), Regions: []uint64{}, Open: []uint64{}, Close: []uint64{}}
	owned := map[uint64]bool{}
	for _, reg := range l.fsm.RegionsOf(hb.ID) {
		owned[reg.ID] = true
		resp.Regions = append(resp.Regions, reg.ID)
	}
	open, granted := t.mon.Grant(hb, resp.Regions)
	if open != nil {
		resp.Open = open
	}
	// The answer acknowledges the heartbeat it grants a lease for; one that
	// was not taken (stale) grants none, and says so.
	ack := uint64(0)
	if granted {
		ack = hb.Seq
	} else {
		resp.LeaseMs = 0
	}
	resp.AckSeq = &ack
	for _, id := range hb.Regions {
		if !owned[id] {
			resp.Close = append(resp.Close, id)
		}
	}
	return resp, nil
}

// confirmTimeout bounds the question to a datanode: well inside the
// agent's own wait for an answer (a third of the interval).
func (l *Leader) confirmTimeout() time.Duration {
	return min(max(l.cfg.HeartbeatInterval/4, 100*time.Millisecond), 2*time.Second)
}
