package leader

import (
	"sort"
	"time"

	"github.com/metasrv/metasrv/balancer"
	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/wire"
)

// BalancerPlan is the dry run: the moves a round would make now, and why
// it would not run at all ("" when it would).
func (l *Leader) BalancerPlan() (balancer.Plan, string, error) {
	t, err := l.current()
	if err != nil {
		return balancer.Plan{}, "", err
	}
	plan, paused := t.balancer.PlanNow()
	if plan.Moves == nil {
		plan.Moves = []fsm.Move{}
	}
	return plan, paused, nil
}

// BalancerStatus is this term's balancer status.
func (l *Leader) BalancerStatus() (balancer.Status, error) {
	t, err := l.current()
	if err != nil {
		return balancer.Status{}, err
	}
	return t.balancer.Status(), nil
}

// NodeLeases is GreptimeDB's node-lease view: each datanode's last heartbeat.
func (l *Leader) NodeLeases() ([]wire.NodeLease, error) {
	t, err := l.current()
	if err != nil {
		return nil, err
	}
	out := []wire.NodeLease{}
	for _, hbs := range t.mon.History() {
		last := hbs[len(hbs)-1]
		out = append(out, wire.NodeLease{Name: map[string]uint64{"node_id": last.ID},
			HumanTime: last.Received.UTC().Format(time.RFC3339Nano),
			Lease:     wire.Lease{TimestampMillis: last.Received.UnixMilli(), NodeAddr: last.Addr}})
	}
	return out, nil
}

// HeartbeatStats is GreptimeDB's heartbeat view: the kept heartbeats of
// every datanode (only the one at addr when addr is not ""), oldest first.
func (l *Leader) HeartbeatStats(addr string) ([][]wire.HeartbeatStat, error) {
	t, err := l.current()
	if err != nil {
		return nil, err
	}
	out := [][]wire.HeartbeatStat{}
	for _, hbs := range t.mon.History() {
		if addr != "" && hbs[len(hbs)-1].Addr != addr {
			continue
		}
		stats := make([]wire.HeartbeatStat, 0, len(hbs))
		for _, hb := range hbs {
			rs := hb.RegionStats
			if rs == nil {
				rs = []wire.RegionStat{}
			}
			stats = append(stats, wire.HeartbeatStat{TimestampMillis: hb.Received.UnixMilli(), ID: hb.ID, Addr: hb.Addr,
				RegionNum: len(hb.Regions), RegionStats: rs, NodeEpoch: hb.StartTimeMs})
		}
		sort.SliceStable(stats, func(i, j int) bool { return stats[i].TimestampMillis < stats[j].TimestampMillis })
		out = append(out, stats)
	}
	return out, nil
}

// FailoverPaused is why this term's failover planned no move at its last
// tick ("" when it ran).
func (l *Leader) FailoverPaused() (string, error) {
	t, err := l.current()
	if err != nil {
		return "", err
	}
	return t.runner.Paused(), nil
}
