package balancer

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/metasrv/metasrv/fsm"
)

// Datanode statuses as the failure detector reports them (the server maps
// failover's statuses onto these strings).
const statusAlive = "alive"

// Cluster is what the runner needs from the leader.
type Cluster interface {
	Maintenance() fsm.Maintenance
	Datanodes() []fsm.Datanode
	Regions() []fsm.Region
	// Status is the detector's status of a datanode: alive, suspect,
	// failed or unknown.
	Status(id uint64) string
	// Reported is true once a region's owner has reported serving it; a
	// region not reported yet is in flight and is not moved again.
	Reported(id, region uint64) bool
	Propose(ctx context.Context, cmd fsm.MoveRegions) (fsm.Result, error)
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	Interval time.Duration // 0 disables automatic balancing (drain still runs)
	Cooldown time.Duration // no second move of a region within it
	Plan     Config
	// DrainInterval is how often draining datanodes give up regions
	// (at most Plan.MaxMoves per round).
	DrainInterval time.Duration
	Now           func() time.Time
	Logger        hclog.Logger
	OnRound       func(Report)
}

// Report is one balancing round's outcome (for metrics).
type Report struct {
	Drain     bool // a drain round rather than a balance round
	Paused    string
	Planned   int
	Committed int
	Rejected  int
	Spread    int
	DrainLeft int // regions still on draining datanodes
}

// Status is what GET /admin/balancer/status shows.
type Status struct {
	Enabled       bool       `json:"enabled"`
	Interval      string     `json:"interval"`
	Paused        bool       `json:"paused"`
	PausedReason  string     `json:"paused_reason,omitempty"`
	LastRun       *time.Time `json:"last_run"`
	Runs          uint64     `json:"runs"`
	MovesDone     uint64     `json:"moves_done"`
	MovesRejected uint64     `json:"moves_rejected"`
	Spread        int        `json:"spread"`
	// Draining lists the datanodes being drained and the regions each
	// still holds (drain progress).
	Draining []DrainProgress `json:"draining"`
}

// DrainProgress is one draining datanode's regions left.
type DrainProgress struct {
	ID          uint64 `json:"id"`
	RegionsLeft int    `json:"regions_left"`
}

// Runner is the leader-only balancer and drain loop.
type Runner struct {
	cfg     RunnerConfig
	cluster Cluster
	log     hclog.Logger

	mu sync.Mutex
	st Status
}

// NewRunner returns a runner for one leadership term.
func NewRunner(cfg RunnerConfig, cluster Cluster) *Runner {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.DrainInterval <= 0 {
		cfg.DrainInterval = time.Second
	}
	r := &Runner{cfg: cfg, cluster: cluster, log: cfg.Logger}
	r.st.Enabled = cfg.Interval > 0
	r.st.Interval = cfg.Interval.String()
	return r
}

// Run balances every Interval and drains every DrainInterval until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	drain := time.NewTicker(r.cfg.DrainInterval)
	defer drain.Stop()
	var balance <-chan time.Time
	if r.cfg.Interval > 0 {
		t := time.NewTicker(r.cfg.Interval)
		defer t.Stop()
		balance = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-balance:
			r.report(r.Round(ctx))
		case <-drain.C:
			if rep, ok := r.DrainRound(ctx); ok {
				r.report(rep)
			}
		}
	}
}

func (r *Runner) report(rep Report) {
	if r.cfg.OnRound != nil {
		r.cfg.OnRound(rep)
	}
}

// snapshot gathers what the planner needs and says why balancing must
// pause now ("" when it may run).
func (r *Runner) snapshot() (nodes []Node, skip func(uint64) bool, paused string) {
	dns := r.cluster.Datanodes()
	regions := r.cluster.Regions()
	owned := map[uint64][]uint64{}
	coolUntil := map[uint64]time.Time{}
	for _, reg := range regions {
		owned[reg.Datanode] = append(owned[reg.Datanode], reg.ID)
		coolUntil[reg.ID] = reg.MovedAt.Add(r.cfg.Cooldown)
	}
	if m := r.cluster.Maintenance(); m.Enabled {
		paused = "maintenance"
	}
	for _, d := range dns {
		st := r.cluster.Status(d.ID)
		if paused == "" && st != statusAlive && len(owned[d.ID]) > 0 {
			if st == "failed" {
				paused = fmt.Sprintf("failover pending: datanode %d is failed and holds %d regions", d.ID, len(owned[d.ID]))
			} else {
				paused = fmt.Sprintf("datanode %d holds regions and is %s, not alive", d.ID, st)
			}
		}
		nodes = append(nodes, Node{ID: d.ID, Regions: owned[d.ID],
			Schedulable: st == statusAlive && (d.AdminState == "" || d.AdminState == "active")})
	}
	now := r.cfg.Now()
	owner := map[uint64]uint64{}
	for _, reg := range regions {
		owner[reg.ID] = reg.Datanode
	}
	skip = func(region uint64) bool {
		return now.Before(coolUntil[region]) || !r.cluster.Reported(owner[region], region)
	}
	return nodes, skip, paused
}

