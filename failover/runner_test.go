package failover_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/metasrv/metasrv/failover"
	"github.com/metasrv/metasrv/fsm"
)

// fakeCluster is the runner's Cluster over a real FSM, so the verdicts on
// proposals are the FSM's own. Hooks let a test make the runner's view
// stale or the proposal fail.
type fakeCluster struct {
	t   *testing.T
	clk *fakeClock
	f   *fsm.FSM

	mu        sync.Mutex
	idx       uint64
	proposals []fsm.MoveRegions
	// staleMaintenance, when set, is what Maintenance() tells the runner
	// (the FSM may already know better).
	staleMaintenance *fsm.Maintenance
	proposeErr       error
	beforePropose    func() // runs just before a proposal reaches the FSM
}

func newFakeCluster(t *testing.T, clk *fakeClock, datanodes int, placement []uint64) *fakeCluster {
	t.Helper()
	c := &fakeCluster{t: t, clk: clk, f: fsm.New(fsm.Config{OnUnknown: func(i uint64, typ string, v int) {
		t.Errorf("unknown command %q v%d at %d", typ, v, i)
	}})}
	for id := uint64(1); id <= uint64(datanodes); id++ {
		c.mustApply(fsm.CmdRegisterDatanode, fsm.RegisterDatanode{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", 4000+id), Time: clk.Now()})
	}
	if len(placement) > 0 {
		c.mustApply(fsm.CmdCreateTable, fsm.CreateTable{Name: "t", Placement: placement, Time: clk.Now()})
	}
	return c
}

func (c *fakeCluster) apply(typ string, payload any) fsm.Result {
	c.t.Helper()
	b, err := fsm.Encode(typ, payload)
	if err != nil {
		c.t.Fatalf("encode %s: %v", typ, err)
	}
	c.mu.Lock()
	c.idx++
	idx := c.idx
	c.mu.Unlock()
	return c.f.Apply(idx, b)
}

func (c *fakeCluster) mustApply(typ string, payload any) {
	c.t.Helper()
	if r := c.apply(typ, payload); r.Code != "" {
		c.t.Fatalf("%s rejected: %s %s", typ, r.Code, r.Reason)
	}
}

func (c *fakeCluster) setMaintenance(on bool) {
	c.t.Helper()
	c.mustApply(fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: on, Reason: "test", Time: c.clk.Now()})
}

func (c *fakeCluster) Maintenance() fsm.Maintenance {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.staleMaintenance != nil {
		return *c.staleMaintenance
	}
	return c.f.Maintenance()
}
func (c *fakeCluster) Procedures() fsm.Procedures { return c.f.Procedures() }
func (c *fakeCluster) Datanodes() []fsm.Datanode  { return c.f.Datanodes() }
func (c *fakeCluster) Regions() []fsm.Region      { return c.f.Regions() }

func (c *fakeCluster) Propose(_ context.Context, cmd fsm.MoveRegions) (fsm.Result, error) {
	c.mu.Lock()
	c.proposals = append(c.proposals, cmd)
	err, hook := c.proposeErr, c.beforePropose
	c.mu.Unlock()
	if err != nil {
		return fsm.Result{}, err
	}
	if hook != nil {
		hook()
	}
	return c.apply(fsm.CmdMoveRegions, cmd), nil
}

func (c *fakeCluster) nProposals() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.proposals)
}

// owners returns region id → owner.
func (c *fakeCluster) owners() map[uint64]uint64 {
	out := map[uint64]uint64{}
	for _, r := range c.f.Regions() {
		out[r.ID] = r.Datanode
	}
	return out
}

func (c *fakeCluster) regionsOf(dn uint64) []uint64 {
	var out []uint64
	for _, r := range c.f.RegionsOf(dn) {
		out = append(out, r.ID)
	}
	return out
}

// env is a runner over a fake cluster, a monitor and one fake clock.
type env struct {
	t   *testing.T
	clk *fakeClock
	c   *fakeCluster
	mon *failover.Monitor
	r   *failover.Runner
}

