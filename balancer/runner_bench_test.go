package balancer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/metasrv/metasrv/balancer"
	"github.com/metasrv/metasrv/fsm"
)

// benchCluster is a Cluster over a real fsm.FSM for benchmarks: every
// datanode is alive and has reported its regions, and Propose answers as
// if every move committed without applying it, so that each round of a
// benchmark sees the same state.
type benchCluster struct {
	*fsm.FSM
	index uint64
}

func (c *benchCluster) Status(uint64) string         { return "alive" }
func (c *benchCluster) Reported(uint64, uint64) bool { return true }

func (c *benchCluster) Propose(_ context.Context, cmd fsm.MoveRegions) (fsm.Result, error) {
	return fsm.Result{Applied: true, Moved: cmd.Moves}, nil
}

func (c *benchCluster) apply(tb testing.TB, typ string, payload any) fsm.Result {
	tb.Helper()
	b, err := fsm.Encode(typ, payload)
	if err != nil {
		tb.Fatalf("encode %s: %v", typ, err)
	}
	c.index++
	r := c.FSM.Apply(c.index, b)
	if !r.Applied {
		tb.Fatalf("%s rejected: %s: %s", typ, r.Code, r.Reason)
	}
	return r
}

var (
	bigOnce    sync.Once
	bigCluster *benchCluster
)

// big1M is a cluster of 1 000 datanodes holding 1 000 000 regions, 1 000
// each, built once through Apply as the leader would (tables of 10 000
// regions dealt round-robin).
func big1M(tb testing.TB) *benchCluster {
	const datanodes, regions, perTable = 1000, 1_000_000, 10_000
	bigOnce.Do(func() {
		c := &benchCluster{FSM: fsm.New(fsm.Config{})}
		for d := uint64(1); d <= datanodes; d++ {
			c.apply(tb, fsm.CmdRegisterDatanode, fsm.RegisterDatanode{ID: d,
				Addr: fmt.Sprintf("10.0.%d.%d:4001", d/256, d%256), Time: t0})
		}
		next := 0
		for t := 0; t*perTable < regions; t++ {
			placement := make([]uint64, perTable)
			for i := range placement {
				placement[i] = uint64(next%datanodes + 1)
				next++
			}
			c.apply(tb, fsm.CmdCreateTable, fsm.CreateTable{Name: fmt.Sprintf("table_%04d", t), Placement: placement, Time: t0})
		}
		bigCluster = c
	})
	if bigCluster == nil {
		tb.Fatal("building the 1M-region cluster failed")
	}
	if n := bigCluster.RegionCounts()[datanodes]; n != regions/datanodes {
		tb.Fatalf("datanode %d owns %d regions, want %d", datanodes, n, regions/datanodes)
	}
	return bigCluster
}

func benchRunner(c balancer.Cluster) *balancer.Runner {
	return balancer.NewRunner(balancer.RunnerConfig{Interval: time.Minute, Cooldown: 5 * time.Minute,
		Plan: balancer.Config{Tolerance: 1, MaxMoves: 8, MaxPerNode: 4}, Now: func() time.Time { return t0.Add(time.Hour) }}, c)
}

// BenchmarkDrainTickIdle is one DrainRound at 1 000 000 regions over 1 000
// datanodes with nothing draining: the tick the leader runs every
// DrainInterval (1 s) forever. It reads the datanodes only, so it must
// stay far below a millisecond whatever the number of regions.
//
//	go test -run '^$' -bench DrainTick -benchmem ./balancer
func BenchmarkDrainTickIdle(b *testing.B) {
	c := big1M(b)
	r := benchRunner(c)
	for b.Loop() {
		if rep, ok := r.DrainRound(context.Background()); ok || rep.Planned != 0 {
			b.Fatalf("nothing draining, yet ok=%t %+v", ok, rep)
		}
	}
}

// BenchmarkDrainTickOneDraining is the same cluster with datanode 1
// draining (its 1 000 regions): the region counts of every datanode, the
// routes of the draining one, and a plan of MaxMoves moves (proposed to a
// fake that does not apply them, so every round is the same).
func BenchmarkDrainTickOneDraining(b *testing.B) {
	c := big1M(b)
	c.apply(b, fsm.CmdSetAdminState, fsm.SetDatanodeAdminState{ID: 1, State: fsm.AdminDraining, Time: t0})
	defer c.apply(b, fsm.CmdSetAdminState, fsm.SetDatanodeAdminState{ID: 1, State: fsm.AdminActive, Time: t0})
	r := benchRunner(c)
	for b.Loop() {
		if rep, ok := r.DrainRound(context.Background()); !ok || rep.Planned != 8 || rep.DrainLeft != 1000-8 {
			b.Fatalf("datanode 1 draining: ok=%t %+v", ok, rep)
		}
	}
}

// BenchmarkStatusIdle is GET /admin/balancer/status at 1 000 000 regions
// with nothing draining: datanodes and region counts, no route copied.
func BenchmarkStatusIdle(b *testing.B) {
	c := big1M(b)
	r := benchRunner(c)
	for b.Loop() {
		if st := r.Status(); st.Paused || len(st.Draining) != 0 {
			b.Fatalf("status %+v", st)
		}
	}
}
