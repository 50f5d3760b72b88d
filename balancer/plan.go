package balancer

import (
	"cmp"
	"fmt"
	"slices"
	"sort"

	"github.com/metasrv/metasrv/fsm"
)

// Node is one datanode as the planner sees it.
type Node struct {
	ID      uint64
	Regions []uint64
	// Schedulable: alive and active (not failed, suspect, cordoned or
	// draining; see fsm.Schedulable). Only schedulable datanodes give or
	// take regions.
	Schedulable bool
}

// Load is a drain target as PlanDrain sees it: a schedulable datanode and
// how many regions it holds now (which regions does not matter).
type Load struct {
	ID      uint64
	Regions int
}

// Config holds the planner's limits.
type Config struct {
	Tolerance  int // a spread (max - min regions) up to this is balanced
	MaxMoves   int // moves per round
	MaxPerNode int // moves out of, and into, one datanode per round
}

// MaxSkippedListed bounds Plan.Skipped (SkippedTotal counts them all), so
// the answer stays small however many regions are skipped.
const MaxSkippedListed = 100

// Skipped is a region the planner may not move now, and why.
type Skipped struct {
	Region   uint64 `json:"region"`
	Datanode uint64 `json:"datanode"`
	Reason   string `json:"reason"`
}

// Plan is the outcome of one planning round.
type Plan struct {
	Moves        []fsm.Move `json:"moves"`
	SpreadBefore int        `json:"spread_before"`
	SpreadAfter  int        `json:"spread_after"`
	Reason       string     `json:"reason"`
	// Skipped lists the regions of schedulable datanodes that may not move
	// now and why, by datanode id then region id, at most MaxSkippedListed
	// of them; SkippedTotal counts them all.
	Skipped      []Skipped `json:"skipped"`
	SkippedTotal int       `json:"skipped_total"`
}

// Compute plans moves from the most- to the least-loaded schedulable
// datanode while the spread exceeds the tolerance. A region for which skip
// returns a reason (in flight, or moved within the cooldown; "" when it
// may move) stays put and is listed in Skipped. The result depends only on
// the input, which is not modified: ties go to the lower id, and regions
// move lowest id first.
func Compute(nodes []Node, skip func(region uint64) string, cfg Config) Plan {
	type load struct {
		id       uint64
		regions  []uint64 // movable candidates, ascending
		count    int
		out, in  int
		excluded bool
	}
	var ls []*load
	for _, n := range nodes {
		if n.Schedulable {
			ls = append(ls, &load{id: n.ID, count: len(n.Regions), regions: n.Regions})
		}
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].id < ls[j].id })
	skipped, skippedTotal := []Skipped{}, 0
	for _, l := range ls {
		regs := slices.Clone(l.regions)
		slices.Sort(regs)
		movable := regs[:0]
		for _, r := range regs {
			why := ""
			if skip != nil {
				why = skip(r)
			}
			if why == "" {
				movable = append(movable, r)
				continue
			}
			if skippedTotal++; len(skipped) < MaxSkippedListed {
				skipped = append(skipped, Skipped{Region: r, Datanode: l.id, Reason: why})
			}
		}
		l.regions = movable
	}
	spread := func() int {
		if len(ls) == 0 {
			return 0
		}
		lo, hi := ls[0].count, ls[0].count
		for _, l := range ls {
			lo, hi = min(lo, l.count), max(hi, l.count)
		}
		return hi - lo
	}
	p := Plan{SpreadBefore: spread(), Skipped: skipped, SkippedTotal: skippedTotal}
	if len(ls) < 2 {
		p.SpreadAfter, p.Reason = p.SpreadBefore, "fewer than two schedulable datanodes"
		return p
	}
	for len(p.Moves) < cfg.MaxMoves {
		var src, dst *load
		for _, l := range ls {
			if !l.excluded && (src == nil || l.count > src.count) && l.out < cfg.MaxPerNode && len(l.regions) > 0 {
				src = l
			}
			if dst == nil || l.count < dst.count {
				if l.in < cfg.MaxPerNode {
					dst = l
				}
			}
		}
		if src == nil || dst == nil || src == dst || src.count-dst.count <= cfg.Tolerance || src.count-dst.count < 2 {
			break
		}
		r := src.regions[0]
		src.regions = src.regions[1:]
		p.Moves = append(p.Moves, fsm.Move{Region: r, From: src.id, To: dst.id})
		src.count--
		src.out++
		dst.count++
		dst.in++
	}
	p.SpreadAfter = spread()
	switch {
	case len(p.Moves) > 0:
		p.Reason = fmt.Sprintf("spread %d exceeds tolerance %d", p.SpreadBefore, cfg.Tolerance)
	case p.SpreadBefore <= max(cfg.Tolerance, 1):
		// A spread of one can never shrink (a move would only swap which
		// datanode has the extra region), whatever the tolerance.
		p.Reason = "balanced"
	default:
		p.Reason = "unbalanced, but no region can move now (in flight, cooling down, or per-datanode caps)"
	}
	return p
}

// PlanDrain plans the moves that empty the draining datanodes onto the
// targets: draining datanodes in ascending id order, each one's regions
// lowest id first, each region onto the target holding the fewest regions
// at that point (counting the moves planned before it; ties go to the
// lower id), at most cfg.MaxMoves moves in all. Only the ID and Regions of
// a draining Node are read. left is how many regions the draining
// datanodes hold before any move. A target that is itself draining is
// ignored; with no target, or MaxMoves <= 0, nothing moves. Like Compute,
// the result depends only on the input, which is not modified.
func PlanDrain(draining []Node, targets []Load, cfg Config) (moves []fsm.Move, left int) {
	isDraining := make(map[uint64]bool, len(draining))
	for _, n := range draining {
		isDraining[n.ID] = true
		left += len(n.Regions)
	}
	ts := make([]Load, 0, len(targets))
	for _, t := range targets {
		if !isDraining[t.ID] {
			ts = append(ts, t)
		}
	}
	if len(ts) == 0 || cfg.MaxMoves <= 0 {
		return nil, left
	}
	order := slices.Clone(draining)
	slices.SortStableFunc(order, func(a, b Node) int { return cmp.Compare(a.ID, b.ID) })
	for _, n := range order {
		regs := slices.Clone(n.Regions)
		slices.Sort(regs)
		for _, reg := range regs {
			if len(moves) >= cfg.MaxMoves {
				return moves, left
			}
			t := leastLoaded(ts)
			t.Regions++
			moves = append(moves, fsm.Move{Region: reg, From: n.ID, To: t.ID})
		}
	}
	return moves, left
}

// leastLoaded is the target with the fewest regions, the lower id on a tie.
func leastLoaded(ts []Load) *Load {
	best := &ts[0]
	for i := range ts[1:] {
		t := &ts[i+1]
		if t.Regions < best.Regions || (t.Regions == best.Regions && t.ID < best.ID) {
			best = t
		}
	}
	return best
}
