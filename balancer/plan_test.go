package balancer_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/metasrv/metasrv/balancer"
	"github.com/metasrv/metasrv/fsm"
)

// node builds a schedulable datanode holding regions.
func node(id uint64, regions ...uint64) balancer.Node {
	return balancer.Node{ID: id, Regions: regions, Schedulable: true}
}

// unschedulable builds a datanode that is failed, suspect, cordoned or
// draining: it neither gives nor takes regions.
func unschedulable(id uint64, regions ...uint64) balancer.Node {
	return balancer.Node{ID: id, Regions: regions}
}

// span returns the region ids from..to inclusive.
func span(from, to uint64) []uint64 {
	var out []uint64
	for r := from; r <= to; r++ {
		out = append(out, r)
	}
	return out
}

// skipSet skips ids, each for the reason "in flight".
func skipSet(ids ...uint64) func(uint64) string {
	s := map[uint64]string{}
	for _, id := range ids {
		s[id] = "in flight"
	}
	return func(r uint64) string { return s[r] }
}

// skipWhy skips each region of the map for its reason.
func skipWhy(reasons map[uint64]string) func(uint64) string {
	return func(r uint64) string { return reasons[r] }
}

func mv(region, from, to uint64) fsm.Move { return fsm.Move{Region: region, From: from, To: to} }

var defaultCfg = balancer.Config{Tolerance: 1, MaxMoves: 8, MaxPerNode: 4}

const (
	reasonBalanced = "balanced"
	reasonFew      = "fewer than two schedulable datanodes"
	reasonStuck    = "unbalanced, but no region can move now (in flight, cooling down, or per-datanode caps)"
)

