package leader

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metasrv/metasrv/balancer"
	"github.com/metasrv/metasrv/failover"
	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/raftnode"
)

// Config configures the leader-only work. The caller fills defaults.
type Config struct {
	NodeID string
	// Datanode heartbeats and failover.
	HeartbeatInterval time.Duration
	RegionLease       time.Duration
	// LeaseMargin is how long past a lease's end a datanode may still serve
	// (clock rates, a deposed leader).
	LeaseMargin time.Duration
	Detector    failover.DetectorConfig

	FailoverTick       time.Duration
	FailoverMaxRegions int

	BalancerInterval time.Duration
	BalancerCooldown time.Duration
	Balancer         balancer.Config

	// MaxDatanodes caps registered datanodes (0: no cap); RegisterRate and
	// RegisterBurst bound registrations (rate 0: unlimited).
	MaxDatanodes  int
	RegisterRate  float64
	RegisterBurst int
	// Approval registers new datanodes cordoned: they take no region
	// until an operator uncordons them.
	Approval bool
	// ConfirmIncarnation asks a datanode which incarnation it is, before a
	// fleet credential's claim of a new one is believed (nil: such claims
	// are refused).
	ConfirmIncarnation ConfirmFunc

	Now      func() time.Time
	Logger   hclog.Logger
	Registry *prometheus.Registry
}

// Errors of the leader's operations, besides raftnode's.
var (
	ErrNoDatanode = errors.New("no datanode is alive to take regions")
)

// NotLeaderError answers a heartbeat sent to a node that is not the ready
// leader; it names the leader so the datanode can switch at once.
type NotLeaderError struct {
	LeaderID, LeaderRPCAddr string
}

func (e *NotLeaderError) Error() string {
	return "this node is not the leader; send heartbeats to leader_rpc_addr"
}
func (e *NotLeaderError) Unwrap() error { return raftnode.ErrNotLeader }

// Leader holds the current term's state, if this node leads.
type Leader struct {
	cfg     Config
	node    *raftnode.Node
	fsm     *fsm.FSM
	log     hclog.Logger
	metrics *metrics
	term    atomic.Pointer[term]

	registrations *bucket
	confirmations *confirmCache
}

// term is the leader-local state of one leadership term.
type term struct {
	mon      *failover.Monitor
	runner   *failover.Runner
	balancer *balancer.Runner
}

// New returns the leader-only work for node; pass TermStart to node.Start.
func New(cfg Config, node *raftnode.Node) *Leader {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	l := &Leader{cfg: cfg, node: node, fsm: node.FSM(), log: cfg.Logger, registrations: newBucket(cfg.RegisterRate, cfg.RegisterBurst),
		confirmations: newConfirmCache(cfg.ConfirmIncarnation, cfg.Now)}
	l.metrics = newMetrics(l, cfg.Registry)
	return l
}

// TermStart sets up a new term's monitor, seeded so that every known
// datanode counts as having just heartbeated (and renewed its lease), and
// returns the term's workers: maintenance expiry, failover and balancer.
func (l *Leader) TermStart(ctx context.Context) []raftnode.Worker {
	c := l.cfg
	mon := failover.NewMonitor(failover.MonitorConfig{Detector: c.Detector, HeartbeatInterval: c.HeartbeatInterval,
		RegionLease: c.RegionLease, LeaseMargin: c.LeaseMargin}, c.Now)
	var ids []uint64
	for _, d := range l.fsm.Datanodes() {
		ids = append(ids, d.ID)
	}
	mon.Seed(ids)
	cl := cluster{l: l, mon: mon}
	runner := failover.NewRunner(failover.RunnerConfig{
		Tick: c.FailoverTick, MaxRegionsPerTick: c.FailoverMaxRegions, Now: c.Now,
		Logger: l.log.Named("failover"), OnTick: l.metrics.observeFailoverTick,
	}, mon, cl)
	bal := balancer.NewRunner(balancer.RunnerConfig{
		Interval: c.BalancerInterval, Cooldown: c.BalancerCooldown, Now: c.Now, Plan: c.Balancer,
		Logger: l.log.Named("balancer"), OnRound: l.metrics.observeBalancerRound,
	}, cl)
	l.term.Store(&term{mon: mon, runner: runner, balancer: bal})
	work := func(ctx context.Context) {
		defer l.term.Store(nil)
		done := make(chan struct{})
		go func() { defer close(done); bal.Run(ctx) }()
		runner.Run(ctx)
		<-done
	}
	return []raftnode.Worker{l.expiryWorker, work, l.watchWorker(mon)}
}

// current returns this term's state, or ErrNotLeader.
func (l *Leader) current() (*term, error) {
	t := l.term.Load()
	if t == nil {
		return nil, raftnode.ErrNotLeader
	}
	return t, nil
}

// cluster gives the failover and balancer runners the replicated state,
// this term's detector view, and raft.
type cluster struct {
	l   *Leader
	mon *failover.Monitor
}

func (c cluster) Status(id uint64) string         { return c.mon.Status(id).Status }
func (c cluster) Reported(id, region uint64) bool { return c.mon.Reported(id, region) }

func (c cluster) Maintenance() fsm.Maintenance { return c.l.fsm.Maintenance() }
func (c cluster) Procedures() fsm.Procedures   { return c.l.fsm.Procedures() }
func (c cluster) Datanodes() []fsm.Datanode    { return c.l.fsm.Datanodes() }
func (c cluster) Regions() []fsm.Region        { return c.l.fsm.Regions() }

// RegionCounts and RegionsOf let the runners read the FSM's owner index
// instead of copying every route each tick.
func (c cluster) RegionCounts() map[uint64]int     { return c.l.fsm.RegionCounts() }
func (c cluster) RegionsOf(id uint64) []fsm.Region { return c.l.fsm.RegionsOf(id) }
func (c cluster) RegionsByOwner() map[uint64][]fsm.Region {
	return c.l.fsm.RegionsByOwner()
}
func (c cluster) Propose(ctx context.Context, cmd fsm.MoveRegions) (fsm.Result, error) {
	return c.l.node.Propose(ctx, fsm.CmdMoveRegions, cmd)
}
