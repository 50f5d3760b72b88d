package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// balancerSkipped is one entry of the skipped list of GET
// /admin/balancer/plan and /admin/balancer/status.
type balancerSkipped struct {
	Region   uint64 `json:"region"`
	Datanode uint64 `json:"datanode"`
	Reason   string `json:"reason"`
}

type balancerSkips struct {
	Moves        []map[string]any  `json:"moves"`
	Paused       bool              `json:"paused"`
	PausedReason string            `json:"paused_reason"`
	Runs         uint64            `json:"runs"`
	Skipped      []balancerSkipped `json:"skipped"`
	SkippedTotal *int              `json:"skipped_total"`
}

// TestBalancerNewTableNotHeldByCooldown: creating a table starts no
// cooldown. Eight regions created on two datanodes spread over four within
// two balancer intervals of maintenance ending, with the default
// --balancer-cooldown of five minutes; the regions just moved are then
// listed as skipped, cooling down.
func TestBalancerNewTableNotHeldByCooldown(t *testing.T) {
	const interval = time.Second
	c := startCluster(t, 1, dnTimings(func(c *Config) {
		c.BalancerInterval = interval
		c.BalancerCooldown = DefaultBalancerCooldown // the flag's default
	}))
	l := c.leader()
	w := newDNWorld(t, c)
	w.add(1, nil)
	w.add(2, nil)
	c.regWaitAlive(l, 1, 2)
	created := c.regCreateTable(l, "fresh", 8)
	c.regWaitServed(l, w)
	counts := func() []int {
		out := make([]int, 4)
		for i := range out {
			out[i] = len(c.regRoutes(l, fmt.Sprintf("?datanode=%d", i+1)))
		}
		return out
	}
	if got := fmt.Sprint(counts()); got != "[4 4 0 0]" {
		t.Fatalf("table placed %s, want [4 4 0 0]", got)
	}

	c.regMaintenance(l, true)
	w.add(3, nil)
	w.add(4, nil)
	c.regWaitAlive(l, 1, 2, 3, 4)
	// Paused, but the dry run plans the moves: no region is held back.
	var dry balancerSkips
	c.mustJSON(l, http.MethodGet, "/admin/balancer/plan", nil, http.StatusOK, &dry)
	if !dry.Paused || dry.PausedReason != "maintenance" || len(dry.Moves) != 4 || dry.Skipped == nil || len(dry.Skipped) != 0 ||
		dry.SkippedTotal == nil || *dry.SkippedTotal != 0 {
		t.Errorf("dry run during maintenance: %+v, want 4 moves and nothing skipped", dry)
	}

	c.regMaintenance(l, false)
	off := time.Now()
	deadline := off.Add(2*interval + interval/2) // two rounds, and slack
	for got := fmt.Sprint(counts()); got != "[2 2 2 2]"; got = fmt.Sprint(counts()) {
		if time.Now().After(deadline) {
			var p balancerSkips
			c.mustJSON(l, http.MethodGet, "/admin/balancer/plan", nil, http.StatusOK, &p)
			t.Fatalf("%s after maintenance ended: %s, want [2 2 2 2]; plan %+v", time.Since(off).Round(time.Millisecond), got, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.regWaitServed(l, w)

	// The moved regions cool down now, and both views say so.
	owner := map[uint64]uint64{}
	for _, r := range c.regRoutes(l, "") {
		owner[r.ID] = r.Datanode
	}
	moved := 0
	for _, r := range created.Regions {
		if owner[r.ID] != r.Datanode {
			moved++
		}
	}
	if moved != 4 {
		t.Fatalf("%d regions moved, want 4", moved)
	}
	check := func(what string, s balancerSkips) error {
		if s.SkippedTotal == nil || *s.SkippedTotal != moved || len(s.Skipped) != moved {
			return fmt.Errorf("%s: skipped %+v (total %v), want the %d moved regions", what, s.Skipped, s.SkippedTotal, moved)
		}
		for _, sk := range s.Skipped {
			if !strings.HasPrefix(sk.Reason, "cooling until ") || owner[sk.Region] != sk.Datanode || sk.Datanode < 3 {
				return fmt.Errorf("%s: skipped %+v", what, sk)
			}
			until, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(sk.Reason, "cooling until "))
			if err != nil || until.Before(off.Add(DefaultBalancerCooldown-time.Minute)) {
				return fmt.Errorf("%s: skipped %+v: %v", what, sk, err)
			}
		}
		return nil
	}
	var p balancerSkips
	c.mustJSON(l, http.MethodGet, "/admin/balancer/plan", nil, http.StatusOK, &p)
	if err := check("plan", p); err != nil {
		t.Fatal(err)
	}
	var runs uint64
	eventually(t, "status lists the cooling regions", func() error {
		var s balancerSkips
		c.mustJSON(l, http.MethodGet, "/admin/balancer/status", nil, http.StatusOK, &s)
		runs = s.Runs
		return check("status", s)
	})
	if runs == 0 {
		t.Fatal("status: no balancer run")
	}
}