func TestCompute(t *testing.T) {
	uncapped := balancer.Config{Tolerance: 1, MaxMoves: 100, MaxPerNode: 100}
	cases := []struct {
		name   string
		nodes  []balancer.Node
		skip   func(uint64) string
		cfg    balancer.Config
		want   []fsm.Move
		before int
		after  int
		reason string // "" means "spread <before> exceeds tolerance <tol>"
		// skipped is the expected Skipped list (checked when not nil);
		// skippedTotal the expected SkippedTotal (checked with it).
		skipped      []balancer.Skipped
		skippedTotal int
	}{
		{
			name:   "already balanced: equal counts",
			nodes:  []balancer.Node{node(1, 1, 2), node(2, 3, 4), node(3, 5, 6)},
			cfg:    defaultCfg,
			before: 0, after: 0, reason: reasonBalanced,
		},
		{
			name:   "already balanced: a spread of one is within the default tolerance",
			nodes:  []balancer.Node{node(1, 1, 2, 3), node(2, 4, 5)},
			cfg:    defaultCfg,
			before: 1, after: 1, reason: reasonBalanced,
		},
		{
			name:   "no regions at all",
			nodes:  []balancer.Node{node(1), node(2), node(3)},
			cfg:    defaultCfg,
			before: 0, after: 0, reason: reasonBalanced,
		},
		{
			name:   "tolerance 0: a spread of one cannot be improved and counts as balanced",
			nodes:  []balancer.Node{node(1, 1, 2, 3), node(2, 4, 5)},
			cfg:    balancer.Config{Tolerance: 0, MaxMoves: 8, MaxPerNode: 4},
			before: 1, after: 1, reason: reasonBalanced,
		},
		{
			name:   "one empty new datanode takes from the fullest, lowest id first",
			nodes:  []balancer.Node{node(1, span(1, 4)...), node(2, span(5, 8)...), node(3)},
			cfg:    defaultCfg,
			want:   []fsm.Move{mv(1, 1, 3), mv(5, 2, 3)},
			before: 4, after: 1,
		},
		{
			name:   "two full, two new: 4/4/0/0 becomes 2/2/2/2",
			nodes:  []balancer.Node{node(1, span(1, 4)...), node(2, span(5, 8)...), node(3), node(4)},
			cfg:    defaultCfg,
			want:   []fsm.Move{mv(1, 1, 3), mv(5, 2, 4), mv(2, 1, 3), mv(6, 2, 4)},
			before: 4, after: 0,
		},
		{
			name:   "uneven counts, uncapped: 10/1/4 becomes 5/5/5",
			nodes:  []balancer.Node{node(1, span(1, 10)...), node(2, 11), node(3, span(12, 15)...)},
			cfg:    uncapped,
			want:   []fsm.Move{mv(1, 1, 2), mv(2, 1, 2), mv(3, 1, 2), mv(4, 1, 2), mv(5, 1, 3)},
			before: 9, after: 0,
		},
		{
			name: "uneven counts, regions listed out of order: lowest region id moves first",
			nodes: []balancer.Node{node(2, 40, 7, 19, 3, 25, 11), node(1, 30),
				node(3, 50, 51)},
			cfg:    uncapped,
			want:   []fsm.Move{mv(3, 2, 1), mv(7, 2, 1), mv(11, 2, 3)},
			before: 5, after: 0,
		},
		{
			name:   "tolerance 3: a spread of 3 is balanced",
			nodes:  []balancer.Node{node(1, span(1, 5)...), node(2, 6, 7)},
			cfg:    balancer.Config{Tolerance: 3, MaxMoves: 8, MaxPerNode: 4},
			before: 3, after: 3, reason: reasonBalanced,
		},
		{
			name:   "tolerance 2: moves only until the spread is within it",
			nodes:  []balancer.Node{node(1, span(1, 5)...), node(2, 6, 7)},
			cfg:    balancer.Config{Tolerance: 2, MaxMoves: 8, MaxPerNode: 4},
			want:   []fsm.Move{mv(1, 1, 2)},
			before: 3, after: 1,
		},
		{
			name:   "tolerance 4: 10/3 moves only until the spread is within it",
			nodes:  []balancer.Node{node(1, span(1, 10)...), node(2, span(11, 13)...)},
			cfg:    balancer.Config{Tolerance: 4, MaxMoves: 8, MaxPerNode: 8},
			want:   []fsm.Move{mv(1, 1, 2), mv(2, 1, 2)},
			before: 7, after: 3,
		},
		{
			name:   "MaxMoves caps a round",
			nodes:  []balancer.Node{node(1, span(1, 8)...), node(2)},
			cfg:    balancer.Config{Tolerance: 1, MaxMoves: 2, MaxPerNode: 100},
			want:   []fsm.Move{mv(1, 1, 2), mv(2, 1, 2)},
			before: 8, after: 4,
		},
		{
			name:   "MaxPerNode caps moves out of one datanode",
			nodes:  []balancer.Node{node(1, span(1, 8)...), node(2), node(3)},
			cfg:    balancer.Config{Tolerance: 1, MaxMoves: 8, MaxPerNode: 1},
			want:   []fsm.Move{mv(1, 1, 2)},
			before: 8, after: 7,
		},
		{
			name:   "MaxPerNode caps moves into one datanode",
			nodes:  []balancer.Node{node(1, span(1, 4)...), node(2, span(5, 8)...), node(3)},
			cfg:    balancer.Config{Tolerance: 1, MaxMoves: 8, MaxPerNode: 1},
			want:   []fsm.Move{mv(1, 1, 3)},
			before: 4, after: 3,
		},
		{
			name:   "MaxPerNode 4 with 10/1/4: the fullest gives four, then stops",
			nodes:  []balancer.Node{node(1, span(1, 10)...), node(2, 11), node(3, span(12, 15)...)},
			cfg:    defaultCfg,
			want:   []fsm.Move{mv(1, 1, 2), mv(2, 1, 2), mv(3, 1, 2), mv(4, 1, 2)},
			before: 9, after: 2,
		},
		{
			name:   "cordoned (unschedulable) empty datanode never receives",
			nodes:  []balancer.Node{node(1, span(1, 4)...), unschedulable(2), node(3)},
			cfg:    defaultCfg,
			want:   []fsm.Move{mv(1, 1, 3), mv(2, 1, 3)},
			before: 4, after: 0,
		},
		{
			name:   "every other datanode unschedulable: nothing moves",
			nodes:  []balancer.Node{node(1, span(1, 6)...), unschedulable(2), unschedulable(3), unschedulable(4)},
			cfg:    defaultCfg,
			before: 0, after: 0, reason: reasonFew,
		},
		{
			name:   "an unschedulable datanode gives nothing either, and is not counted in the spread",
			nodes:  []balancer.Node{unschedulable(1, span(1, 6)...), node(2, 7), node(3)},
			cfg:    defaultCfg,
			before: 1, after: 1, reason: reasonBalanced,
		},
		{
			name:   "in-flight / cooling-down regions are skipped",
			nodes:  []balancer.Node{node(1, span(1, 4)...), node(2)},
			skip:   skipSet(1, 2),
			cfg:    defaultCfg,
			want:   []fsm.Move{mv(3, 1, 2), mv(4, 1, 2)},
			before: 4, after: 0,
		},
		{
			name:   "skipped regions still count as load",
			nodes:  []balancer.Node{node(1, span(1, 6)...), node(2, span(7, 10)...), node(3)},
			skip:   skipSet(span(1, 6)...),
			cfg:    defaultCfg,
			want:   []fsm.Move{mv(7, 2, 3), mv(8, 2, 3)},
			before: 6, after: 4,
		},
		{
			name:   "every region of the fullest is in flight: nothing can move now",
			nodes:  []balancer.Node{node(1, span(1, 4)...), node(2)},
			skip:   skipSet(span(1, 4)...),
			cfg:    defaultCfg,
			before: 4, after: 4, reason: reasonStuck,
		},
		{
			name:  "skipped regions are listed with their reasons, by datanode then region; unschedulable ones are not",
			nodes: []balancer.Node{node(2, 6, 5), unschedulable(3, 9), node(1, 4, 3, 1, 2)},
			skip: skipWhy(map[uint64]string{1: "cooling until 2026-01-02T03:09:05Z", 5: "not reported yet",
				9: "not reported yet"}),
			cfg:    defaultCfg,
			want:   []fsm.Move{mv(2, 1, 2)},
			before: 2, after: 0,
			skipped: []balancer.Skipped{{Region: 1, Datanode: 1, Reason: "cooling until 2026-01-02T03:09:05Z"},
				{Region: 5, Datanode: 2, Reason: "not reported yet"}},
			skippedTotal: 2,
		},
		{
			name:   "nothing skipped: an empty list, not nil",
			nodes:  []balancer.Node{node(1, 1, 2), node(2)},
			cfg:    defaultCfg,
			want:   []fsm.Move{mv(1, 1, 2)},
			before: 2, after: 0,
			skipped:      []balancer.Skipped{},
			skippedTotal: 0,
		},
		{
			name:   "the skipped list is bounded; the total counts them all",
			nodes:  []balancer.Node{node(2), node(1, span(1, 250)...)},
			skip:   skipSet(span(1, 250)...),
			cfg:    defaultCfg,
			before: 250, after: 250, reason: reasonStuck,
			skipped:      inFlightOn(1, span(1, balancer.MaxSkippedListed)),
			skippedTotal: 250,
		},
		{
			name:   "fewer than two schedulable: none",
			nodes:  nil,
			cfg:    defaultCfg,
			before: 0, after: 0, reason: reasonFew,
		},
		{
			name:   "fewer than two schedulable: one",
			nodes:  []balancer.Node{node(1, span(1, 5)...)},
			cfg:    defaultCfg,
			before: 0, after: 0, reason: reasonFew,
		},
		{
			name:   "fewer than two schedulable: one plus an unschedulable empty one",
			nodes:  []balancer.Node{node(1, span(1, 5)...), unschedulable(2)},
			cfg:    defaultCfg,
			before: 0, after: 0, reason: reasonFew,
		},
		{
			name:   "ties: the fullest with the lowest id gives, to the emptiest with the lowest id",
			nodes:  []balancer.Node{node(5), node(9, 20, 21, 22), node(4), node(7, 10, 11, 12)},
			cfg:    balancer.Config{Tolerance: 1, MaxMoves: 1, MaxPerNode: 4},
			want:   []fsm.Move{mv(10, 7, 4)},
			before: 3, after: 3,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := balancer.Compute(tc.nodes, tc.skip, tc.cfg)
			if !movesEqual(p.Moves, tc.want) {
				t.Errorf("moves:\n got %v\nwant %v", p.Moves, tc.want)
			}
			if p.SpreadBefore != tc.before || p.SpreadAfter != tc.after {
				t.Errorf("spread before/after = %d/%d, want %d/%d", p.SpreadBefore, p.SpreadAfter, tc.before, tc.after)
			}
			want := tc.reason
			if want == "" {
				want = fmt.Sprintf("spread %d exceeds tolerance %d", tc.before, tc.cfg.Tolerance)
			}
			if p.Reason != want {
				t.Errorf("reason = %q, want %q", p.Reason, want)
			}
			if tc.skipped != nil && (!reflect.DeepEqual(p.Skipped, tc.skipped) || p.SkippedTotal != tc.skippedTotal) {
				t.Errorf("skipped (total %d):\n got %v\nwant %v (total %d)", p.SkippedTotal, p.Skipped, tc.skipped, tc.skippedTotal)
			}
			checkPlan(t, tc.nodes, tc.skip, tc.cfg, p)
		})
	}
}

