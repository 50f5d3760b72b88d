package failover_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/metasrv/metasrv/failover"
)

// monitorConfig: 1 s heartbeats, 3 s acceptable pause, 1 s first estimate.
// A datanode seeded or heard from once (σ = 250 ms) is failed after
// 1 + 3 + 5.22 × 0.25 ≈ 5.31 s; suspect after 2 s.
func monitorConfig() failover.MonitorConfig {
	return failover.MonitorConfig{
		Detector: failover.DetectorConfig{Threshold: 8, MinStdDeviation: 100 * time.Millisecond,
			AcceptableHeartbeatPause: 3 * time.Second, FirstHeartbeatEstimate: time.Second, MaxSamples: 1000},
		HeartbeatInterval: time.Second,
		RegionLease:       4 * time.Second,
		LeaseMargin:       500 * time.Millisecond,
		HistorySize:       3,
	}
}

func TestMonitorStatuses(t *testing.T) {
	cases := []struct {
		after time.Duration // since the only heartbeat
		want  string
	}{
		{0, failover.StatusAlive},
		{time.Second, failover.StatusAlive},
		{2 * time.Second, failover.StatusAlive}, // exactly two intervals
		{2*time.Second + time.Millisecond, failover.StatusSuspect},
		{5200 * time.Millisecond, failover.StatusSuspect},
		{5400 * time.Millisecond, failover.StatusFailed},
		{time.Hour, failover.StatusFailed},
	}
	for _, tc := range cases {
		t.Run(tc.after.String(), func(t *testing.T) {
			clk := newClock()
			m := failover.NewMonitor(monitorConfig(), clk.Now)
			if st := m.Status(1); st.Status != failover.StatusUnknown {
				t.Fatalf("untracked datanode: status %q, want unknown", st.Status)
			}
			m.Observe(failover.Heartbeat{ID: 1, Addr: "127.0.0.1:4001", Regions: []uint64{1}})
			clk.Advance(tc.after)
			st := m.Status(1)
			if st.Status != tc.want {
				t.Errorf("%v after the heartbeat: status %q (phi %.2f), want %q", tc.after, st.Status, st.Phi, tc.want)
			}
			if (st.Phi > 8) != (tc.want == failover.StatusFailed) {
				t.Errorf("phi %.2f disagrees with status %q", st.Phi, st.Status)
			}
			if !st.Heartbeated || !st.LastHeartbeat.Equal(t0) {
				t.Errorf("Heartbeated=%t LastHeartbeat=%v, want true and %v", st.Heartbeated, st.LastHeartbeat, t0)
			}
		})
	}
}

func TestMonitorFailedComesBackAlive(t *testing.T) {
	clk := newClock()
	m := failover.NewMonitor(monitorConfig(), clk.Now)
	for i := 0; i < 20; i++ {
		m.Observe(failover.Heartbeat{ID: 1, Addr: "a:1"})
		clk.Advance(time.Second)
	}
	clk.Advance(time.Minute)
	if st := m.Status(1); st.Status != failover.StatusFailed {
		t.Fatalf("after a minute of silence: %q, want failed", st.Status)
	}
	m.Observe(failover.Heartbeat{ID: 1, Addr: "a:1"})
	if st := m.Status(1); st.Status != failover.StatusAlive {
		t.Fatalf("right after a heartbeat: %q (phi %.2f), want alive", st.Status, st.Phi)
	}
	// Regular heartbeats again: the minute-long gap did not enter the
	// history, so the next silence is detected as fast as before.
	for i := 0; i < 5; i++ {
		clk.Advance(time.Second)
		m.Observe(failover.Heartbeat{ID: 1, Addr: "a:1"})
	}
	clk.Advance(5 * time.Second)
	if st := m.Status(1); st.Status != failover.StatusFailed {
		t.Errorf("5 s of silence after recovering: %q (phi %.2f), want failed", st.Status, st.Phi)
	}
}

func TestMonitorLeaseExpiry(t *testing.T) {
	// The lease runs 4 s from the heartbeat's arrival; it counts as expired
	// only once the 500 ms margin has passed too.
	cases := []struct {
		after   time.Duration
		expired bool
	}{
		{0, false},
		{4 * time.Second, false},
		{4500 * time.Millisecond, false},
		{4500*time.Millisecond + time.Nanosecond, true},
		{time.Hour, true},
	}
	for _, tc := range cases {
		t.Run(tc.after.String(), func(t *testing.T) {
			clk := newClock()
			m := failover.NewMonitor(monitorConfig(), clk.Now)
			clk.Advance(time.Second)
			until := m.Observe(failover.Heartbeat{ID: 3, Addr: "a:1"})
			if want := t0.Add(5 * time.Second); !until.Equal(want) {
				t.Fatalf("Observe granted a lease until %v, want %v", until, want)
			}
			clk.Advance(tc.after)
			st := m.Status(3)
			if !st.LeaseUntil.Equal(until) || st.LeaseExpired != tc.expired {
				t.Errorf("%v later: LeaseUntil=%v LeaseExpired=%t, want %v %t", tc.after, st.LeaseUntil, st.LeaseExpired, until, tc.expired)
			}
		})
	}
}

