package balancer_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/metasrv/metasrv/balancer"
	"github.com/metasrv/metasrv/fsm"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeCluster is the leader's view for the runner: the replicated state is
// a real fsm.FSM (so proposals meet the real maintenance and cordon
// rules); detector statuses and reported regions are set by the test.
type fakeCluster struct {
	t   *testing.T
	fsm *fsm.FSM

	mu         sync.Mutex
	index      uint64
	status     map[uint64]string // default "alive"
	unreported map[uint64]bool   // regions the owner has not reported
	proposed   []fsm.MoveRegions // every proposal, in order
	proposeErr error             // returned (without applying) when set
	// beforeApply runs after a proposal is made and before it is applied
	// (what may commit in between: another entry).
	beforeApply func()
}

func newFakeCluster(t *testing.T) *fakeCluster {
	t.Helper()
	return &fakeCluster{t: t, status: map[uint64]string{}, unreported: map[uint64]bool{},
		fsm: fsm.New(fsm.Config{OnUnknown: func(index uint64, typ string, v int) {
			t.Errorf("unknown command %q v%d at %d", typ, v, index)
		}})}
}

func (c *fakeCluster) apply(typ string, payload any) fsm.Result {
	c.t.Helper()
	b, err := fsm.Encode(typ, payload)
	if err != nil {
		c.t.Fatalf("encode %s: %v", typ, err)
	}
	c.mu.Lock()
	c.index++
	idx := c.index
	c.mu.Unlock()
	return c.fsm.Apply(idx, b)
}

func (c *fakeCluster) mustApply(typ string, payload any) fsm.Result {
	c.t.Helper()
	r := c.apply(typ, payload)
	if r.Code != "" {
		c.t.Fatalf("%s rejected: %s: %s", typ, r.Code, r.Reason)
	}
	return r
}

// datanodes registers datanodes 1..n.
func (c *fakeCluster) datanodes(n int) {
	for id := uint64(1); id <= uint64(n); id++ {
		c.mustApply(fsm.CmdRegisterDatanode, fsm.RegisterDatanode{ID: id, Addr: fmt.Sprintf("10.0.0.%d:4001", id), Time: t0})
	}
}

// table creates a table whose regions are placed on the given datanodes;
// it returns the created region ids.
func (c *fakeCluster) table(name string, placement ...uint64) []uint64 {
	r := c.mustApply(fsm.CmdCreateTable, fsm.CreateTable{Name: name, Placement: placement, Time: t0})
	var ids []uint64
	for _, reg := range r.Regions {
		ids = append(ids, reg.ID)
	}
	return ids
}

func (c *fakeCluster) maintenance(on bool) {
	c.mustApply(fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: on, Time: t0})
}

func (c *fakeCluster) adminState(id uint64, state string) {
	c.mustApply(fsm.CmdSetAdminState, fsm.SetDatanodeAdminState{ID: id, State: state, Time: t0})
}

func (c *fakeCluster) setStatus(id uint64, st string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status[id] = st
}

func (c *fakeCluster) setUnreported(regions ...uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range regions {
		c.unreported[r] = true
	}
}

func (c *fakeCluster) proposals() []fsm.MoveRegions {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]fsm.MoveRegions(nil), c.proposed...)
}

// counts returns the number of regions per datanode 1..n.
func (c *fakeCluster) counts(n int) []int {
	out := make([]int, n)
	for _, r := range c.fsm.Regions() {
		out[r.Datanode-1]++
	}
	return out
}

func (c *fakeCluster) Maintenance() fsm.Maintenance { return c.fsm.Maintenance() }
func (c *fakeCluster) Procedures() fsm.Procedures   { return c.fsm.Procedures() }
func (c *fakeCluster) Datanodes() []fsm.Datanode    { return c.fsm.Datanodes() }
func (c *fakeCluster) RegionCounts() map[uint64]int { return c.fsm.RegionCounts() }

func (c *fakeCluster) RegionsOf(id uint64) []fsm.Region { return c.fsm.RegionsOf(id) }