// inFlightOn is the Skipped list of regions on datanode dn, all in flight.
func inFlightOn(dn uint64, regions []uint64) []balancer.Skipped {
	out := []balancer.Skipped{}
	for _, r := range regions {
		out = append(out, balancer.Skipped{Region: r, Datanode: dn, Reason: "in flight"})
	}
	return out
}

func movesEqual(got, want []fsm.Move) bool {
	if len(got) == 0 && len(want) == 0 {
		return true
	}
	return reflect.DeepEqual(got, want)
}

// checkPlan verifies what must hold for every plan: moves start from the
// region's owner, only between distinct schedulable datanodes, never touch a
// skipped region or one region twice, respect the caps, and the reported
// spreads match the counts before and after applying the moves.
func checkPlan(t *testing.T, nodes []balancer.Node, skip func(uint64) string, cfg balancer.Config, p balancer.Plan) {
	t.Helper()
	owner := map[uint64]uint64{}
	sched := map[uint64]bool{}
	count := map[uint64]int{}
	for _, n := range nodes {
		sched[n.ID] = n.Schedulable
		if n.Schedulable {
			count[n.ID] = len(n.Regions)
		}
		for _, r := range n.Regions {
			owner[r] = n.ID
		}
	}
	spread := func() int {
		first, lo, hi := true, 0, 0
		for _, c := range count {
			if first {
				lo, hi, first = c, c, false
			}
			lo, hi = min(lo, c), max(hi, c)
		}
		return hi - lo
	}
	if len(count) >= 2 && p.SpreadBefore != spread() {
		t.Errorf("SpreadBefore = %d, counts say %d", p.SpreadBefore, spread())
	}
	if len(p.Moves) > cfg.MaxMoves {
		t.Errorf("%d moves, MaxMoves %d", len(p.Moves), cfg.MaxMoves)
	}
	out, in := map[uint64]int{}, map[uint64]int{}
	seen := map[uint64]bool{}
	for _, m := range p.Moves {
		if seen[m.Region] {
			t.Errorf("region %d moved twice in one round", m.Region)
		}
		seen[m.Region] = true
		if owner[m.Region] != m.From {
			t.Errorf("move %v: region is owned by %d", m, owner[m.Region])
		}
		if m.From == m.To {
			t.Errorf("move %v: to itself", m)
		}
		if !sched[m.From] || !sched[m.To] {
			t.Errorf("move %v involves an unschedulable datanode", m)
		}
		if skip != nil && skip(m.Region) != "" {
			t.Errorf("move %v: region is skipped (in flight or cooling down)", m)
		}
		out[m.From]++
		in[m.To]++
		count[m.From]--
		count[m.To]++
	}
	for id, c := range out {
		if c > cfg.MaxPerNode {
			t.Errorf("%d moves out of datanode %d, MaxPerNode %d", c, id, cfg.MaxPerNode)
		}
	}
	for id, c := range in {
		if c > cfg.MaxPerNode {
			t.Errorf("%d moves into datanode %d, MaxPerNode %d", c, id, cfg.MaxPerNode)
		}
	}
	// Skipped: every skipped region of a schedulable datanode, by datanode
	// then region id, the first MaxSkippedListed of them.
	want, total := []balancer.Skipped{}, 0
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b balancer.Node) int { return cmp.Compare(a.ID, b.ID) })
	for _, n := range sorted {
		regs := slices.Clone(n.Regions)
		slices.Sort(regs)
		for _, r := range regs {
			if why := ""; skip != nil && n.Schedulable {
				if why = skip(r); why != "" {
					if total++; len(want) < balancer.MaxSkippedListed {
						want = append(want, balancer.Skipped{Region: r, Datanode: n.ID, Reason: why})
					}
				}
			}
		}
	}
	if p.SkippedTotal != total || !reflect.DeepEqual(p.Skipped, want) {
		t.Errorf("skipped (total %d) %v, want (total %d) %v", p.SkippedTotal, p.Skipped, total, want)
	}
	if len(count) >= 2 {
		if p.SpreadAfter != spread() {
			t.Errorf("SpreadAfter = %d, counts after the moves say %d", p.SpreadAfter, spread())
		}
		if p.SpreadAfter > p.SpreadBefore {
			t.Errorf("spread grew: %d → %d", p.SpreadBefore, p.SpreadAfter)
		}
	}
}