func TestMonitorLeaseRenewedByEveryHeartbeat(t *testing.T) {
	clk := newClock()
	m := failover.NewMonitor(monitorConfig(), clk.Now)
	m.Observe(failover.Heartbeat{ID: 1, Addr: "a:1"})
	clk.Advance(3 * time.Second)
	m.Observe(failover.Heartbeat{ID: 1, Addr: "a:1"})
	clk.Advance(4 * time.Second) // 7 s after the first grant, 4 s after the second
	if st := m.Status(1); st.LeaseExpired {
		t.Errorf("lease expired %v after a renewal that grants 4 s + 500 ms margin", 4*time.Second)
	}
}

// A new leader seeds every known datanode as if it had just heartbeated
// and renewed its lease: alive, a full lease, but no real heartbeat yet.
func TestMonitorSeed(t *testing.T) {
	clk := newClock()
	m := failover.NewMonitor(monitorConfig(), clk.Now)
	clk.Advance(time.Second)
	m.Observe(failover.Heartbeat{ID: 2, Addr: "b:1", Regions: []uint64{5}})
	clk.Advance(time.Second)
	m.Seed([]uint64{1, 2, 3})

	st := m.Status(1)
	if st.Status != failover.StatusAlive || st.Heartbeated || !st.LastHeartbeat.Equal(clk.Now()) ||
		!st.LeaseUntil.Equal(clk.Now().Add(4*time.Second)) || st.LeaseExpired {
		t.Errorf("seeded datanode: %+v, want alive, not heartbeated, seeded now with a full lease", st)
	}
	if m.Reported(1, 5) {
		t.Errorf("a seeded datanode reports no regions yet")
	}
	// Seeding does not reset a datanode already heard from.
	st2 := m.Status(2)
	if !st2.Heartbeated || !st2.LastHeartbeat.Equal(t0.Add(time.Second)) || !m.Reported(2, 5) {
		t.Errorf("datanode 2 was reset by Seed: %+v serving(5)=%t", st2, m.Reported(2, 5))
	}
	// A seeded datanode that never heartbeats fails after the window and
	// its assumed lease runs out.
	clk.Advance(5400 * time.Millisecond)
	if st := m.Status(3); st.Status != failover.StatusFailed || !st.LeaseExpired {
		t.Errorf("seeded and silent for 5.4 s: %+v, want failed with an expired lease", st)
	}
	if got := m.History(); len(got) != 1 || got[0][0].ID != 2 {
		t.Errorf("History() = %+v: seeded datanodes have no heartbeats to show", got)
	}
}

func TestMonitorServingAndHistory(t *testing.T) {
	clk := newClock()
	m := failover.NewMonitor(monitorConfig(), clk.Now)
	for i, regions := range [][]uint64{{1, 2}, {2, 3}, {3}, {3, 4}} {
		clk.Advance(time.Second)
		m.Observe(failover.Heartbeat{ID: 9, Addr: "b:1", StartTimeMs: int64(i), Regions: regions})
		clk.Advance(time.Millisecond)
		m.Observe(failover.Heartbeat{ID: 4, Addr: "a:1", Regions: []uint64{10}})
	}
	// Reported reflects only the last heartbeat.
	for r, want := range map[uint64]bool{1: false, 2: false, 3: true, 4: true, 10: false} {
		if got := m.Reported(9, r); got != want {
			t.Errorf("Reported(9, %d) = %t, want %t", r, got, want)
		}
	}
	if m.Reported(77, 3) {
		t.Errorf("Reported on an unknown datanode")
	}
	h := m.History()
	if len(h) != 2 || h[0][0].ID != 4 || h[1][0].ID != 9 {
		t.Fatalf("History() = %+v: want datanodes 4 then 9", h)
	}
	if len(h[1]) != 3 {
		t.Fatalf("history of 9 has %d heartbeats, want the last 3", len(h[1]))
	}
	var starts []int64
	for _, hb := range h[1] {
		starts = append(starts, hb.StartTimeMs)
		if hb.Received.IsZero() {
			t.Errorf("heartbeat without its arrival time: %+v", hb)
		}
	}
	if !reflect.DeepEqual(starts, []int64{1, 2, 3}) {
		t.Errorf("history of 9 = %v, want the last 3 oldest first [1 2 3]", starts)
	}
	m.Forget(9)
	if st := m.Status(9); st.Status != failover.StatusUnknown {
		t.Errorf("after Forget: status %q, want unknown", st.Status)
	}
	if len(m.History()) != 1 {
		t.Errorf("after Forget the history still lists the datanode")
	}
}

