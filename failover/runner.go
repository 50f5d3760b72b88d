package failover

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/metasrv/metasrv/fsm"
)

// Cluster is what the runner needs from the replicated state.
type Cluster interface {
	Maintenance() fsm.Maintenance
	// Procedures is the procedure pause: while paused nothing is planned.
	Procedures() fsm.Procedures
	Datanodes() []fsm.Datanode
	Regions() []fsm.Region
	// Propose commits a MoveRegions command through raft and returns the
	// FSM's verdict.
	Propose(ctx context.Context, cmd fsm.MoveRegions) (fsm.Result, error)
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	Tick              time.Duration
	MaxRegionsPerTick int
	Now               func() time.Time
	Logger            hclog.Logger
	// OnTick, when set, receives every tick's report (metrics).
	OnTick func(TickReport)
}

// TickReport says what one tick saw and did.
type TickReport struct {
	Failed   []uint64 // failed datanodes
	Deferred []uint64 // failed datanodes with regions, held back by maintenance or the procedure pause
	// Paused is why no move was planned: "maintenance", "procedures
	// paused", both joined by "; ", or "" when failover may run.
	Paused   string
	Waiting  []uint64 // failed datanodes whose last lease has not expired yet
	Braked   bool     // more than half the datanodes look failed: no failover
	Moved    int
	Rejected int
	// DetectToCommit is, for each datanode whose regions all moved this
	// tick, the time from first seeing it failed to the commit.
	DetectToCommit []time.Duration
}

// Runner is the leader-only failover loop. It plans moves for failed
// datanodes and proposes them; the FSM has the last word (it rejects every
// automatic move while maintenance is on).
type Runner struct {
	cfg     RunnerConfig
	mon     *Monitor
	cluster Cluster
	log     hclog.Logger

	firstFailed map[uint64]time.Time

	mu       sync.Mutex // guards deferred, braked and paused, read by status handlers
	deferred map[uint64]bool
	braked   bool
	paused   string
}

// NewRunner returns a runner over one leadership term's monitor.
func NewRunner(cfg RunnerConfig, mon *Monitor, cluster Cluster) *Runner {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Runner{cfg: cfg, mon: mon, cluster: cluster, log: cfg.Logger,
		firstFailed: map[uint64]time.Time{}, deferred: map[uint64]bool{}}
}

// Run ticks until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rep := r.Tick(ctx)
			if r.cfg.OnTick != nil {
				r.cfg.OnTick(rep)
			}
		}
	}
}

// Tick runs one round of detection and failover.
func (r *Runner) Tick(ctx context.Context) TickReport {
	rep := r.tick(ctx)
	deferred := map[uint64]bool{}
	for _, id := range rep.Deferred {
		deferred[id] = true
	}
	r.mu.Lock()
	if rep.Paused != r.paused && rep.Paused != "" {
		r.log.Warn("failover paused: failed datanodes' regions wait", "reason", rep.Paused, "deferred", len(rep.Deferred))
	}
	r.deferred, r.braked, r.paused = deferred, rep.Braked, rep.Paused
	r.mu.Unlock()
	return rep
}

// ownerIndex is what a Cluster may offer so that a tick costs
// O(datanodes + regions of the failed ones) instead of a copy of every
// route (1 s ticks on a leader with a million regions).
type ownerIndex interface {
	RegionCounts() map[uint64]int
	RegionsOf(id uint64) []fsm.Region
}

// regionIDs is the region ids one datanode owns, or only their number.
type regionIDs struct {
	n   int
	ids []uint64 // nil until needed
	of  func() []uint64
}

// owned maps each datanode to its regions; with an owner index, ids are
// fetched only for the datanodes that need them (failed ones).
func (r *Runner) owned(dns []fsm.Datanode) map[uint64]*regionIDs {
	out := map[uint64]*regionIDs{}
	if oi, ok := r.cluster.(ownerIndex); ok {
		for id, n := range oi.RegionCounts() {
			id := id
			out[id] = &regionIDs{n: n, of: func() []uint64 {
				var ids []uint64
				for _, reg := range oi.RegionsOf(id) {
					ids = append(ids, reg.ID)
				}
				return ids
			}}
		}
		return out
	}
	for _, reg := range r.cluster.Regions() {
		o := out[reg.Datanode]
		if o == nil {
			o = &regionIDs{}
			out[reg.Datanode] = o
		}
		o.ids = append(o.ids, reg.ID)
		o.n++
	}
	return out
}