// randomNodes builds n datanodes (about a tenth unschedulable) holding
// regions 1..regions, dealt unevenly.
func randomNodes(rng *rand.Rand, n, regions int) []balancer.Node {
	nodes := make([]balancer.Node, n)
	for i := range nodes {
		nodes[i] = balancer.Node{ID: uint64(i + 1), Schedulable: rng.IntN(10) != 0}
	}
	for r := 1; r <= regions; r++ {
		// Skewed: low ids get more.
		i := min(rng.IntN(n), rng.IntN(n))
		nodes[i].Regions = append(nodes[i].Regions, uint64(r))
	}
	return nodes
}

// shuffled deep-copies nodes in a random order, each region list shuffled.
func shuffled(rng *rand.Rand, nodes []balancer.Node) []balancer.Node {
	out := make([]balancer.Node, len(nodes))
	for i, n := range nodes {
		n.Regions = append([]uint64(nil), n.Regions...)
		rng.Shuffle(len(n.Regions), func(a, b int) { n.Regions[a], n.Regions[b] = n.Regions[b], n.Regions[a] })
		out[i] = n
	}
	rng.Shuffle(len(out), func(a, b int) { out[a], out[b] = out[b], out[a] })
	return out
}

func TestComputeDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cfgs := []balancer.Config{defaultCfg, {Tolerance: 0, MaxMoves: 50, MaxPerNode: 3}, {Tolerance: 2, MaxMoves: 1000, MaxPerNode: 1000}}
	for trial := range 50 {
		nodes := randomNodes(rng, 2+rng.IntN(30), rng.IntN(400))
		skip := skipSet()
		if trial%2 == 0 {
			var sk []uint64
			for r := uint64(1); r < 400; r++ {
				if rng.IntN(5) == 0 {
					sk = append(sk, r)
				}
			}
			skip = skipSet(sk...)
		}
		for _, cfg := range cfgs {
			p1 := balancer.Compute(nodes, skip, cfg)
			p2 := balancer.Compute(nodes, skip, cfg)
			if !reflect.DeepEqual(p1, p2) {
				t.Fatalf("trial %d %+v: same input, different plans:\n%+v\n%+v", trial, cfg, p1, p2)
			}
			for range 3 {
				p3 := balancer.Compute(shuffled(rng, nodes), skip, cfg)
				if !reflect.DeepEqual(p1, p3) {
					t.Fatalf("trial %d %+v: shuffled input, different plan:\n%+v\n%+v", trial, cfg, p1, p3)
				}
			}
			checkPlan(t, nodes, skip, cfg, p1)
		}
	}
}