// ServedElsewhere is the rule that keeps a region from being served twice:
// its owner may open it only when no other datanode may still serve it.
func TestMonitorServedElsewhere(t *testing.T) {
	const region, owner, other = 7, 1, 2
	hb := func(id uint64, regions ...uint64) failover.Heartbeat {
		return failover.Heartbeat{ID: id, Addr: "h:1", Regions: regions}
	}
	cases := []struct {
		name  string
		setup func(m *failover.Monitor, clk *fakeClock)
		want  bool
	}{
		{"no other datanode", func(m *failover.Monitor, _ *fakeClock) { m.Observe(hb(owner)) }, false},
		{"owner itself reports it", func(m *failover.Monitor, _ *fakeClock) { m.Observe(hb(owner, region)) }, false},
		{"another reports it under a valid lease", func(m *failover.Monitor, _ *fakeClock) {
			m.Observe(hb(other, region))
		}, true},
		{"another reports it, lease just at its margin", func(m *failover.Monitor, clk *fakeClock) {
			m.Observe(hb(other, region))
			clk.Advance(4500 * time.Millisecond)
		}, true},
		{"another reported it, lease and margin run out", func(m *failover.Monitor, clk *fakeClock) {
			m.Observe(hb(other, region))
			clk.Advance(4500*time.Millisecond + time.Nanosecond)
		}, false},
		{"another stopped reporting it", func(m *failover.Monitor, clk *fakeClock) {
			m.Observe(hb(other, region))
			clk.Advance(time.Second)
			m.Observe(hb(other, 8))
		}, false},
		{"another seeded by a new leader, not heard from yet", func(m *failover.Monitor, _ *fakeClock) {
			m.Seed([]uint64{owner, other})
		}, true},
		{"another seeded, its assumed lease ran out", func(m *failover.Monitor, clk *fakeClock) {
			m.Seed([]uint64{owner, other})
			clk.Advance(4501 * time.Millisecond)
		}, false},
		{"another seeded, then heartbeats without it", func(m *failover.Monitor, clk *fakeClock) {
			m.Seed([]uint64{owner, other})
			clk.Advance(100 * time.Millisecond)
			m.Observe(hb(other, 3))
		}, false},
		{"another was told to open it and has not reported since", func(m *failover.Monitor, _ *fakeClock) {
			m.Grant(hb(other), []uint64{region})
		}, true},
		{"another was told to open it, next heartbeat shows it did not", func(m *failover.Monitor, clk *fakeClock) {
			m.Grant(hb(other), []uint64{region})
			clk.Advance(time.Second)
			m.Observe(hb(other))
		}, false},
		{"another forgotten (removed)", func(m *failover.Monitor, _ *fakeClock) {
			m.Observe(hb(other, region))
			m.Forget(other)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			m := failover.NewMonitor(monitorConfig(), clk.Now)
			tc.setup(m, clk)
			if got := m.ServedElsewhere(region, owner); got != tc.want {
				t.Errorf("ServedElsewhere(%d, owner %d) = %t, want %t", region, owner, got, tc.want)
			}
		})
	}
}