func (c *fakeCluster) RegionsByOwner() map[uint64][]fsm.Region { return c.fsm.RegionsByOwner() }

func (c *fakeCluster) Status(id uint64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.status[id]; ok {
		return st
	}
	return "alive"
}

func (c *fakeCluster) Reported(id, region uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.fsm.Region(region); !ok || r.Datanode != id {
		return false
	}
	return !c.unreported[region]
}

func (c *fakeCluster) Propose(ctx context.Context, cmd fsm.MoveRegions) (fsm.Result, error) {
	c.mu.Lock()
	c.proposed = append(c.proposed, cmd)
	err, before := c.proposeErr, c.beforeApply
	c.mu.Unlock()
	if err != nil {
		return fsm.Result{}, err
	}
	if before != nil {
		before()
	}
	return c.apply(fsm.CmdMoveRegions, cmd), nil
}

// clock is a settable clock for the runner.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (k *clock) Now() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.now
}

func (k *clock) Add(d time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.now = k.now.Add(d)
}

func newRunner(c *fakeCluster, k *clock, mod func(*balancer.RunnerConfig)) *balancer.Runner {
	cfg := balancer.RunnerConfig{Interval: time.Minute, Cooldown: 5 * time.Minute, Plan: defaultCfg, Now: k.Now}
	if mod != nil {
		mod(&cfg)
	}
	return balancer.NewRunner(cfg, c)
}

func TestRunnerPausedReasons(t *testing.T) {
	cases := []struct {
		name  string
		setup func(c *fakeCluster)
		want  string // prefix of paused_reason; "" = not paused
	}{
		{"nothing wrong", func(c *fakeCluster) {}, ""},
		{"maintenance", func(c *fakeCluster) { c.maintenance(true) }, "maintenance"},
		{"maintenance wins over a failed datanode", func(c *fakeCluster) {
			c.maintenance(true)
			c.setStatus(1, "failed")
		}, "maintenance"},
		{"maintenance turned off again", func(c *fakeCluster) {
			c.maintenance(true)
			c.maintenance(false)
		}, ""},
		{"failover pending: a failed datanode holds regions", func(c *fakeCluster) { c.setStatus(2, "failed") },
			"failover pending: datanode 2 is failed and holds 4 regions"},
		{"a suspect datanode holds regions", func(c *fakeCluster) { c.setStatus(1, "suspect") },
			"datanode 1 holds regions and is suspect, not alive"},
		{"an unknown datanode holds regions", func(c *fakeCluster) { c.setStatus(2, "unknown") },
			"datanode 2 holds regions and is unknown, not alive"},
		{"a failed datanode with no regions is ignored", func(c *fakeCluster) { c.setStatus(3, "failed") }, ""},
		{"a suspect datanode with no regions is ignored", func(c *fakeCluster) { c.setStatus(4, "suspect") }, ""},
		{"a cordoned alive datanode does not pause", func(c *fakeCluster) { c.adminState(1, fsm.AdminCordoned) }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeCluster(t)
			c.datanodes(4)
			c.table("t", 1, 1, 1, 1, 2, 2, 2, 2)
			tc.setup(c)
			k := &clock{now: t0.Add(time.Hour)}
			r := newRunner(c, k, nil)

			st := r.Status()
			if st.Paused != (tc.want != "") || st.PausedReason != tc.want {
				t.Errorf("Status paused=%t reason=%q, want paused=%t reason=%q", st.Paused, st.PausedReason, tc.want != "", tc.want)
			}
			plan, paused := r.PlanNow()
			if paused != tc.want {
				t.Errorf("PlanNow paused reason %q, want %q", paused, tc.want)
			}
			before := c.counts(4)
			rep := r.Round(context.Background())
			if rep.Paused != tc.want {
				t.Errorf("Round paused %q, want %q", rep.Paused, tc.want)
			}
			st = r.Status()
			if st.Runs != 1 || st.LastRun == nil || !st.LastRun.Equal(k.Now()) {
				t.Errorf("a round, paused or not, counts as a run: runs=%d last_run=%v", st.Runs, st.LastRun)
			}
			if tc.want != "" {
				if n := len(c.proposals()); n != 0 {
					t.Errorf("paused round proposed %d commands", n)
				}
				if rep.Planned != 0 || rep.Committed != 0 || st.MovesDone != 0 {
					t.Errorf("paused round moved: %+v, status %+v", rep, st)
				}
				if got := c.counts(4); !reflect.DeepEqual(got, before) {
					t.Errorf("counts changed while paused: %v → %v", before, got)
				}
				// The dry run still shows what would happen.
				if len(plan.Moves) == 0 && tc.want == "maintenance" {
					t.Errorf("the dry run during maintenance shows no moves: %+v", plan)
				}
				return
			}
			if len(c.proposals()) != 1 || rep.Committed == 0 {
				t.Errorf("an unpaused round with unbalanced datanodes moved nothing: %+v, %d proposals", rep, len(c.proposals()))
			}
		})
	}
}