// TestComputeDoesNotModifyInput: the caller's slices are left as they were.
func TestComputeDoesNotModifyInput(t *testing.T) {
	nodes := []balancer.Node{node(2, 9, 3, 7, 1), node(1)}
	balancer.Compute(nodes, nil, defaultCfg)
	if want := []uint64{9, 3, 7, 1}; !reflect.DeepEqual(nodes[0].Regions, want) {
		t.Errorf("input regions changed to %v, want %v", nodes[0].Regions, want)
	}
	if nodes[0].ID != 2 || nodes[1].ID != 1 {
		t.Errorf("input order changed: %+v", nodes)
	}
}

// TestComputeRepeatedRoundsConverge applies plans round after round, as
// the runner does, and expects the spread within tolerance in a bounded
// number of rounds.
func TestComputeRepeatedRoundsConverge(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := range 20 {
		nodes := randomNodes(rng, 3+rng.IntN(20), 50+rng.IntN(500))
		for i := range nodes {
			nodes[i].Schedulable = true
		}
		var p balancer.Plan
		rounds := 0
		for ; rounds < 1000; rounds++ {
			p = balancer.Compute(nodes, nil, defaultCfg)
			if len(p.Moves) == 0 {
				break
			}
			apply(nodes, p.Moves)
		}
		if p.SpreadBefore > max(defaultCfg.Tolerance, 1) || p.Reason != reasonBalanced {
			t.Fatalf("trial %d: after %d rounds spread %d (%s)", trial, rounds, p.SpreadBefore, p.Reason)
		}
	}
}