// Grant checks and grants in one step: of two datanodes that both believe
// they own a region (a stale route and a new one), only the first asking is
// told to open it, and the second only once the first no longer may serve
// it.
func TestMonitorGrant(t *testing.T) {
	clk := newClock()
	m := failover.NewMonitor(monitorConfig(), clk.Now)
	hb := func(id, seq uint64, regions ...uint64) failover.Heartbeat {
		return failover.Heartbeat{ID: id, Addr: "h:1", StartTimeMs: 1, Seq: seq, Regions: regions}
	}
	if got, _ := m.Grant(hb(1, 1), []uint64{7, 8}); !reflect.DeepEqual(got, []uint64{7, 8}) {
		t.Fatalf("first grant = %v, want [7 8]", got)
	}
	if got, _ := m.Grant(hb(2, 1), []uint64{7}); got != nil {
		t.Fatalf("region 7 granted to datanode 2 while datanode 1 was told to open it: %v", got)
	}
	if got, _ := m.Grant(hb(1, 2, 7, 8), []uint64{7, 8}); got != nil {
		t.Errorf("regions already open are granted again: %v", got)
	}
	if got, _ := m.Grant(hb(1, 1), []uint64{9}); got != nil {
		t.Errorf("a late, older heartbeat got a grant: %v", got)
	}
	// Datanode 1 closes 7 (it reports only 8): now 2 may open it.
	clk.Advance(time.Second)
	m.Observe(hb(1, 3, 8))
	if got, _ := m.Grant(hb(2, 2), []uint64{7}); !reflect.DeepEqual(got, []uint64{7}) {
		t.Errorf("after datanode 1 closed region 7, grant to 2 = %v, want [7]", got)
	}
	if !m.StillServing(1) {
		t.Errorf("datanode 1 reports region 8 under a valid lease: StillServing = false")
	}
	clk.Advance(time.Second)
	m.Observe(hb(1, 4))
	if m.StillServing(1) {
		t.Errorf("datanode 1 reports nothing: StillServing = true")
	}
}

// One bogus heartbeat cannot make every later real one look stale.
func TestMonitorCheckRefusesImplausibleHeartbeats(t *testing.T) {
	clk := newClock()
	nowMs := clk.Now().UnixMilli()
	for _, tc := range []struct {
		name string
		hb   failover.Heartbeat
		ok   bool
	}{
		{"next seq", failover.Heartbeat{ID: 1, StartTimeMs: nowMs, Seq: 6, IncarnationKey: "k"}, true},
		{"next seq without the incarnation's key", failover.Heartbeat{ID: 1, StartTimeMs: nowMs, Seq: 6}, false},
		{"next seq with another key", failover.Heartbeat{ID: 1, StartTimeMs: nowMs, Seq: 6, IncarnationKey: "x"}, false},
		{"seq 10 000 ahead", failover.Heartbeat{ID: 1, StartTimeMs: nowMs, Seq: 5 + failover.MaxSeqJump, IncarnationKey: "k"}, true},
		{"seq more than 10 000 ahead", failover.Heartbeat{ID: 1, StartTimeMs: nowMs, Seq: 6 + failover.MaxSeqJump, IncarnationKey: "k"}, false},
		{"seq 2^64-1", failover.Heartbeat{ID: 1, StartTimeMs: nowMs, Seq: 1<<64 - 1, IncarnationKey: "k"}, false},
		{"older seq (stale, not implausible)", failover.Heartbeat{ID: 1, StartTimeMs: nowMs, Seq: 2, IncarnationKey: "k"}, true},
		{"new incarnation with its own key", failover.Heartbeat{ID: 1, StartTimeMs: nowMs + 1000, Seq: 1, IncarnationKey: "k2"}, true},
		{"new incarnation at seq 10 000", failover.Heartbeat{ID: 1, StartTimeMs: nowMs + 1000, Seq: failover.MaxSeqJump}, true},
		{"new incarnation past seq 10 000", failover.Heartbeat{ID: 1, StartTimeMs: nowMs + 1000, Seq: failover.MaxSeqJump + 1}, false},
		{"new incarnation", failover.Heartbeat{ID: 1, StartTimeMs: nowMs + 1000, Seq: 1}, true},
		{"older incarnation", failover.Heartbeat{ID: 1, StartTimeMs: nowMs - 1, Seq: 100}, false},
		{"incarnation 60 s ahead", failover.Heartbeat{ID: 1, StartTimeMs: nowMs + 60_000, Seq: 1}, true},
		{"incarnation more than 60 s ahead", failover.Heartbeat{ID: 1, StartTimeMs: nowMs + 60_001, Seq: 1}, false},
		{"unknown datanode from the future", failover.Heartbeat{ID: 2, StartTimeMs: nowMs + 120_000, Seq: 1}, false},
		{"unknown datanode", failover.Heartbeat{ID: 2, StartTimeMs: 1, Seq: 1 << 40}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := failover.NewMonitor(monitorConfig(), clk.Now)
			m.Observe(failover.Heartbeat{ID: 1, StartTimeMs: nowMs, Seq: 5, IncarnationKey: "k"})
			err := m.Check(tc.hb)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, failover.ErrImplausible)) {
				t.Fatalf("Check = %v, want ok %t", err, tc.ok)
			}
			_, granted := m.Grant(tc.hb, nil)
			if !tc.ok && granted {
				t.Fatal("an implausible heartbeat was granted")
			}
			for _, h := range m.History()[0] {
				if h.IncarnationKey != "" {
					t.Fatalf("history shows an incarnation key: %+v", h)
				}
			}
		})
	}
}