func TestRunnerRoundProposesBalance(t *testing.T) {
	c := newFakeCluster(t)
	c.datanodes(4)
	ids := c.table("t", 1, 1, 1, 1, 2, 2, 2, 2)
	k := &clock{now: t0.Add(time.Hour)}
	var reports []balancer.Report
	r := newRunner(c, k, func(cfg *balancer.RunnerConfig) {
		cfg.OnRound = func(rep balancer.Report) { reports = append(reports, rep) }
	})

	plan, paused := r.PlanNow()
	if paused != "" || len(plan.Moves) != 4 || plan.SpreadBefore != 4 || plan.SpreadAfter != 0 {
		t.Fatalf("dry run: %+v paused=%q", plan, paused)
	}
	if got := c.proposals(); len(got) != 0 {
		t.Fatalf("the dry run proposed %v", got)
	}

	rep := r.Round(context.Background())
	props := c.proposals()
	if len(props) != 1 {
		t.Fatalf("%d proposals, want 1", len(props))
	}
	p := props[0]
	if p.Cause != fsm.CauseBalance || p.By != "balancer" || !p.Time.Equal(k.Now()) {
		t.Errorf("proposal cause=%q by=%q time=%v, want balance/balancer/%v", p.Cause, p.By, p.Time, k.Now())
	}
	want := []fsm.Move{mv(ids[0], 1, 3), mv(ids[4], 2, 4), mv(ids[1], 1, 3), mv(ids[5], 2, 4)}
	if !reflect.DeepEqual(p.Moves, want) || !reflect.DeepEqual(p.Moves, plan.Moves) {
		t.Errorf("proposed moves %v, want %v (= the dry run's)", p.Moves, want)
	}
	if rep != (balancer.Report{Planned: 4, Committed: 4, Spread: 4}) {
		t.Errorf("report %+v", rep)
	}
	if got := c.counts(4); !reflect.DeepEqual(got, []int{2, 2, 2, 2}) {
		t.Errorf("counts after the round %v, want 2/2/2/2", got)
	}
	st := r.Status()
	if st.Runs != 1 || st.MovesDone != 4 || st.MovesRejected != 0 || st.Spread != 4 || st.Paused || !st.Enabled || st.Interval != "1m0s" {
		t.Errorf("status %+v", st)
	}

	// Balanced now: the next round proposes nothing.
	rep = r.Round(context.Background())
	if len(c.proposals()) != 1 || rep.Planned != 0 || rep.Spread != 0 {
		t.Errorf("second round: %+v, %d proposals", rep, len(c.proposals()))
	}
	if st := r.Status(); st.Runs != 2 || st.MovesDone != 4 || st.Spread != 0 {
		t.Errorf("status after the second round %+v", st)
	}
	if len(reports) != 0 {
		t.Errorf("OnRound is for Run's rounds only, got %v", reports)
	}
}