func apply(nodes []balancer.Node, moves []fsm.Move) {
	idx := map[uint64]int{}
	for i, n := range nodes {
		idx[n.ID] = i
	}
	for _, m := range moves {
		from := &nodes[idx[m.From]]
		for i, r := range from.Regions {
			if r == m.Region {
				from.Regions = append(from.Regions[:i:i], from.Regions[i+1:]...)
				break
			}
		}
		nodes[idx[m.To]].Regions = append(nodes[idx[m.To]].Regions, m.Region)
	}
	for i := range nodes {
		sort.Slice(nodes[i].Regions, func(a, b int) bool { return nodes[i].Regions[a] < nodes[i].Regions[b] })
	}
}

// BenchmarkCompute plans for 1 000 datanodes and 100 000 regions: 900
// datanodes hold the regions unevenly, 100 are new and empty, and a skip
// function (as the runner's) is consulted for every region.
func BenchmarkCompute(b *testing.B) {
	rng := rand.New(rand.NewPCG(42, 42))
	const datanodes, regions = 1000, 100_000
	nodes := make([]balancer.Node, datanodes)
	for i := range nodes {
		nodes[i] = balancer.Node{ID: uint64(i + 1), Schedulable: true}
	}
	for r := 1; r <= regions; r++ {
		i := min(rng.IntN(900), rng.IntN(900))
		nodes[i].Regions = append(nodes[i].Regions, uint64(r))
	}
	inFlight := map[uint64]bool{}
	for range 1000 {
		inFlight[uint64(1+rng.IntN(regions))] = true
	}
	skip := func(r uint64) string {
		if inFlight[r] {
			return "not reported yet"
		}
		return ""
	}
	for _, bc := range []struct {
		name string
		cfg  balancer.Config
	}{
		{"default-caps", defaultCfg},
		{"uncapped", balancer.Config{Tolerance: 1, MaxMoves: regions, MaxPerNode: regions}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var p balancer.Plan
			for b.Loop() {
				p = balancer.Compute(nodes, skip, bc.cfg)
			}
			b.ReportMetric(float64(len(p.Moves)), "moves/op")
			if len(p.Moves) == 0 {
				b.Fatalf("no moves planned: %+v", p.Reason)
			}
		})
	}
}

