package leader

import (
	"context"
	"time"

	"github.com/metasrv/metasrv/failover"
	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/raftnode"
	"github.com/metasrv/metasrv/server/wire"
)

// Routes shows regions as routes; in_flight comes from this term's view
// (false on a follower).
func (l *Leader) Routes(regions []fsm.Region) []wire.Route {
	t := l.term.Load()
	out := make([]wire.Route, 0, len(regions))
	for _, r := range regions {
		v := wire.Route{ID: r.ID, Table: r.Table, Datanode: r.Datanode, Version: r.Version}
		if t != nil {
			v.InFlight = !t.mon.Reported(r.Datanode, r.ID)
		}
		out = append(out, v)
	}
	return out
}

// CreateTable places a new table's regions on the live, active datanodes
// with the fewest regions and commits it.
func (l *Leader) CreateTable(ctx context.Context, name string, regions int, by fsm.Actor) ([]wire.Route, error) {
	t, err := l.current()
	if err != nil {
		return nil, err
	}
	for _, tb := range l.fsm.Tables() {
		if tb.Name == name {
			return nil, raftnode.Errorf(raftnode.ErrConflict, "table %q already exists", name)
		}
	}
	placement := failover.Spread(regions, l.liveTargets(t))
	if placement == nil {
		return nil, ErrNoDatanode
	}
	// Refused if it exists, or a placement target vanished meanwhile.
	res, err := l.node.Commit(ctx, fsm.CmdCreateTable, fsm.CreateTable{Name: name, Placement: placement, By: by.By, Identity: by.Identity, Time: l.cfg.Now().UTC()})
	if err != nil {
		return nil, err
	}
	l.log.Info("table created", "table", name, "regions", len(res.Regions), "index", res.Index)
	return l.Routes(res.Regions), nil
}

// liveTargets lists datanodes that may receive regions now, with their
// region counts.
func (l *Leader) liveTargets(t *term) []failover.Load {
	counts := l.fsm.RegionCounts()
	var out []failover.Load
	for _, d := range l.fsm.Datanodes() {
		if fsm.Schedulable(d, t.mon.Status(d.ID).Status == failover.StatusAlive) {
			out = append(out, failover.Load{ID: d.ID, Regions: counts[d.ID]})
		}
	}
	return out
}

// Migrate is a manual migration of region to datanode to (from, when not
// 0, must be its owner): allowed during maintenance, because an operator
// asked for it.
func (l *Leader) Migrate(ctx context.Context, region, to, from uint64, by fsm.Actor) (wire.Route, error) {
	t, err := l.current()
	if err != nil {
		return wire.Route{}, err
	}
	reg, ok := l.fsm.Region(region)
	if !ok {
		return wire.Route{}, raftnode.Errorf(raftnode.ErrNotFound, "no region %d", region)
	}
	if _, ok := l.fsm.Datanode(to); !ok {
		return wire.Route{}, raftnode.Errorf(raftnode.ErrNotFound, "no datanode %d", to)
	}
	if from != 0 && from != reg.Datanode {
		return wire.Route{}, raftnode.Errorf(raftnode.ErrConflict, "region %d is on datanode %d, not %d", reg.ID, reg.Datanode, from)
	}
	if reg.Datanode == to {
		return l.Routes([]fsm.Region{reg})[0], nil
	}
	if st := t.mon.Status(to); st.Status != failover.StatusAlive {
		return wire.Route{}, raftnode.Errorf(raftnode.ErrConflict, "target datanode %d is %s, not alive", to, st.Status)
	}
	res, err := l.node.Commit(ctx, fsm.CmdMoveRegions, fsm.MoveRegions{Cause: fsm.CauseManual, By: by.By, Identity: by.Identity, Time: l.cfg.Now().UTC(),
		Moves: []fsm.Move{{Region: reg.ID, From: reg.Datanode, To: to}}})
	if err != nil {
		return wire.Route{}, err
	}
	reg, _ = l.fsm.Region(region)
	l.log.Info("region migrated", "region", reg.ID, "to", to, "index", res.Index)
	return l.Routes([]fsm.Region{reg})[0], nil
}

// RemoveDatanode removes a datanode that holds no regions and can no
// longer serve any under a lease.
func (l *Leader) RemoveDatanode(ctx context.Context, id uint64, by fsm.Actor) error {
	t, err := l.current()
	if err != nil {
		return err
	}
	// Removing it would drop the only record that it may still serve
	// regions under a lease: wait until it has closed them or its lease ran out.
	if t.mon.StillServing(id) {
		return raftnode.Errorf(raftnode.ErrConflict, "datanode %d may still serve regions under its lease; retry once it has closed them or its lease has run out", id)
	}
	_, err = l.node.Commit(ctx, fsm.CmdRemoveDatanode, fsm.RemoveDatanode{ID: id, By: by.By, Identity: by.Identity, Time: l.cfg.Now().UTC()})
	return err
}

// Datanodes shows every registered datanode with this term's detector
// view (status unknown on a follower).
func (l *Leader) Datanodes() []wire.Datanode {
	t := l.term.Load()
	counts := l.fsm.RegionCounts()
	now := l.cfg.Now()
	out := []wire.Datanode{}
	for _, d := range l.fsm.Datanodes() {
		v := wire.Datanode{ID: d.ID, Addr: d.Addr, Status: failover.StatusUnknown, Regions: counts[d.ID], AdminState: d.AdminState,
			SecondsSinceHeartbeat: -1}
		if t != nil {
			st := t.mon.Status(d.ID)
			v.Status, v.Phi, v.LeaseExpired = st.Status, round2(st.Phi), st.LeaseExpired
			v.StillServing = t.mon.StillServing(d.ID)
			v.SecondsSinceHeartbeat = round2(sinceSeconds(now, st.LastHeartbeat))
			v.FailoverDeferred = t.runner.Deferred(d.ID)
			v.FailoverBraked = t.runner.Braked() && st.Status == failover.StatusFailed
		}
		out = append(out, v)
	}
	return out
}

func round2(f float64) float64 {
	if f > 1e9 {
		return 1e9 // phi of a long-dead datanode; keep the JSON finite
	}
	return float64(int64(f*100)) / 100
}

func sinceSeconds(now, t time.Time) float64 {
	if t.IsZero() {
		return -1
	}
	return now.Sub(t).Seconds()
}