func (o *regionIDs) count() int {
	if o == nil {
		return 0
	}
	return o.n
}

func (o *regionIDs) list() []uint64 {
	if o == nil {
		return nil
	}
	if o.ids == nil && o.of != nil {
		o.ids = o.of()
	}
	return o.ids
}

func (r *Runner) tick(ctx context.Context) TickReport {
	var rep TickReport
	dns := r.cluster.Datanodes()
	owned := r.owned(dns)
	statuses := map[uint64]NodeStatus{}
	var targets []Load
	for _, d := range dns {
		st := r.mon.Status(d.ID)
		statuses[d.ID] = st
		if st.Status == StatusFailed {
			rep.Failed = append(rep.Failed, d.ID)
			if _, ok := r.firstFailed[d.ID]; !ok {
				r.firstFailed[d.ID] = r.cfg.Now()
				r.log.Warn("datanode failed", "datanode", d.ID, "phi", st.Phi, "regions", owned[d.ID].count())
			}
		} else {
			delete(r.firstFailed, d.ID)
		}
		if fsm.Schedulable(d, st.Status == StatusAlive) {
			targets = append(targets, Load{ID: d.ID, Regions: owned[d.ID].count()})
		}
	}
	if rep.Paused = pausedReason(r.cluster); rep.Paused != "" {
		// Detection goes on; moves wait until maintenance is disabled and
		// procedures are resumed.
		for _, id := range rep.Failed {
			if owned[id].count() > 0 {
				rep.Deferred = append(rep.Deferred, id)
			}
		}
		return rep
	}
	// Brake: when more than half the datanodes look failed at once, our own
	// network is the likelier culprit.
	if len(rep.Failed) > 0 && 2*len(rep.Failed) > len(dns) {
		if !r.Braked() {
			r.log.Error("failover braked: more than half of the datanodes look failed", "failed", len(rep.Failed), "datanodes", len(dns))
		}
		rep.Braked = true
		return rep
	}
	budget := r.cfg.MaxRegionsPerTick
	for _, id := range rep.Failed {
		if owned[id].count() == 0 {
			continue
		}
		// Its regions open elsewhere only once its last lease has run out,
		// so no region is ever served twice.
		if !statuses[id].LeaseExpired {
			rep.Waiting = append(rep.Waiting, id)
			continue
		}
		if budget <= 0 || len(targets) == 0 {
			continue
		}
		regs := owned[id].list()
		moves := PlanFailover(id, regs, targets, budget, statuses[id].Phi)
		if len(moves) == 0 {
			continue
		}
		res, err := r.cluster.Propose(ctx, fsm.MoveRegions{Cause: fsm.CauseFailover, Moves: moves, By: "failover", Time: r.cfg.Now().UTC()})
		if err != nil {
			r.log.Warn("failover proposal failed", "datanode", id, "error", err)
			return rep
		}
		rep.Moved += len(res.Moved)
		rep.Rejected += len(res.Rejected)
		budget -= len(res.Moved)
		for _, m := range res.Moved {
			for i := range targets {
				if targets[i].ID == m.To {
					targets[i].Regions++
				}
			}
		}
		if res.Code == fsm.RejectMaintenance || res.Code == fsm.RejectProceduresPaused {
			rep.Deferred = append(rep.Deferred, id)
			continue
		}
		r.log.Info("failover committed", "datanode", id, "moved", len(res.Moved), "rejected", len(res.Rejected), "index", res.Index)
		if len(res.Moved) == len(regs) {
			rep.DetectToCommit = append(rep.DetectToCommit, r.cfg.Now().Sub(r.firstFailed[id]))
		}
	}
	return rep
}

// Deferred reports whether datanode id's failover was held back by
// maintenance or the procedure pause at the last tick.
func (r *Runner) Deferred(id uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deferred[id]
}

// Paused is why the last tick planned no move (TickReport.Paused).
func (r *Runner) Paused() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.paused
}

// pausedReason says why failover must not plan now ("" when it may).
func pausedReason(c Cluster) string {
	var why []string
	if c.Maintenance().Enabled {
		why = append(why, "maintenance")
	}
	if c.Procedures().Paused {
		why = append(why, "procedures paused")
	}
	return strings.Join(why, "; ")
}

// Braked reports whether the last tick was braked.
func (r *Runner) Braked() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.braked
}