func load(id uint64, regions int) balancer.Load { return balancer.Load{ID: id, Regions: regions} }

func TestPlanDrain(t *testing.T) {
	four := balancer.Config{Tolerance: 1, MaxMoves: 4, MaxPerNode: 1}
	cases := []struct {
		name     string
		draining []balancer.Node
		targets  []balancer.Load
		cfg      balancer.Config
		want     []fsm.Move
		left     int
	}{
		{
			name:    "nothing draining",
			targets: []balancer.Load{load(1, 3), load(2, 0)},
			cfg:     four,
			want:    nil, left: 0,
		},
		{
			name:     "lowest region first, alternating between equally loaded targets (lower id first)",
			draining: []balancer.Node{unschedulable(1, 9, 3, 11, 1, 7, 5)},
			targets:  []balancer.Load{load(3, 0), load(2, 0)},
			cfg:      four,
			want:     []fsm.Move{mv(1, 1, 2), mv(3, 1, 3), mv(5, 1, 2), mv(7, 1, 3)},
			left:     6,
		},
		{
			name:     "least loaded target first, counting the moves planned so far",
			draining: []balancer.Node{unschedulable(1, span(1, 6)...)},
			targets:  []balancer.Load{load(2, 5), load(3, 1), load(4, 2)},
			cfg:      balancer.Config{MaxMoves: 100},
			want:     []fsm.Move{mv(1, 1, 3), mv(2, 1, 3), mv(3, 1, 4), mv(4, 1, 3), mv(5, 1, 4), mv(6, 1, 3)},
			left:     6,
		},
		{
			name:     "draining datanodes in ascending id order; MaxMoves spans them",
			draining: []balancer.Node{unschedulable(7, 21, 20), unschedulable(5, 10)},
			targets:  []balancer.Load{load(1, 0)},
			cfg:      balancer.Config{MaxMoves: 2},
			want:     []fsm.Move{mv(10, 5, 1), mv(20, 7, 1)},
			left:     3,
		},
		{
			name:     "left counts every draining region, moved or not",
			draining: []balancer.Node{unschedulable(1, span(1, 10)...), unschedulable(2, span(11, 15)...)},
			targets:  []balancer.Load{load(3, 0)},
			cfg:      balancer.Config{MaxMoves: 3},
			want:     []fsm.Move{mv(1, 1, 3), mv(2, 1, 3), mv(3, 1, 3)},
			left:     15,
		},
		{
			name:     "an empty draining datanode is skipped",
			draining: []balancer.Node{unschedulable(1), unschedulable(2, 4)},
			targets:  []balancer.Load{load(3, 0)},
			cfg:      four,
			want:     []fsm.Move{mv(4, 2, 3)},
			left:     1,
		},
		{
			name:     "no target: nothing moves",
			draining: []balancer.Node{unschedulable(1, 1, 2)},
			cfg:      four,
			want:     nil, left: 2,
		},
		{
			name:     "MaxMoves 0: nothing moves",
			draining: []balancer.Node{unschedulable(1, 1, 2)},
			targets:  []balancer.Load{load(2, 0)},
			cfg:      balancer.Config{},
			want:     nil, left: 2,
		},
		{
			name:     "a target that is itself draining is ignored",
			draining: []balancer.Node{unschedulable(1, 1, 2), unschedulable(2, 3)},
			targets:  []balancer.Load{load(2, 0), load(3, 9)},
			cfg:      four,
			want:     []fsm.Move{mv(1, 1, 3), mv(2, 1, 3), mv(3, 2, 3)},
			left:     3,
		},
		{
			name:     "the only target is draining: nothing moves",
			draining: []balancer.Node{unschedulable(1, 1), unschedulable(2)},
			targets:  []balancer.Load{load(2, 0)},
			cfg:      four,
			want:     nil, left: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			moves, left := balancer.PlanDrain(tc.draining, tc.targets, tc.cfg)
			if !movesEqual(moves, tc.want) || left != tc.left {
				t.Errorf("PlanDrain = %v, left %d; want %v, left %d", moves, left, tc.want, tc.left)
			}
		})
	}
}