func TestRunnerRoundCountsRejections(t *testing.T) {
	c := newFakeCluster(t)
	c.datanodes(2)
	c.table("t", 1, 1, 1, 1)
	k := &clock{now: t0.Add(time.Hour)}
	r := newRunner(c, k, nil)
	// Maintenance is enabled after the plan was made but before the
	// entry commits: the FSM rejects the whole proposal.
	c.beforeApply = func() { c.maintenance(true) }
	rep := r.Round(context.Background())
	if rep.Planned != 2 || rep.Committed != 0 || rep.Rejected != 2 {
		t.Errorf("report %+v, want planned 2, committed 0, rejected 2", rep)
	}
	st := r.Status()
	if st.MovesDone != 0 || st.MovesRejected != 2 {
		t.Errorf("status %+v", st)
	}
	if got := c.counts(2); !reflect.DeepEqual(got, []int{4, 0}) {
		t.Errorf("counts %v: a rejected proposal moved regions", got)
	}
	// The next round sees maintenance and pauses.
	if rep := r.Round(context.Background()); rep.Paused != "maintenance" {
		t.Errorf("next round %+v", rep)
	}
}

func TestRunnerProposeError(t *testing.T) {
	c := newFakeCluster(t)
	c.datanodes(2)
	c.table("t", 1, 1, 1, 1)
	c.proposeErr = errors.New("leadership lost")
	r := newRunner(c, &clock{now: t0.Add(time.Hour)}, nil)
	rep := r.Round(context.Background())
	if rep.Planned != 2 || rep.Committed != 0 || rep.Rejected != 0 {
		t.Errorf("report %+v", rep)
	}
	if st := r.Status(); st.Runs != 1 || st.MovesDone != 0 || st.MovesRejected != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestRunnerSkipsInFlightAndCoolingDown(t *testing.T) {
	c := newFakeCluster(t)
	c.datanodes(2)
	ids := c.table("t", 1, 1, 1, 1, 1, 1) // moved_at t0, version 1
	k := &clock{now: t0.Add(time.Minute)}
	r := newRunner(c, k, func(cfg *balancer.RunnerConfig) { cfg.Cooldown = 5 * time.Minute })

	// Every region was placed a minute ago but never moved: creation starts
	// no cooldown, only the in-flight ones (not yet served by their owner)
	// stay put.
	c.setUnreported(ids[0], ids[1])
	plan, _ := r.PlanNow()
	if want := []fsm.Move{mv(ids[2], 1, 2), mv(ids[3], 1, 2), mv(ids[4], 1, 2)}; !reflect.DeepEqual(plan.Moves, want) {
		t.Fatalf("plan %v, want %v (never-moved regions move at once, in-flight ones skipped)", plan.Moves, want)
	}
	wantSkipped := []balancer.Skipped{{Region: ids[0], Datanode: 1, Reason: "not reported yet"},
		{Region: ids[1], Datanode: 1, Reason: "not reported yet"}}
	if !reflect.DeepEqual(plan.Skipped, wantSkipped) || plan.SkippedTotal != 2 {
		t.Fatalf("skipped %v (total %d), want %v", plan.Skipped, plan.SkippedTotal, wantSkipped)
	}
	if st := r.Status(); len(st.Skipped) != 0 || st.SkippedTotal != 0 {
		t.Errorf("status before any round lists skipped %v (total %d)", st.Skipped, st.SkippedTotal)
	}
	if rep := r.Round(context.Background()); rep.Committed != 3 {
		t.Fatalf("round %+v", rep)
	}
	if st := r.Status(); !reflect.DeepEqual(st.Skipped, wantSkipped) || st.SkippedTotal != 2 {
		t.Errorf("status skipped %v (total %d), want the round's %v", st.Skipped, st.SkippedTotal, wantSkipped)
	}
	// The regions just moved are cooling down (and unreported by their new
	// owner); the rest are in flight: nothing else can move.
	c.mu.Lock()
	c.unreported = map[uint64]bool{}
	c.mu.Unlock()
	moved := map[uint64]bool{ids[2]: true, ids[3]: true, ids[4]: true}
	// Make it unbalanced again by registering a third, empty datanode.
	c.mustApply(fsm.CmdRegisterDatanode, fsm.RegisterDatanode{ID: 3, Addr: "10.0.0.3:4001", Time: t0})
	k.Add(time.Minute)
	plan, _ = r.PlanNow()
	for _, m := range plan.Moves {
		if moved[m.Region] {
			t.Errorf("region %d moved again within the cooldown: %v", m.Region, plan.Moves)
		}
	}
	if len(plan.Moves) == 0 {
		t.Errorf("nothing planned onto the new datanode: %+v", plan)
	}
	// Moved at t0+1m: cooling for five minutes after the move.
	cooling := "cooling until " + t0.Add(6*time.Minute).Format(time.RFC3339Nano)
	wantSkipped = []balancer.Skipped{{Region: ids[2], Datanode: 2, Reason: cooling},
		{Region: ids[3], Datanode: 2, Reason: cooling}, {Region: ids[4], Datanode: 2, Reason: cooling}}
	if !reflect.DeepEqual(plan.Skipped, wantSkipped) || plan.SkippedTotal != 3 {
		t.Errorf("skipped %v (total %d), want %v", plan.Skipped, plan.SkippedTotal, wantSkipped)
	}
	k.Add(5 * time.Minute)
	plan, _ = r.PlanNow()
	if len(plan.Moves) == 0 {
		t.Errorf("after the cooldown nothing planned: %+v", plan)
	}
}

// TestRunnerCooldownCountsMoves: the cooldown runs from a region's last
// move; creating its table (which stamps MovedAt too) starts none.
func TestRunnerCooldownCountsMoves(t *testing.T) {
	const cooldown = 5 * time.Minute
	for _, tc := range []struct {
		name       string
		movedAt    time.Duration // after t0; < 0: never moved
		now        time.Duration // after t0
		unreported bool
		why        string // "" means the region moves now
	}{
		{name: "never moved, just created", movedAt: -1, now: time.Second},
		{name: "never moved, long ago", movedAt: -1, now: time.Hour},
		{name: "moved, within the cooldown", movedAt: time.Minute, now: 2 * time.Minute,
			why: "cooling until " + t0.Add(time.Minute+cooldown).Format(time.RFC3339Nano)},
		{name: "moved, cooldown just over", movedAt: time.Minute, now: time.Minute + cooldown},
		{name: "never moved, not reported yet", movedAt: -1, now: time.Second, unreported: true, why: "not reported yet"},
		{name: "moved, cooldown over, not reported yet", movedAt: time.Minute, now: time.Hour, unreported: true,
			why: "not reported yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeCluster(t)
			c.datanodes(3)
			ids := c.table("t", 1, 1, 1, 1) // moved_at t0, version 1
			if tc.movedAt >= 0 {            // there and back: version 3, moved_at t0+movedAt
				at := t0.Add(tc.movedAt)
				for _, m := range []fsm.Move{mv(ids[0], 1, 3), mv(ids[0], 3, 1)} {
					c.mustApply(fsm.CmdMoveRegions, fsm.MoveRegions{Cause: fsm.CauseManual, Moves: []fsm.Move{m}, Time: at})
				}
			}
			if tc.unreported {
				c.setUnreported(ids[0])
			}
			r := newRunner(c, &clock{now: t0.Add(tc.now)}, func(cfg *balancer.RunnerConfig) { cfg.Cooldown = cooldown })
			plan, paused := r.PlanNow()
			if paused != "" {
				t.Fatalf("paused: %s", paused)
			}
			moved := slices.ContainsFunc(plan.Moves, func(m fsm.Move) bool { return m.Region == ids[0] })
			var want []balancer.Skipped
			if tc.why != "" {
				want = []balancer.Skipped{{Region: ids[0], Datanode: 1, Reason: tc.why}}
			}
			if moved != (tc.why == "") || !reflect.DeepEqual(plan.Skipped, append([]balancer.Skipped{}, want...)) ||
				plan.SkippedTotal != len(want) {
				t.Errorf("region %d: moved %t, skipped %v (total %d); want moved %t, skipped %v",
					ids[0], moved, plan.Skipped, plan.SkippedTotal, tc.why == "", want)
			}
		})
	}
}

