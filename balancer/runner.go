package balancer

import (
	"context"
	"fmt"
	"slices"
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
	// Procedures is the procedure pause: it stops balancing and drain.
	Procedures() fsm.Procedures
	Datanodes() []fsm.Datanode
	// RegionCounts is how many regions each datanode owns (one owning
	// none may be absent): the FSM's owner index, no route copied.
	RegionCounts() map[uint64]int
	// RegionsOf is the routes of the regions datanode id owns, in any
	// order (the FSM's owner index: O(regions of that datanode)).
	RegionsOf(id uint64) []fsm.Region
	// RegionsByOwner is every route grouped by owner, read in one step so
	// a balancing round plans from one consistent view of ownership.
	RegionsByOwner() map[uint64][]fsm.Region
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
	// Cooldown: no move of a region within it of its last move (a region
	// never moved since its table was created may move at once).
	Cooldown time.Duration
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
	// Skipped and SkippedTotal are the last round's regions that could not
	// move and why (see Plan.Skipped; bounded likewise).
	Skipped      []Skipped `json:"skipped"`
	SkippedTotal int       `json:"skipped_total"`
	// Draining lists the datanodes being drained and the regions each
	// still holds (drain progress).
	Draining []DrainProgress `json:"draining"`
}

// DrainProgress is one draining datanode's regions left.
type DrainProgress struct {
	ID          uint64 `json:"id"`
	RegionsLeft int    `json:"regions_left"`
	// Paused: no region moves off it now (procedures paused).
	Paused       bool   `json:"paused"`
	PausedReason string `json:"paused_reason,omitempty"`
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
	r.st.Skipped = []Skipped{}
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
func (r *Runner) snapshot() (nodes []Node, skip func(uint64) string, paused string) {
	dns := r.cluster.Datanodes()
	// Per region: its owner and the end of its cooldown (zero if it never
	// moved: creating a table stamps MovedAt too, but only a move, which
	// bumps Version past 1, starts a cooldown).
	type route struct {
		owner     uint64
		coolUntil time.Time
	}
	routes := map[uint64]route{}
	paused = r.statePaused()
	byOwner := r.cluster.RegionsByOwner()
	for _, d := range dns {
		regs := byOwner[d.ID]
		ids := make([]uint64, 0, len(regs))
		for _, reg := range regs {
			ids = append(ids, reg.ID)
			rt := route{owner: d.ID}
			if reg.Version > 1 {
				rt.coolUntil = reg.MovedAt.Add(r.cfg.Cooldown)
			}
			routes[reg.ID] = rt
		}
		st := r.cluster.Status(d.ID)
		if paused == "" {
			paused = notAlive(d.ID, st, len(ids))
		}
		nodes = append(nodes, Node{ID: d.ID, Regions: ids, Schedulable: fsm.Schedulable(d, st == statusAlive)})
	}
	now := r.cfg.Now()
	// The detector knows only whether the owner has reported serving a
	// region, not whether it was told to open it: an unreported region,
	// new or just moved, is "not reported yet".
	skip = func(region uint64) string {
		rt := routes[region]
		switch {
		case now.Before(rt.coolUntil):
			return "cooling until " + rt.coolUntil.UTC().Format(time.RFC3339Nano)
		case !r.cluster.Reported(rt.owner, region):
			return "not reported yet"
		}
		return ""
	}
	return nodes, skip, paused
}

// pausedReason is why balancing must pause now ("" when it may run), from
// the datanodes and their region counts alone.
func (r *Runner) pausedReason(dns []fsm.Datanode, counts map[uint64]int) string {
	if why := r.statePaused(); why != "" {
		return why
	}
	for _, d := range dns {
		if why := notAlive(d.ID, r.cluster.Status(d.ID), counts[d.ID]); why != "" {
			return why
		}
	}
	return ""
}

// notAlive is the pause reason a datanode with detector status st and n
// regions gives ("" when it gives none: it is alive, or holds nothing).
func notAlive(id uint64, st string, n int) string {
	switch {
	case st == statusAlive || n == 0:
		return ""
	case st == "failed":
		return fmt.Sprintf("failover pending: datanode %d is failed and holds %d regions", id, n)
	default:
		return fmt.Sprintf("datanode %d holds regions and is %s, not alive", id, st)
	}
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
	r.st.Skipped, r.st.SkippedTotal = plan.Skipped, plan.SkippedTotal
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
// schedulable ones, fewest regions first (see PlanDrain). Drain is
// operator-initiated, so it runs during maintenance too, but not while
// procedures are paused (rep.Paused says so). ok is false when
// nothing is draining; finding that out reads the datanodes only, never
// the routes.
func (r *Runner) DrainRound(ctx context.Context) (Report, bool) {
	rep := Report{Drain: true}
	dns := r.cluster.Datanodes()
	if !slices.ContainsFunc(dns, draining) {
		return rep, false
	}
	counts := r.cluster.RegionCounts()
	if rep.Paused = r.drainPaused(); rep.Paused != "" {
		for _, d := range dns {
			if draining(d) {
				rep.DrainLeft += counts[d.ID]
			}
		}
		return rep, true
	}
	var from []Node
	var targets []Load
	for _, d := range dns {
		if draining(d) {
			regs := r.cluster.RegionsOf(d.ID)
			ids := make([]uint64, 0, len(regs))
			for _, reg := range regs {
				ids = append(ids, reg.ID)
			}
			from = append(from, Node{ID: d.ID, Regions: ids})
		} else if fsm.Schedulable(d, r.cluster.Status(d.ID) == statusAlive) {
			targets = append(targets, Load{ID: d.ID, Regions: counts[d.ID]})
		}
	}
	moves, left := PlanDrain(from, targets, r.cfg.Plan)
	rep.DrainLeft = left
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

func draining(d fsm.Datanode) bool { return d.AdminState == fsm.AdminDraining }

// Status returns the runner's status; paused is refreshed from the
// current state (datanodes and region counts: no route is copied).
func (r *Runner) Status() Status {
	dns := r.cluster.Datanodes()
	counts := r.cluster.RegionCounts()
	paused := r.pausedReason(dns, counts)
	progress := []DrainProgress{}
	drainPaused := r.drainPaused()
	for _, d := range dns {
		if draining(d) {
			progress = append(progress, DrainProgress{ID: d.ID, RegionsLeft: counts[d.ID],
				Paused: drainPaused != "", PausedReason: drainPaused})
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	st.Paused, st.PausedReason = paused != "", paused
	st.Draining = progress
	return st
}