// TestPlanDrainDoesNotModifyInput: the caller's slices are left as they were.
func TestPlanDrainDoesNotModifyInput(t *testing.T) {
	draining := []balancer.Node{unschedulable(3, 9, 2, 5), unschedulable(1, 4)}
	targets := []balancer.Load{load(2, 1), load(4, 0)}
	balancer.PlanDrain(draining, targets, defaultCfg)
	if want := []balancer.Node{unschedulable(3, 9, 2, 5), unschedulable(1, 4)}; !reflect.DeepEqual(draining, want) {
		t.Errorf("draining changed to %+v", draining)
	}
	if want := []balancer.Load{load(2, 1), load(4, 0)}; !reflect.DeepEqual(targets, want) {
		t.Errorf("targets changed to %+v", targets)
	}
}

// drainInline is the drain planning the runner did inline before
// PlanDrain: nodes in id order (as Cluster.Datanodes lists them), targets
// the schedulable ones.
func drainInline(nodes []balancer.Node, draining map[uint64]bool, maxMoves int) (moves []fsm.Move, left int) {
	nodes = shuffled(rand.New(rand.NewPCG(0, 0)), nodes) // a deep copy
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	var targets []*balancer.Node
	for i := range nodes {
		if nodes[i].Schedulable {
			targets = append(targets, &nodes[i])
		}
	}
	for _, n := range nodes {
		if !draining[n.ID] {
			continue
		}
		left += len(n.Regions)
		regs := append([]uint64(nil), n.Regions...)
		sort.Slice(regs, func(i, j int) bool { return regs[i] < regs[j] })
		for _, reg := range regs {
			if len(moves) >= maxMoves || len(targets) == 0 {
				break
			}
			t := targets[0]
			for _, c := range targets[1:] {
				if len(c.Regions) < len(t.Regions) || (len(c.Regions) == len(t.Regions) && c.ID < t.ID) {
					t = c
				}
			}
			t.Regions = append(t.Regions, reg)
			moves = append(moves, fsm.Move{Region: reg, From: n.ID, To: t.ID})
		}
	}
	return moves, left
}

// TestPlanDrainSameAsInline: on random clusters PlanDrain plans exactly
// what the runner planned inline, whatever order its input comes in.
func TestPlanDrainSameAsInline(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for trial := range 200 {
		nodes := randomNodes(rng, 1+rng.IntN(20), rng.IntN(300))
		isDraining := map[uint64]bool{}
		var draining []balancer.Node
		var targets []balancer.Load
		for i, n := range shuffled(rng, nodes) {
			if rng.IntN(4) == 0 || i == 0 && trial%3 == 0 {
				nodes[n.ID-1].Schedulable = false // draining is never schedulable
				isDraining[n.ID] = true
				draining = append(draining, n)
			} else if n.Schedulable {
				targets = append(targets, load(n.ID, len(n.Regions)))
			}
		}
		maxMoves := rng.IntN(40)
		want, wantLeft := drainInline(nodes, isDraining, maxMoves)
		got, left := balancer.PlanDrain(draining, targets, balancer.Config{MaxMoves: maxMoves})
		if !movesEqual(got, want) || left != wantLeft {
			t.Fatalf("trial %d: PlanDrain = %v, left %d; inline planned %v, left %d", trial, got, left, want, wantLeft)
		}
	}
}
