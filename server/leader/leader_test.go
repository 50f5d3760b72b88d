package leader

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metasrv/metasrv/balancer"
	"github.com/metasrv/metasrv/failover"
	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/raftnode"
	"github.com/metasrv/metasrv/server/wire"
)

// A raft node that is opened but never started leads no term: the leader
// side answers as a follower's does.

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func newIdle(t *testing.T) (*Leader, *prometheus.Registry) {
	t.Helper()
	rn, err := raftnode.Open(raftnode.Config{NodeID: "n1", RaftAddr: "127.0.0.1:0", AdvertiseRaftAddr: "127.0.0.1:1",
		AdvertiseRPCAddr: "127.0.0.1:2", DataDir: t.TempDir(), HeartbeatTimeout: 300 * time.Millisecond,
		ElectionTimeout: 300 * time.Millisecond, LeaderLeaseTimeout: 300 * time.Millisecond, LeaderWait: time.Second,
		ApplyTimeout: time.Second, SnapshotThreshold: 8192, SnapshotInterval: time.Minute, SnapshotRetain: 1,
		OnFatal: func(err error) { t.Errorf("fatal: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rn.Close(ctx)
	})
	reg := prometheus.NewRegistry()
	l := New(Config{NodeID: "n1", HeartbeatInterval: 200 * time.Millisecond, RegionLease: time.Second,
		LeaseMargin:  100 * time.Millisecond,
		Detector:     failover.DetectorConfig{Threshold: 8, MinStdDeviation: 50 * time.Millisecond, FirstHeartbeatEstimate: 200 * time.Millisecond, MaxSamples: 100},
		FailoverTick: 50 * time.Millisecond, FailoverMaxRegions: 10,
		Balancer: balancer.Config{Tolerance: 1, MaxMoves: 4, MaxPerNode: 2}, Registry: reg,
		Now: func() time.Time { return t0.Add(time.Second) }}, rn)
	// Replicated state as if applied from the log.
	apply := func(i uint64, typ string, v any) {
		b, err := fsm.Encode(typ, v)
		if err != nil {
			t.Fatal(err)
		}
		if res := rn.FSM().Apply(i, b); res.Code != "" {
			t.Fatalf("apply %s: %+v", typ, res)
		}
	}
	apply(10, fsm.CmdRegisterDatanode, fsm.RegisterDatanode{ID: 1, Addr: "127.0.0.1:4001", Time: t0})
	apply(11, fsm.CmdRegisterDatanode, fsm.RegisterDatanode{ID: 2, Addr: "127.0.0.1:4002", Time: t0})
	apply(12, fsm.CmdCreateTable, fsm.CreateTable{Name: "t", Placement: []uint64{1, 1, 2}, Time: t0})
	return l, reg
}

func TestNotLeaderError(t *testing.T) {
	e := &NotLeaderError{LeaderID: "n2", LeaderRPCAddr: "h:1"}
	if !errors.Is(e, raftnode.ErrNotLeader) || errors.Unwrap(e) != raftnode.ErrNotLeader {
		t.Fatalf("%v does not unwrap to ErrNotLeader", e)
	}
	if !strings.Contains(e.Error(), "not the leader") || !strings.Contains(e.Error(), "leader_rpc_addr") {
		t.Fatalf("message %q", e.Error())
	}
	var got *NotLeaderError
	if !errors.As(error(e), &got) || got.LeaderRPCAddr != "h:1" {
		t.Fatalf("errors.As: %+v", got)
	}
}

func TestWithoutTerm(t *testing.T) {
	l, reg := newIdle(t)
	ctx := context.Background()

	_, err := l.Heartbeat(ctx, wire.Heartbeat{ID: 1, Addr: "127.0.0.1:4001", Seq: 1}, false)
	var nl *NotLeaderError
	if !errors.As(err, &nl) || !errors.Is(err, raftnode.ErrNotLeader) {
		t.Fatalf("heartbeat without a term: %v", err)
	}

	dns := l.Datanodes()
	if len(dns) != 2 {
		t.Fatalf("datanodes: %+v", dns)
	}
	for _, d := range dns {
		want := map[uint64]int{1: 2, 2: 1}[d.ID]
		if d.Status != failover.StatusUnknown || d.SecondsSinceHeartbeat != -1 || d.Phi != 0 || d.FailoverDeferred ||
			d.LeaseExpired || d.Regions != want || d.AdminState != fsm.AdminActive {
			t.Fatalf("datanode without a term: %+v", d)
		}
	}
	routes := l.Routes(l.fsm.Regions())
	if len(routes) != 3 {
		t.Fatalf("routes: %+v", routes)
	}
	for _, r := range routes {
		if r.InFlight || r.Table != "t" || r.Datanode == 0 {
			t.Fatalf("route without a term: %+v", r)
		}
	}
	if got := l.Routes(nil); got == nil || len(got) != 0 {
		t.Fatalf("Routes(nil) = %#v, want empty", got)
	}

	for name, f := range map[string]func() error{
		"CreateTable":    func() error { _, err := l.CreateTable(ctx, "u", 1, fsm.Actor{By: "test"}); return err },
		"Migrate":        func() error { _, err := l.Migrate(ctx, 1, 2, 0, fsm.Actor{By: "test"}); return err },
		"RemoveDatanode": func() error { return l.RemoveDatanode(ctx, 2, fsm.Actor{By: "test"}) },
		"BalancerPlan":   func() error { _, _, err := l.BalancerPlan(); return err },
		"BalancerStatus": func() error { _, err := l.BalancerStatus(); return err },
		"NodeLeases":     func() error { _, err := l.NodeLeases(); return err },
		"HeartbeatStats": func() error { _, err := l.HeartbeatStats(""); return err },
	} {
		if err := f(); !errors.Is(err, raftnode.ErrNotLeader) {
			t.Errorf("%s without a term: %v, want ErrNotLeader", name, err)
		}
	}

	if got := gauge(t, reg, "metasrv_datanodes", "unknown"); got != 2 {
		t.Fatalf("metasrv_datanodes{status=unknown} = %v, want 2", got)
	}
}

// TestTermViews: a term set up (but not leading raft) shows its detector
// view; its workers clear the term when their context ends.
func TestTermViews(t *testing.T) {
	l, reg := newIdle(t)
	ctx, cancel := context.WithCancel(context.Background())
	workers := l.TermStart(ctx)
	if len(workers) != 3 {
		t.Fatalf("%d workers", len(workers))
	}
	for _, d := range l.Datanodes() {
		if d.Status == failover.StatusUnknown || d.LeaseExpired {
			t.Fatalf("seeded datanode: %+v", d)
		}
	}
	for _, r := range l.Routes(l.fsm.Regions()) {
		if !r.InFlight {
			t.Fatalf("no datanode reported yet, yet not in flight: %+v", r)
		}
	}
	plan, paused, err := l.BalancerPlan()
	if err != nil || plan.Moves == nil {
		t.Fatalf("plan %+v paused %q: %v", plan, paused, err)
	}
	if _, err := l.BalancerStatus(); err != nil {
		t.Fatal(err)
	}
	if nls, err := l.NodeLeases(); err != nil || nls == nil || len(nls) != 0 {
		t.Fatalf("node leases before any heartbeat: %#v %v", nls, err)
	}
	if hbs, err := l.HeartbeatStats("127.0.0.1:4001"); err != nil || hbs == nil || len(hbs) != 0 {
		t.Fatalf("heartbeats before any: %#v %v", hbs, err)
	}
	// A datanode that may still serve under its seeded lease stays.
	if err := l.RemoveDatanode(context.Background(), 1, fsm.Actor{By: "test"}); !errors.Is(err, raftnode.ErrConflict) {
		t.Fatalf("remove a datanode under lease: %v", err)
	}
	if _, err := l.Migrate(context.Background(), 999, 2, 0, fsm.Actor{By: "test"}); !errors.Is(err, raftnode.ErrNotFound) {
		t.Fatalf("migrate an unknown region: %v", err)
	}
	if _, err := l.Migrate(context.Background(), l.fsm.Regions()[0].ID, 99, 0, fsm.Actor{By: "test"}); !errors.Is(err, raftnode.ErrNotFound) {
		t.Fatalf("migrate to an unknown datanode: %v", err)
	}
	if _, err := l.CreateTable(context.Background(), "t", 1, fsm.Actor{By: "test"}); !errors.Is(err, raftnode.ErrConflict) {
		t.Fatalf("create an existing table: %v", err)
	}
	if got := gauge(t, reg, "metasrv_datanodes", "unknown"); got != 0 {
		t.Fatalf("metasrv_datanodes{status=unknown} = %v during a term", got)
	}

	cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, w := range workers {
			w(ctx)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("workers did not return after cancel")
	}
	if l.term.Load() != nil {
		t.Fatal("term still set after its workers returned")
	}
	if _, err := l.NodeLeases(); !errors.Is(err, raftnode.ErrNotLeader) {
		t.Fatalf("after the term: %v", err)
	}
}

func TestRound2(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{{0, 0}, {1.239, 1.23}, {2e9, 1e9}, {1e9, 1e9}} {
		if got := round2(tc.in); got != tc.want {
			t.Errorf("round2(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	now := t0.Add(1500 * time.Millisecond)
	if got := sinceSeconds(now, time.Time{}); got != -1 {
		t.Errorf("sinceSeconds(zero) = %v", got)
	}
	if got := sinceSeconds(now, t0); got != 1.5 {
		t.Errorf("sinceSeconds = %v", got)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name, status string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "status" && lp.GetValue() == status {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{status=%q}", name, status)
	return 0
}