func TestRunnerNeverTargetsUnschedulable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(c *fakeCluster)
	}{
		{"cordoned", func(c *fakeCluster) { c.adminState(2, fsm.AdminCordoned) }},
		{"draining", func(c *fakeCluster) { c.adminState(2, fsm.AdminDraining) }},
		{"failed", func(c *fakeCluster) { c.setStatus(2, "failed") }},
		{"suspect", func(c *fakeCluster) { c.setStatus(2, "suspect") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeCluster(t)
			c.datanodes(3)
			c.table("t", 1, 1, 1, 1, 1, 1)
			tc.setup(c)
			r := newRunner(c, &clock{now: t0.Add(time.Hour)}, nil)
			rep := r.Round(context.Background())
			if rep.Paused != "" || rep.Committed != 3 {
				t.Fatalf("round %+v", rep)
			}
			if got := c.counts(3); !reflect.DeepEqual(got, []int{3, 0, 3}) {
				t.Errorf("counts %v, want 3/0/3 (nothing onto datanode 2)", got)
			}
		})
	}
}

func TestRunnerDrainRound(t *testing.T) {
	c := newFakeCluster(t)
	c.datanodes(4)
	ids := c.table("t", 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3) // 10 on 1, one each on 2 and 3
	k := &clock{now: t0.Add(time.Hour)}
	r := newRunner(c, k, func(cfg *balancer.RunnerConfig) {
		cfg.Plan.MaxMoves = 4
		cfg.Interval = 0 // automatic balancing off: drain still runs
	})
	if st := r.Status(); st.Enabled {
		t.Errorf("Interval 0: status says enabled")
	}

	if rep, ok := r.DrainRound(context.Background()); ok || rep.Planned != 0 || len(c.proposals()) != 0 {
		t.Fatalf("nothing draining: ok=%t %+v", ok, rep)
	}

	// Drain during maintenance, with datanode 4 cordoned: regions go to 2
	// and 3 only, at most MaxMoves a round, lowest region first, least
	// loaded target first.
	c.maintenance(true)
	c.adminState(4, fsm.AdminCordoned)
	c.adminState(1, fsm.AdminDraining)
	rep, ok := r.DrainRound(context.Background())
	if !ok {
		t.Fatal("drain round says nothing is draining")
	}
	props := c.proposals()
	if len(props) != 1 {
		t.Fatalf("%d proposals", len(props))
	}
	p := props[0]
	if p.Cause != fsm.CauseDrain || p.By != "drain" || !p.Time.Equal(k.Now()) {
		t.Errorf("proposal cause=%q by=%q time=%v", p.Cause, p.By, p.Time)
	}
	want := []fsm.Move{mv(ids[0], 1, 2), mv(ids[1], 1, 3), mv(ids[2], 1, 2), mv(ids[3], 1, 3)}
	if !reflect.DeepEqual(p.Moves, want) {
		t.Errorf("drain moves %v, want %v", p.Moves, want)
	}
	if rep != (balancer.Report{Drain: true, Planned: 4, Committed: 4, DrainLeft: 6}) {
		t.Errorf("report %+v", rep)
	}
	// Balance rounds stay paused meanwhile.
	if rep := r.Round(context.Background()); rep.Paused != "maintenance" {
		t.Errorf("balance round during maintenance: %+v", rep)
	}

	for i := 0; i < 10; i++ {
		rep, ok = r.DrainRound(context.Background())
		if !ok {
			t.Fatal("datanode 1 stopped draining")
		}
		if rep.DrainLeft == 0 {
			break
		}
	}
	if got := c.counts(4); !reflect.DeepEqual(got, []int{0, 6, 6, 0}) {
		t.Errorf("counts after draining %v, want 0/6/6/0", got)
	}
	for i, p := range c.proposals() {
		if len(p.Moves) > 4 {
			t.Errorf("proposal %d has %d moves, MaxMoves 4", i, len(p.Moves))
		}
		if p.Cause != fsm.CauseDrain {
			t.Errorf("proposal %d cause %q", i, p.Cause)
		}
	}
	// Drained: still draining (ok) but nothing left to propose.
	n := len(c.proposals())
	rep, ok = r.DrainRound(context.Background())
	if !ok || rep.Planned != 0 || rep.DrainLeft != 0 || len(c.proposals()) != n {
		t.Errorf("drained datanode: ok=%t %+v", ok, rep)
	}
}