func newEnv(t *testing.T, datanodes int, placement []uint64, mcfg failover.MonitorConfig, maxPerTick int) *env {
	t.Helper()
	clk := newClock()
	c := newFakeCluster(t, clk, datanodes, placement)
	mon := failover.NewMonitor(mcfg, clk.Now)
	r := failover.NewRunner(failover.RunnerConfig{Tick: time.Second, MaxRegionsPerTick: maxPerTick, Now: clk.Now}, mon, c)
	e := &env{t: t, clk: clk, c: c, mon: mon, r: r}
	e.heartbeat(allIDs(datanodes)...)
	return e
}

func allIDs(n int) []uint64 {
	var out []uint64
	for i := uint64(1); i <= uint64(n); i++ {
		out = append(out, i)
	}
	return out
}

// heartbeat delivers one heartbeat from each id, listing the regions it owns.
func (e *env) heartbeat(ids ...uint64) {
	for _, id := range ids {
		e.mon.Observe(failover.Heartbeat{ID: id, Addr: "h:1", Regions: e.c.regionsOf(id)})
	}
}

// pass advances the clock by d in steps of 1 s, the datanodes in alive
// heartbeating at each step.
func (e *env) pass(d time.Duration, alive ...uint64) {
	for d > 0 {
		step := min(d, time.Second)
		e.clk.Advance(step)
		d -= step
		e.heartbeat(alive...)
	}
}

func (e *env) tick() failover.TickReport { return e.r.Tick(context.Background()) }

