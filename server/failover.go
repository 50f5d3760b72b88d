package server

import (
	"context"
	"net/http"
	"time"

	"github.com/metasrv/metasrv/balancer"
	"github.com/metasrv/metasrv/failover"
	"github.com/metasrv/metasrv/fsm"
)

// leaderTerm is the leader-local state of one leadership term: the
// heartbeat monitor and the failover runner. Followers have none.
type leaderTerm struct {
	mon      *failover.Monitor
	runner   *failover.Runner
	balancer *balancer.Runner
}

func (n *Node) monitorConfig() failover.MonitorConfig {
	c := n.cfg
	return failover.MonitorConfig{
		Detector: failover.DetectorConfig{Threshold: c.FailureThreshold, MinStdDeviation: c.MinStdDeviation,
			AcceptableHeartbeatPause: c.AcceptableHeartbeatPause, FirstHeartbeatEstimate: c.FirstHeartbeatEstimate,
			MaxSamples: 1000},
		HeartbeatInterval: c.HeartbeatInterval, RegionLease: c.RegionLease,
		LeaseMargin: leaseMargin(c),
	}
}

// leaseMargin is how long past a lease's end the leader still assumes the
// datanode may serve. It covers clock-rate differences and a deposed
// leader: a partitioned old leader grants leases until it notices, up to
// 2 × the leader lease timeout after its last quorum contact, while the new
// leader seeds leases no earlier than a heartbeat timeout after that
// contact.
func leaseMargin(c Config) time.Duration {
	return max(c.HeartbeatInterval/2, 2*c.LeaderLeaseTimeout-c.HeartbeatTimeout+250*time.Millisecond)
}

// startFailover sets up this term's monitor, seeded so that every known
// datanode counts as having just heartbeated (and renewed its lease), and
// returns the failover worker.
func (n *Node) startFailover() LeaderWorker {
	mon := failover.NewMonitor(n.monitorConfig(), n.cfg.Now)
	var ids []uint64
	for _, d := range n.fsm.Datanodes() {
		ids = append(ids, d.ID)
	}
	mon.Seed(ids)
	runner := failover.NewRunner(failover.RunnerConfig{
		Tick: n.cfg.FailoverTick, MaxRegionsPerTick: n.cfg.FailoverMaxRegions, Now: n.cfg.Now,
		Logger: n.log.Named("failover"), OnTick: n.metrics.observeFailoverTick,
	}, mon, fsmCluster{n, mon})
	bal := balancer.NewRunner(balancer.RunnerConfig{
		Interval: n.cfg.BalancerInterval, Cooldown: n.cfg.BalancerCooldown, Now: n.cfg.Now,
		Plan: balancer.Config{Tolerance: n.cfg.BalancerTolerance, MaxMoves: n.cfg.BalancerMaxMoves,
			MaxPerNode: n.cfg.BalancerMaxMovesPerNode},
		Logger: n.log.Named("balancer"), OnRound: n.metrics.observeBalancerRound,
	}, fsmCluster{n, mon})
	n.term.Store(&leaderTerm{mon: mon, runner: runner, balancer: bal})
	return func(ctx context.Context) {
		defer n.term.Store(nil)
		done := make(chan struct{})
		go func() { defer close(done); bal.Run(ctx) }()
		runner.Run(ctx)
		<-done
	}
}

// fsmCluster gives the failover and balancer runners the replicated
// state, this term's detector view, and raft.
type fsmCluster struct {
	n   *Node
	mon *failover.Monitor
}

func (c fsmCluster) Status(id uint64) string         { return c.mon.Status(id).Status }
func (c fsmCluster) Reported(id, region uint64) bool { return c.mon.Reported(id, region) }

func (c fsmCluster) Maintenance() fsm.Maintenance { return c.n.fsm.Maintenance() }
func (c fsmCluster) Datanodes() []fsm.Datanode    { return c.n.fsm.Datanodes() }
func (c fsmCluster) Regions() []fsm.Region        { return c.n.fsm.Regions() }

// RegionCounts and RegionsOf let the failover runner's tick read the
// FSM's owner index instead of copying every route each second.
func (c fsmCluster) RegionCounts() map[uint64]int     { return c.n.fsm.RegionCounts() }
func (c fsmCluster) RegionsOf(id uint64) []fsm.Region { return c.n.fsm.RegionsOf(id) }
func (c fsmCluster) Propose(ctx context.Context, cmd fsm.MoveRegions) (fsm.Result, error) {
	return c.n.apply(ctx, fsm.CmdMoveRegions, cmd)
}

// currentTerm returns this term's leader state, or a 503 not_leader.
func (n *Node) currentTerm() (*leaderTerm, error) {
	t := n.term.Load()
	if t == nil {
		return nil, errRetryElsewhere
	}
	return t, nil
}

// liveTargets lists datanodes that may receive regions now: alive and
// active, with their region counts.
func (n *Node) liveTargets(t *leaderTerm) []failover.Load {
	counts := n.fsm.RegionCounts()
	var out []failover.Load
	for _, d := range n.fsm.Datanodes() {
		if d.AdminState != "" && d.AdminState != fsm.AdminActive {
			continue
		}
		if t.mon.Status(d.ID).Status == failover.StatusAlive {
			out = append(out, failover.Load{ID: d.ID, Regions: counts[d.ID]})
		}
	}
	return out
}

func noAliveDatanode() error {
	return errorf(http.StatusServiceUnavailable, "no_datanode", "no datanode is alive to take regions")
}

func sinceSeconds(now, t time.Time) float64 {
	if t.IsZero() {
		return -1
	}
	return now.Sub(t).Seconds()
}