func TestRunnerDrainWithoutTargets(t *testing.T) {
	c := newFakeCluster(t)
	c.datanodes(2)
	c.table("t", 1, 1)
	c.adminState(1, fsm.AdminDraining)
	c.setStatus(2, "failed")
	r := newRunner(c, &clock{now: t0.Add(time.Hour)}, nil)
	rep, ok := r.DrainRound(context.Background())
	if !ok || rep.Planned != 0 || rep.DrainLeft != 2 || len(c.proposals()) != 0 {
		t.Errorf("no live target: ok=%t %+v, %d proposals", ok, rep, len(c.proposals()))
	}
}

func TestRunnerStatusCounters(t *testing.T) {
	c := newFakeCluster(t)
	c.datanodes(3)
	c.table("t", 1, 1, 1, 1, 1, 1, 1, 1, 1)
	k := &clock{now: t0.Add(time.Hour)}
	r := newRunner(c, k, func(cfg *balancer.RunnerConfig) {
		cfg.Plan = balancer.Config{Tolerance: 1, MaxMoves: 2, MaxPerNode: 2}
		cfg.Cooldown = 0
	})
	st := r.Status()
	if st.Runs != 0 || st.LastRun != nil || st.MovesDone != 0 || !st.Enabled || st.Interval != "1m0s" {
		t.Fatalf("initial status %+v", st)
	}
	c.maintenance(true)
	for i := 0; i < 3; i++ {
		k.Add(time.Second)
		r.Round(context.Background())
	}
	st = r.Status()
	if st.Runs != 3 || !st.Paused || st.PausedReason != "maintenance" || st.MovesDone != 0 || !st.LastRun.Equal(k.Now()) {
		t.Errorf("after three paused runs %+v", st)
	}
	c.maintenance(false)
	if st := r.Status(); st.Paused || st.PausedReason != "" {
		t.Errorf("Status does not refresh paused: %+v", st)
	}
	total := uint64(0)
	for i := 0; i < 10; i++ {
		k.Add(time.Second)
		total += uint64(r.Round(context.Background()).Committed)
	}
	st = r.Status()
	if st.Runs != 13 || st.MovesDone != total || total != 6 || st.Spread != 0 {
		t.Errorf("after balancing: %+v (committed %d, want 6)", st, total)
	}
	if got := c.counts(3); !reflect.DeepEqual(got, []int{3, 3, 3}) {
		t.Errorf("counts %v", got)
	}
}