func ids(v []uint64) []uint64 {
	if len(v) == 0 {
		return nil
	}
	out := append([]uint64(nil), v...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func checkReport(t *testing.T, got failover.TickReport, failed, deferred, waiting []uint64, braked bool, moved, rejected int) {
	t.Helper()
	if !reflect.DeepEqual(ids(got.Failed), ids(failed)) || !reflect.DeepEqual(ids(got.Deferred), ids(deferred)) ||
		!reflect.DeepEqual(ids(got.Waiting), ids(waiting)) || got.Braked != braked || got.Moved != moved || got.Rejected != rejected {
		t.Errorf("tick report failed=%v deferred=%v waiting=%v braked=%t moved=%d rejected=%d\n"+
			"            want failed=%v deferred=%v waiting=%v braked=%t moved=%d rejected=%d",
			got.Failed, got.Deferred, got.Waiting, got.Braked, got.Moved, got.Rejected,
			failed, deferred, waiting, braked, moved, rejected)
	}
}

// Six regions, two per datanode: 1,4 on 1; 2,5 on 2; 3,6 on 3.
var sixOnThree = []uint64{1, 2, 3, 1, 2, 3}

func TestRunnerFailsOverWhenMaintenanceOff(t *testing.T) {
	e := newEnv(t, 3, sixOnThree, monitorConfig(), 100)
	checkReport(t, e.tick(), nil, nil, nil, false, 0, 0)

	e.pass(4*time.Second, 2, 3)
	checkReport(t, e.tick(), nil, nil, nil, false, 0, 0) // suspect, not failed yet
	if n := e.c.nProposals(); n != 0 {
		t.Fatalf("%d proposals before the datanode failed", n)
	}
	e.pass(2*time.Second, 2, 3)
	rep := e.tick()
	checkReport(t, rep, []uint64{1}, nil, nil, false, 2, 0)
	if got := e.c.regionsOf(1); len(got) != 0 {
		t.Errorf("datanode 1 still owns %v", got)
	}
	// Spread fewest first, ties by id: 1 → 2, 4 → 3.
	want := map[uint64]uint64{1: 2, 2: 2, 3: 3, 4: 3, 5: 2, 6: 3}
	if got := e.c.owners(); !reflect.DeepEqual(got, want) {
		t.Errorf("routes %v, want %v", got, want)
	}
	if len(rep.DetectToCommit) != 1 {
		t.Errorf("DetectToCommit = %v, want one sample", rep.DetectToCommit)
	}
	p := e.c.proposals[0]
	if p.Cause != fsm.CauseFailover || p.By != "failover" || !p.Time.Equal(e.clk.Now()) {
		t.Errorf("proposal %+v: want cause failover, by failover, time now", p)
	}
	evs, _ := e.c.f.Events(0, 0)
	moved := 0
	for _, ev := range evs {
		if ev.Type == fsm.EventRegionMoved {
			moved++
			if ev.Fields["cause"] != fsm.CauseFailover || ev.Fields["from"] != "1" || ev.Fields["phi"] == "" {
				t.Errorf("move event %+v: want cause failover from 1 with phi", ev)
			}
		}
	}
	if moved != 2 {
		t.Errorf("%d region_moved events, want 2", moved)
	}
	// Nothing left to move: no more proposals.
	e.pass(time.Second, 2, 3)
	checkReport(t, e.tick(), []uint64{1}, nil, nil, false, 0, 0)
	if n := e.c.nProposals(); n != 1 {
		t.Errorf("%d proposals, want 1", n)
	}
}

func TestRunnerDefersDuringMaintenance(t *testing.T) {
	e := newEnv(t, 3, sixOnThree, monitorConfig(), 100)
	e.c.setMaintenance(true)
	before := e.c.owners()
	e.pass(6*time.Second, 2, 3)
	for i := 0; i < 5; i++ {
		checkReport(t, e.tick(), []uint64{1}, []uint64{1}, nil, false, 0, 0)
		e.pass(time.Second, 2, 3)
	}
	if n := e.c.nProposals(); n != 0 {
		t.Fatalf("%d proposals during maintenance, want none", n)
	}
	if !e.r.Deferred(1) || e.r.Deferred(2) {
		t.Errorf("Deferred(1)=%t Deferred(2)=%t, want true false", e.r.Deferred(1), e.r.Deferred(2))
	}
	if got := e.c.owners(); !reflect.DeepEqual(got, before) {
		t.Errorf("routes changed during maintenance: %v, were %v", got, before)
	}
	// Disabled: the deferred failover runs at the next tick.
	e.c.setMaintenance(false)
	checkReport(t, e.tick(), []uint64{1}, nil, nil, false, 2, 0)
	if e.r.Deferred(1) {
		t.Errorf("still deferred after the failover ran")
	}
	if got := e.c.regionsOf(1); len(got) != 0 {
		t.Errorf("datanode 1 still owns %v", got)
	}
}

func TestRunnerDeferOnlyDatanodesWithRegions(t *testing.T) {
	e := newEnv(t, 3, []uint64{2, 3}, monitorConfig(), 100)
	e.c.setMaintenance(true)
	e.pass(6*time.Second, 2, 3)
	checkReport(t, e.tick(), []uint64{1}, nil, nil, false, 0, 0)
	if e.r.Deferred(1) {
		t.Errorf("a failed datanode without regions has nothing to defer")
	}
}

// The FSM has the last word: maintenance enabled after the runner looked
// (its view is stale) rejects the proposal, and the runner reports the
// failover as deferred.
func TestRunnerRejectedForMaintenanceIsDeferred(t *testing.T) {
	e := newEnv(t, 3, sixOnThree, monitorConfig(), 100)
	e.c.setMaintenance(true)
	e.c.staleMaintenance = &fsm.Maintenance{Enabled: false}
	before := e.c.owners()
	e.pass(6*time.Second, 2, 3)
	rep := e.tick()
	checkReport(t, rep, []uint64{1}, []uint64{1}, nil, false, 0, 2)
	if len(rep.DetectToCommit) != 0 {
		t.Errorf("DetectToCommit %v for a rejected failover", rep.DetectToCommit)
	}
	if !e.r.Deferred(1) {
		t.Errorf("Deferred(1) = false after a maintenance rejection")
	}
	if got := e.c.owners(); !reflect.DeepEqual(got, before) {
		t.Errorf("routes changed: %v, were %v", got, before)
	}
}

func TestRunnerWaitsForLease(t *testing.T) {
	cfg := monitorConfig()
	cfg.RegionLease = 8 * time.Second // longer than the ≈ 5.3 s detection
	e := newEnv(t, 3, sixOnThree, cfg, 100)
	e.pass(6*time.Second, 2, 3)
	checkReport(t, e.tick(), []uint64{1}, nil, []uint64{1}, false, 0, 0)
	e.pass(2*time.Second, 2, 3) // 8 s: lease over, margin not yet
	checkReport(t, e.tick(), []uint64{1}, nil, []uint64{1}, false, 0, 0)
	if n := e.c.nProposals(); n != 0 {
		t.Fatalf("%d proposals while the lease may still be in use", n)
	}
	e.pass(time.Second, 2, 3) // 9 s > 8 s + 500 ms margin
	rep := e.tick()
	checkReport(t, rep, []uint64{1}, nil, nil, false, 2, 0)
	if len(rep.DetectToCommit) != 1 || rep.DetectToCommit[0] != 3*time.Second {
		t.Errorf("DetectToCommit = %v, want [3s] (first seen failed at 6 s, committed at 9 s)", rep.DetectToCommit)
	}
}

func TestRunnerBrake(t *testing.T) {
	cases := []struct {
		name      string
		datanodes int
		alive     []uint64
		braked    bool
	}{
		{"2 of 3 failed: braked", 3, []uint64{3}, true},
		{"3 of 3 failed: braked", 3, nil, true},
		{"3 of 5 failed: braked", 5, []uint64{4, 5}, true},
		{"2 of 4 failed (exactly half): not braked", 4, []uint64{3, 4}, false},
		{"1 of 3 failed: not braked", 3, []uint64{2, 3}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			placement := allIDs(tc.datanodes)
			e := newEnv(t, tc.datanodes, placement, monitorConfig(), 100)
			before := e.c.owners()
			e.pass(6*time.Second, tc.alive...)
			rep := e.tick()
			if rep.Braked != tc.braked || e.r.Braked() != tc.braked {
				t.Fatalf("report braked=%t Braked()=%t, want %t (failed %v)", rep.Braked, e.r.Braked(), tc.braked, rep.Failed)
			}
			if tc.braked {
				if n := e.c.nProposals(); n != 0 || rep.Moved != 0 {
					t.Errorf("braked, yet %d proposals and %d moves", n, rep.Moved)
				}
				if got := e.c.owners(); !reflect.DeepEqual(got, before) {
					t.Errorf("braked, yet routes changed: %v, were %v", got, before)
				}
			} else if rep.Moved != tc.datanodes-len(tc.alive) {
				t.Errorf("moved %d, want %d", rep.Moved, tc.datanodes-len(tc.alive))
			}
		})
	}
}

func TestRunnerBrakeLiftsWhenDatanodesReturn(t *testing.T) {
	e := newEnv(t, 3, sixOnThree, monitorConfig(), 100)
	e.pass(6*time.Second, 3)
	if rep := e.tick(); !rep.Braked {
		t.Fatalf("2 of 3 failed: not braked")
	}
	e.pass(time.Second, 2, 3) // datanode 2 is back
	rep := e.tick()
	checkReport(t, rep, []uint64{1}, nil, nil, false, 2, 0)
	if e.r.Braked() {
		t.Errorf("Braked() still true")
	}
}

func TestRunnerCapsMovesPerTick(t *testing.T) {
	// Datanode 1 owns regions 1, 3, 5, 7, 9.
	e := newEnv(t, 3, []uint64{1, 2, 1, 3, 1, 2, 1, 3, 1}, monitorConfig(), 2)
	e.pass(6*time.Second, 2, 3)
	for i, want := range []int{2, 2, 1, 0} {
		rep := e.tick()
		if rep.Moved != want {
			t.Fatalf("tick %d moved %d, want %d (cap 2)", i, rep.Moved, want)
		}
		if (len(rep.DetectToCommit) == 1) != (i == 2) {
			t.Errorf("tick %d: DetectToCommit %v; want one sample exactly when the last region moved", i, rep.DetectToCommit)
		}
	}
	if got := e.c.regionsOf(1); len(got) != 0 {
		t.Errorf("datanode 1 still owns %v", got)
	}
	// Lowest region ids moved first.
	first := e.c.proposals[0].Moves
	if len(first) != 2 || first[0].Region != 1 || first[1].Region != 3 {
		t.Errorf("first tick moved %+v, want regions 1 and 3", first)
	}
}

func TestRunnerCapIsSharedByFailedDatanodes(t *testing.T) {
	// Five datanodes, 1 and 2 fail (2 of 5: not braked), two regions each.
	e := newEnv(t, 5, []uint64{1, 1, 2, 2, 3, 4, 5}, monitorConfig(), 3)
	e.pass(6*time.Second, 3, 4, 5)
	if rep := e.tick(); rep.Moved != 3 {
		t.Fatalf("moved %d in one tick, want the cap of 3", rep.Moved)
	}
	if rep := e.tick(); rep.Moved != 1 {
		t.Fatalf("moved %d in the second tick, want the last 1", rep.Moved)
	}
}

func TestRunnerTargets(t *testing.T) {
	// 1 fails; 2 is suspect (silent 2.5 s); 3 is cordoned; 4 is draining;
	// only 5 may take regions.
	e := newEnv(t, 5, []uint64{1, 1, 2, 3, 4, 5}, monitorConfig(), 100)
	e.c.mustApply(fsm.CmdSetAdminState, fsm.SetDatanodeAdminState{ID: 3, State: fsm.AdminCordoned, Time: e.clk.Now()})
	e.c.mustApply(fsm.CmdSetAdminState, fsm.SetDatanodeAdminState{ID: 4, State: fsm.AdminDraining, Time: e.clk.Now()})
	e.pass(3500*time.Millisecond, 2, 3, 4, 5)
	e.pass(2500*time.Millisecond, 3, 4, 5)
	if st := e.mon.Status(2).Status; st != failover.StatusSuspect {
		t.Fatalf("datanode 2 is %s, want suspect", st)
	}
	checkReport(t, e.tick(), []uint64{1}, nil, nil, false, 2, 0)
	if got := e.c.regionsOf(5); !reflect.DeepEqual(got, []uint64{1, 2, 6}) {
		t.Errorf("datanode 5 owns %v, want [1 2 6]", got)
	}
}

func TestRunnerNoTargets(t *testing.T) {
	e := newEnv(t, 3, sixOnThree, monitorConfig(), 100)
	e.c.mustApply(fsm.CmdSetAdminState, fsm.SetDatanodeAdminState{ID: 2, State: fsm.AdminCordoned, Time: e.clk.Now()})
	e.c.mustApply(fsm.CmdSetAdminState, fsm.SetDatanodeAdminState{ID: 3, State: fsm.AdminDraining, Time: e.clk.Now()})
	e.pass(6*time.Second, 2, 3)
	checkReport(t, e.tick(), []uint64{1}, nil, nil, false, 0, 0)
	if n := e.c.nProposals(); n != 0 {
		t.Errorf("%d proposals with no target", n)
	}
}

func TestRunnerProposeError(t *testing.T) {
	e := newEnv(t, 3, sixOnThree, monitorConfig(), 100)
	e.c.proposeErr = errors.New("leadership lost")
	e.pass(6*time.Second, 2, 3)
	rep := e.tick()
	checkReport(t, rep, []uint64{1}, nil, nil, false, 0, 0)
	if len(e.c.regionsOf(1)) != 2 {
		t.Fatalf("regions moved although the proposal failed")
	}
	e.c.proposeErr = nil
	checkReport(t, e.tick(), []uint64{1}, nil, nil, false, 2, 0)
}

// A move whose expected owner went stale between planning and commit (an
// operator moved the region) is rejected by the FSM; the rest go through.
func TestRunnerStaleOwnerRejected(t *testing.T) {
	e := newEnv(t, 3, sixOnThree, monitorConfig(), 100)
	e.pass(6*time.Second, 2, 3)
	e.c.beforePropose = func() {
		e.c.beforePropose = nil
		e.c.mustApply(fsm.CmdMoveRegions, fsm.MoveRegions{Cause: fsm.CauseManual, Time: e.clk.Now(),
			Moves: []fsm.Move{{Region: 4, From: 1, To: 2}}})
	}
	rep := e.tick()
	checkReport(t, rep, []uint64{1}, nil, nil, false, 1, 1)
	if got := e.c.owners()[4]; got != 2 {
		t.Errorf("region 4 is on %d, want 2 (the operator's move)", got)
	}
}

func TestRunnerRunTicksUntilCancelled(t *testing.T) {
	clk := newClock()
	c := newFakeCluster(t, clk, 1, []uint64{1})
	mon := failover.NewMonitor(monitorConfig(), clk.Now)
	reports := make(chan failover.TickReport, 16)
	ctx, cancel := context.WithCancel(context.Background())
	r := failover.NewRunner(failover.RunnerConfig{Tick: time.Millisecond, MaxRegionsPerTick: 1, Now: clk.Now,
		OnTick: func(rep failover.TickReport) {
			select {
			case reports <- rep:
			default:
			}
		}}, mon, c)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	for i := 0; i < 3; i++ {
		select {
		case <-reports:
		case <-time.After(10 * time.Second):
			t.Fatalf("no tick report %d", i)
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return after cancel")
	}
}