// PlanNow is the dry run: the moves a round would make now, and the reason
// it would not run at all ("" when it would).
func (r *Runner) PlanNow() (Plan, string) {
	nodes, skip, paused := r.snapshot()
	return Compute(nodes, skip, r.cfg.Plan), paused
}

// Round runs one balancing round.
func (r *Runner) Round(ctx context.Context) Report {
	plan, paused := r.PlanNow()
	now := r.cfg.Now()
	rep := Report{Paused: paused, Spread: plan.SpreadBefore}
	r.mu.Lock()
	r.st.Runs++
	r.st.LastRun = &now
	r.st.Paused, r.st.PausedReason, r.st.Spread = paused != "", paused, plan.SpreadBefore
	r.mu.Unlock()
	if paused != "" || len(plan.Moves) == 0 {
		return rep
	}
	rep.Planned = len(plan.Moves)
	res, err := r.cluster.Propose(ctx, fsm.MoveRegions{Cause: fsm.CauseBalance, Moves: plan.Moves, By: "balancer", Time: now.UTC()})
	if err != nil {
		r.log.Warn("balance proposal failed", "error", err)
		return rep
	}
	rep.Committed, rep.Rejected = len(res.Moved), len(res.Rejected)
	r.mu.Lock()
	r.st.MovesDone += uint64(rep.Committed)
	r.st.MovesRejected += uint64(rep.Rejected)
	r.mu.Unlock()
	r.log.Info("balance round", "moved", rep.Committed, "rejected", rep.Rejected, "spread_before", plan.SpreadBefore,
		"spread_after", plan.SpreadAfter, "index", res.Index)
	return rep
}

// DrainRound moves up to Plan.MaxMoves regions off draining datanodes onto
// schedulable ones, fewest regions first. Drain is operator-initiated, so
// it runs during maintenance too. ok is false when nothing is draining.
func (r *Runner) DrainRound(ctx context.Context) (Report, bool) {
	nodes, _, _ := r.snapshot()
	dns := r.cluster.Datanodes()
	draining := map[uint64]bool{}
	for _, d := range dns {
		if d.AdminState == fsm.AdminDraining {
			draining[d.ID] = true
		}
	}
	rep := Report{Drain: true}
	var targets []*Node
	var moves []fsm.Move
	for i := range nodes {
		if nodes[i].Schedulable {
			targets = append(targets, &nodes[i])
		}
	}
	for _, n := range nodes {
		if !draining[n.ID] {
			continue
		}
		rep.DrainLeft += len(n.Regions)
		regs := append([]uint64(nil), n.Regions...)
		sort.Slice(regs, func(i, j int) bool { return regs[i] < regs[j] })
		for _, reg := range regs {
			if len(moves) >= r.cfg.Plan.MaxMoves || len(targets) == 0 {
				break
			}
			t := leastLoaded(targets)
			t.Regions = append(t.Regions, reg)
			moves = append(moves, fsm.Move{Region: reg, From: n.ID, To: t.ID})
		}
	}
	if len(draining) == 0 {
		return rep, false
	}
	if len(moves) == 0 {
		return rep, true
	}
	rep.Planned = len(moves)
	res, err := r.cluster.Propose(ctx, fsm.MoveRegions{Cause: fsm.CauseDrain, Moves: moves, By: "drain", Time: r.cfg.Now().UTC()})
	if err != nil {
		r.log.Warn("drain proposal failed", "error", err)
		return rep, true
	}
	rep.Committed, rep.Rejected = len(res.Moved), len(res.Rejected)
	rep.DrainLeft -= rep.Committed
	r.log.Info("drain round", "moved", rep.Committed, "rejected", rep.Rejected, "left", rep.DrainLeft, "index", res.Index)
	return rep, true
}

func leastLoaded(ns []*Node) *Node {
	best := ns[0]
	for _, n := range ns[1:] {
		if len(n.Regions) < len(best.Regions) || (len(n.Regions) == len(best.Regions) && n.ID < best.ID) {
			best = n
		}
	}
	return best
}

// Status returns the runner's status; paused is refreshed from the
// current state.
func (r *Runner) Status() Status {
	nodes, _, paused := r.snapshot()
	draining := []DrainProgress{}
	for _, d := range r.cluster.Datanodes() {
		if d.AdminState != fsm.AdminDraining {
			continue
		}
		left := 0
		for _, n := range nodes {
			if n.ID == d.ID {
				left = len(n.Regions)
			}
		}
		draining = append(draining, DrainProgress{ID: d.ID, RegionsLeft: left})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	st.Paused, st.PausedReason = paused != "", paused
	st.Draining = draining
	return st
}