// TestRunnerRun drives the real loop on a short interval: rounds are
// reported through OnRound, balancing converges, drain runs, and Run
// returns when its context ends.
func TestRunnerRun(t *testing.T) {
	c := newFakeCluster(t)
	c.datanodes(3)
	c.table("t", 1, 1, 1, 1, 1, 1, 3)
	var mu sync.Mutex
	var reports []balancer.Report
	r := balancer.NewRunner(balancer.RunnerConfig{Interval: 5 * time.Millisecond, DrainInterval: 5 * time.Millisecond,
		Plan: balancer.Config{Tolerance: 1, MaxMoves: 1, MaxPerNode: 1},
		OnRound: func(rep balancer.Report) {
			mu.Lock()
			reports = append(reports, rep)
			mu.Unlock()
		}}, c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()
	waitFor(t, func() error {
		if got := c.counts(3); !reflect.DeepEqual(got, []int{3, 2, 2}) {
			return fmt.Errorf("counts %v", got)
		}
		return nil
	})
	c.adminState(1, fsm.AdminDraining)
	waitFor(t, func() error {
		if got := c.counts(3); got[0] != 0 {
			return fmt.Errorf("counts %v", got)
		}
		return nil
	})
	mu.Lock()
	var drain, balance int
	for _, rep := range reports {
		if rep.Drain {
			drain++
		} else {
			balance++
		}
	}
	mu.Unlock()
	if drain == 0 || balance == 0 {
		t.Errorf("OnRound saw %d drain and %d balance rounds", drain, balance)
	}
	for _, p := range c.proposals() {
		if p.Cause != fsm.CauseBalance && p.Cause != fsm.CauseDrain {
			t.Errorf("cause %q", p.Cause)
		}
	}
}

func waitFor(t *testing.T, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// routeCounter counts the owner-index reads a runner makes.
type routeCounter struct {
	*fakeCluster
	mu         sync.Mutex
	counts, of int
	ofIDs      []uint64
}

func (c *routeCounter) RegionCounts() map[uint64]int {
	c.mu.Lock()
	c.counts++
	c.mu.Unlock()
	return c.fakeCluster.RegionCounts()
}

func (c *routeCounter) RegionsOf(id uint64) []fsm.Region {
	c.mu.Lock()
	c.of++
	c.ofIDs = append(c.ofIDs, id)
	c.mu.Unlock()
	return c.fakeCluster.RegionsOf(id)
}

func (c *routeCounter) RegionsByOwner() map[uint64][]fsm.Region {
	c.mu.Lock()
	c.of++
	c.mu.Unlock()
	return c.fakeCluster.RegionsByOwner()
}

// TestRunnerIdleReadsNoRoutes: with nothing draining, a drain round reads
// the datanodes only, and Status the region counts only; with one
// draining, a drain round reads that datanode's routes and no other.
func TestRunnerIdleReadsNoRoutes(t *testing.T) {
	c := &routeCounter{fakeCluster: newFakeCluster(t)}
	c.datanodes(3)
	c.table("t", 1, 1, 2, 3)
	r := balancer.NewRunner(balancer.RunnerConfig{Plan: defaultCfg, Now: (&clock{now: t0.Add(time.Hour)}).Now}, c)
	if _, ok := r.DrainRound(context.Background()); ok {
		t.Fatal("nothing draining, yet ok")
	}
	if c.counts != 0 || c.of != 0 {
		t.Errorf("idle drain round: %d RegionCounts and %d RegionsOf calls, want none", c.counts, c.of)
	}
	if st := r.Status(); st.Paused || len(st.Draining) != 0 {
		t.Fatalf("status %+v", st)
	}
	if c.of != 0 {
		t.Errorf("Status with nothing draining: %d RegionsOf calls, want none", c.of)
	}
	c.adminState(2, fsm.AdminDraining)
	c.of, c.ofIDs = 0, nil
	if rep, ok := r.DrainRound(context.Background()); !ok || rep.Committed != 1 {
		t.Fatalf("drain round %+v ok=%t", rep, ok)
	}
	if !reflect.DeepEqual(c.ofIDs, []uint64{2}) {
		t.Errorf("drain round read the routes of datanodes %v, want [2] (the draining one)", c.ofIDs)
	}
	c.of = 0
	if st := r.Status(); !reflect.DeepEqual(st.Draining, []balancer.DrainProgress{{ID: 2, RegionsLeft: 0}}) || c.of != 0 {
		t.Errorf("status draining %+v after %d RegionsOf calls, want datanode 2 with 0 left and no call", st.Draining, c.of)
	}
}
