package main

// End-to-end failover scenarios with real processes: 3 metasrv nodes and
// 3 datanodes, a table of 6 regions; the core scenarios are marked (a) to
// (f). With 3 datanodes only one may be down at a time (the brake stops
// automatic failover while more than half look failed), so every scenario
// gets a fresh cluster, or restarts a datanode before the next kill.

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
	"github.com/metasrv/metasrv/server/wire"
)

// failoverCommit waits until datanode dn owns none of regions, checks that
// every one of them moved with cause failover onto another datanode, and
// returns the time of the last move (the leader's proposal time, recorded
// in the event).
func (c *ecluster) failoverCommit(dn uint64, regions []uint64, since uint64) time.Time {
	c.T.Helper()
	c.Eventually(fmt.Sprintf("dn%d's regions %v moved", dn, regions), func() error {
		rs, err := c.routes()
		if err != nil {
			return err
		}
		if left := ownedBy(rs, dn); len(left) > 0 {
			return fmt.Errorf("dn%d still owns %v", dn, left)
		}
		return nil
	})
	evs := c.moves(since, dn)
	var last time.Time
	moved := map[string]bool{}
	for _, e := range evs {
		if e.Fields["cause"] != "failover" || e.Fields["to"] == e.Fields["from"] || e.Fields["phi"] == "" {
			c.T.Errorf("move event %+v: want a failover away from dn%d with the detector's phi", e, dn)
		}
		moved[e.Fields["region"]] = true
		if e.Time.After(last) {
			last = e.Time
		}
	}
	for _, r := range regions {
		if !moved[fmt.Sprint(r)] {
			c.T.Errorf("no failover event for region %d of dn%d (events %+v)", r, dn, evs)
		}
	}
	return last
}

// (a) Maintenance off: kill -9 a datanode and its regions are on the live
// ones within one detection window (here the lease, which outlasts it)
// plus a few ticks, and the datanodes' own /regions agree with the routes.
// Each datanode is killed in turn (the previous one restarted first), which
// also measures detection-to-commit.
func TestE2EFailoverWhenMaintenanceOff(t *testing.T) {
	c := startCluster(t, 3, 6)
	var samples []time.Duration
	for _, d := range c.Datanodes() {
		rs := c.mustRoutes()
		owned := ownedBy(rs, d.ID)
		if len(owned) == 0 {
			t.Fatalf("dn%d owns no region before its kill; routes %v", d.ID, owners(rs))
		}
		since := c.LastEventIndex()
		d.Kill()
		killed := time.Now()
		lastHB, _ := c.lastHeartbeat(d)

		commit := c.failoverCommit(d.ID, owned, since)
		took := commit.Sub(killed)
		samples = append(samples, took)
		t.Logf("dn%d (regions %v): kill → failover committed in %v; last heartbeat %v before the kill",
			d.ID, owned, took.Round(time.Millisecond), killed.Sub(lastHB).Round(time.Millisecond))
		if took > failoverBound {
			t.Errorf("dn%d: failover committed %v after the kill, want within %v", d.ID, took, failoverBound)
		}
		// Never before the dead datanode's last lease ran out.
		if leaseEnd := lastHB.Add(regionLease); commit.Before(leaseEnd) {
			t.Errorf("dn%d: failover committed at %v, %v before its last lease (granted %v) ran out",
				d.ID, commit.Format(time.RFC3339Nano), leaseEnd.Sub(commit), lastHB.Format(time.RFC3339Nano))
		}
		c.waitServing(c.others(d.ID)...)

		// Back for the next round (it owns nothing now).
		if err := d.Start(); err != nil {
			t.Fatalf("restart dn%d: %v", d.ID, err)
		}
		c.waitStatus("alive", d.ID)
		c.waitServing(c.Datanodes()...)
	}
	t.Logf("detection-to-commit (kill -9 → failover committed) over %d kills: p50 %v, max %v, samples %v",
		len(samples), percentile(samples, 50).Round(time.Millisecond), percentile(samples, 100).Round(time.Millisecond), samples)
	l := c.leader()
	sum, n := c.mustMetric(l, "metasrv_failover_detect_to_commit_seconds_sum"), c.mustMetric(l, "metasrv_failover_detect_to_commit_seconds_count")
	if n > 0 {
		t.Logf("leader's own detection (phi > threshold) → commit: mean %.3fs over %v failovers", sum/n, n)
	}
}

// (b) Maintenance on: a killed datanode is shown failed with its failover
// deferred, the failover loop keeps ticking, and no route changes; a new
// leader (the old one killed too) moves nothing either; disabling
// maintenance lets the failover happen.
func TestE2EMaintenanceDefersFailoverAcrossLeaderKill(t *testing.T) {
	c := startCluster(t, 3, 6)
	if r := c.PostJSON("/admin/maintenance/enable", ""); r.Code != http.StatusOK {
		t.Fatalf("enable maintenance: %s", r)
	}
	before := c.mustRoutes()
	since := c.LastEventIndex()
	dead := c.Datanode(1)
	owned := ownedBy(before, dead.ID)
	dead.Kill()

	noMoves := func() error {
		if err := c.unchanged(before)(); err != nil {
			return err
		}
		evs, err := c.Events(since)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.Type == "region_moved" || e.Type == "move_rejected" {
				return fmt.Errorf("during maintenance: event %+v", e)
			}
		}
		return nil
	}
	for round, why := range []string{"first leader", "after the leader was killed"} {
		if round == 1 {
			old := c.leader()
			old.Kill()
			t.Logf("killed metasrv leader %s", old.ID)
		}
		leader := c.leader()
		v := c.waitFailedAnd(dead.ID, true, false)
		t.Logf("%s (%s): dn%d %s, phi %v, deferred", why, leader.ID, dead.ID, v.Status, v.Phi)
		c.waitTicks(leader, 5, noMoves)
		if g := c.mustMetric(leader, "metasrv_failover_deferred_datanodes"); g != 1 {
			t.Errorf("%s: metasrv_failover_deferred_datanodes = %v, want 1", leader.ID, g)
		}
		c.waitOwnServed(c.others(dead.ID)...) // the live ones keep their own regions
	}

	// A real maintenance window outlasts the detection window many times
	// over: the deferred failover must still run however long it was dead.
	c.Eventually("a long outage", func() error {
		vs, err := c.datanodeViews()
		if err != nil {
			return err
		}
		if v := vs[dead.ID]; v.SecondsSinceHeartbeat < 6 {
			return fmt.Errorf("dn%d silent for %vs on the leader", dead.ID, v.SecondsSinceHeartbeat)
		}
		return noMoves()
	})
	if r := c.PostJSON("/admin/maintenance/disable", ""); r.Code != http.StatusOK {
		t.Fatalf("disable maintenance: %s", r)
	}
	disabled := time.Now()
	commit := c.failoverCommit(dead.ID, owned, since)
	took := commit.Sub(disabled)
	t.Logf("maintenance disabled → deferred failover committed in %v", took.Round(time.Millisecond))
	if took > 5*failTick+3*time.Second {
		t.Errorf("deferred failover took %v after maintenance was disabled, want a few ticks", took)
	}
	c.waitServing(c.others(dead.ID)...)
}

// (c) A killed datanode (with its --data-dir) comes back after its regions
// moved: it closes the regions it lost and never serves them again.
func TestE2EReturningDatanodeClosesLostRegions(t *testing.T) {
	c := startCluster(t, 3, 6)
	d := c.Datanode(1)
	owned := ownedBy(c.mustRoutes(), d.ID)
	if got := persisted(t, d); !slices.Equal(got, owned) {
		t.Fatalf("dn1 keeps %v in its data dir, want its regions %v", got, owned)
	}
	since := c.LastEventIndex()
	d.Kill()
	c.failoverCommit(d.ID, owned, since)
	c.waitServing(c.others(d.ID)...)

	restarted := time.Now()
	if err := d.Start(); err != nil {
		t.Fatalf("restart dn1: %v", err)
	}
	// Until the leader has heard from the new process, and after it, dn1
	// must never serve a region it lost.
	c.Eventually("dn1 back and closed its lost regions", func() error {
		got, err := c.served(d)
		if err != nil {
			return err
		}
		if lost := intersect(owned, got); len(lost) > 0 {
			t.Fatalf("restarted dn1 serves %v, which moved away while it was down", lost)
		}
		if _, epoch := c.lastHeartbeat(d); epoch < restarted.UnixMilli() {
			return fmt.Errorf("no heartbeat from the new dn1 process yet")
		}
		if kept := intersect(owned, persisted(t, d)); len(kept) > 0 {
			return fmt.Errorf("dn1 still keeps lost regions %v in its data dir", kept)
		}
		return nil
	})
	c.waitStatus("alive", d.ID)
	c.waitServing(c.Datanodes()...)

	// It is a full member again: a region migrated to it opens there.
	r := owned[0]
	if rep := c.PostJSON(fmt.Sprintf("/admin/regions/%d/migrate?to=%d", r, d.ID), ""); rep.Code != http.StatusOK {
		t.Fatalf("migrate region %d back to dn1: %s", r, rep)
	}
	c.waitServing(c.Datanodes()...)
}

// watchHandover polls the new owner, then the old one, until the new owner
// serves region r and the old one does not; it fails the test if both ever
// serve it (the old owner served r since long before, and never reopens
// it, so "new serves, then old still serves" means both at once).
func (c *ecluster) watchHandover(r uint64, from, to *localcluster.Datanode) {
	c.T.Helper()
	c.Eventually(fmt.Sprintf("region %d handed over from dn%d to dn%d", r, from.ID, to.ID), func() error {
		nb, err := c.served(to)
		if err != nil {
			return err
		}
		ob, err := c.served(from)
		if err != nil {
			return err
		}
		newServes, oldServes := slices.Contains(nb, r), slices.Contains(ob, r)
		if newServes && oldServes {
			c.T.Fatalf("region %d served by dn%d and dn%d at once", r, to.ID, from.ID)
		}
		if !newServes || oldServes {
			return fmt.Errorf("dn%d serves %v, dn%d serves %v", to.ID, nb, from.ID, ob)
		}
		return nil
	})
}

// (d) During maintenance: a datanode down for an upgrade comes back and
// serves its own regions again without any move; manual migration works
// (the old owner stops serving, the new one starts), with its 404/409
// rules; no automatic move happens meanwhile.
func TestE2EManualMigrationDuringMaintenance(t *testing.T) {
	c := startCluster(t, 3, 6)
	if r := c.PostJSON("/admin/maintenance/enable", ""); r.Code != http.StatusOK {
		t.Fatalf("enable maintenance: %s", r)
	}
	before := c.mustRoutes()
	since := c.LastEventIndex()

	// The upgrade: dn3 goes down and comes back with its data dir.
	dn1, dn2, dn3 := c.Datanode(1), c.Datanode(2), c.Datanode(3)
	dn3.Kill()
	c.waitFailedAnd(dn3.ID, true, false)
	r1 := ownedBy(before, dn1.ID)[0]
	rep := c.PostJSON(fmt.Sprintf("/admin/regions/%d/migrate?to=%d", r1, dn3.ID), "")
	if rep.Code != http.StatusConflict || !strings.Contains(string(rep.Body), `"error"`) {
		t.Errorf("migrate to a failed datanode: %s, want 409 with a JSON error", rep)
	}
	if err := dn3.Start(); err != nil {
		t.Fatalf("restart dn3: %v", err)
	}
	c.waitStatus("alive", dn3.ID)
	c.waitServing(c.Datanodes()...)
	if err := c.unchanged(before)(); err != nil {
		t.Fatalf("after the upgrade: %v", err)
	}
	if evs := c.moves(since, 0); len(evs) != 0 {
		t.Fatalf("moves during maintenance: %+v", evs)
	}

	// Manual migration of r1 from dn1 to dn2.
	var want localcluster.Route
	for _, r := range before {
		if r.ID == r1 {
			want = r
		}
	}
	rep = c.PostJSON(fmt.Sprintf("/admin/regions/%d/migrate?to=%d", r1, dn2.ID), "")
	var got localcluster.Route
	if rep.Code != http.StatusOK || jsonInto(rep.Body, &got) != nil || got.ID != r1 || got.Datanode != dn2.ID || got.Version != want.Version+1 {
		t.Fatalf("migrate %d to dn2: %s, want 200 with the route on dn2 at version %d", r1, rep, want.Version+1)
	}
	c.watchHandover(r1, dn1, dn2)
	c.waitServing(c.Datanodes()...)
	evs := c.moves(since, 0)
	if len(evs) != 1 || evs[0].Fields["cause"] != "manual" || evs[0].Fields["region"] != fmt.Sprint(r1) ||
		evs[0].Fields["from"] != "1" || evs[0].Fields["to"] != "2" {
		t.Errorf("move events %+v, want one manual move of %d from 1 to 2", evs, r1)
	}

	// Already there: 200, unchanged. A stale from: 409, nothing applied.
	rep = c.PostJSON(fmt.Sprintf("/admin/regions/%d/migrate?to=%d", r1, dn2.ID), "")
	if rep.Code != http.StatusOK || jsonInto(rep.Body, &got) != nil || got.Datanode != dn2.ID || got.Version != want.Version+1 {
		t.Errorf("migrate to its owner: %s, want 200 unchanged at version %d", rep, want.Version+1)
	}
	after := c.mustRoutes()
	rep = c.PostJSON(fmt.Sprintf("/admin/regions/%d/migrate?to=%d&from=%d", r1, dn3.ID, dn1.ID), "")
	if rep.Code != http.StatusConflict {
		t.Errorf("migrate with a stale from: %s, want 409", rep)
	}
	if err := c.unchanged(after)(); err != nil {
		t.Errorf("after a refused migration: %v", err)
	}
	var m wire.Enabled
	if err := c.GetJSON("/admin/maintenance", &m); err != nil || !m.Enabled {
		t.Errorf("maintenance: %+v %v, want still enabled", m, err)
	}
}

// A manual migration immediately followed by a leader change: the new
// leader cannot know whether the old owner still serves the region (it is
// frozen here, with a valid lease), so the new owner must not open it
// before that lease has run out.
func TestE2EMigrationAcrossLeaderChangeNeverServesTwice(t *testing.T) {
	c := startCluster(t, 3, 6)
	if r := c.PostJSON("/admin/maintenance/enable", ""); r.Code != http.StatusOK {
		t.Fatalf("enable maintenance: %s", r)
	}
	from, to := c.Datanode(1), c.Datanode(2)
	r := ownedBy(c.mustRoutes(), from.ID)[0]
	if err := from.Pause(); err != nil {
		t.Fatal(err)
	}
	// Its lease runs from its last heartbeat's send time, at most the
	// leader's receive time and at least a round trip before it.
	lastHB, _ := c.lastHeartbeat(from)
	holdsUntil := lastHB.Add(regionLease - 200*time.Millisecond)
	if rep := c.PostJSON(fmt.Sprintf("/admin/regions/%d/migrate?to=%d", r, to.ID), ""); rep.Code != http.StatusOK {
		t.Fatalf("migrate: %s", rep)
	}
	old := c.leader()
	old.Kill()
	killed := time.Now()
	c.leader()
	var opened time.Time
	c.Eventually(fmt.Sprintf("dn%d opens region %d", to.ID, r), func() error {
		got, err := c.served(to)
		if err != nil {
			return err
		}
		if !slices.Contains(got, r) {
			return fmt.Errorf("dn%d serves %v", to.ID, got)
		}
		opened = time.Now()
		return nil
	})
	t.Logf("region %d: old owner's lease held until ≥ %v after the kill; new owner seen serving %v after it",
		r, holdsUntil.Sub(killed).Round(time.Millisecond), opened.Sub(killed).Round(time.Millisecond))
	if opened.Before(holdsUntil) {
		t.Errorf("dn%d served region %d %v before dn%d's lease on it ran out", to.ID, r, holdsUntil.Sub(opened), from.ID)
	}
	if err := from.Resume(); err != nil {
		t.Fatal(err)
	}
	c.waitServing(c.Datanodes()...)
}

// (e) A datanode dies together with the metasrv leader: the new leader
// seeds every datanode as just heard from, so the dead one is still failed
// over within one window of the new leader being up.
func TestE2EDatanodeDiesWithLeader(t *testing.T) {
	c := startCluster(t, 3, 6)
	leader := c.leader()
	dead := c.Datanode(1)
	owned := ownedBy(c.mustRoutes(), dead.ID)
	since := c.LastEventIndex()
	killed := time.Now()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); dead.Kill() }()
	go func() { defer wg.Done(); leader.Kill() }()
	wg.Wait()
	nl := c.leader()
	up := time.Now()
	commit := c.failoverCommit(dead.ID, owned, since)
	t.Logf("killed dn1 and leader %s: new leader %s up after %v; failover committed %v after it (%v after the kill)",
		leader.ID, nl.ID, up.Sub(killed).Round(time.Millisecond), commit.Sub(up).Round(time.Millisecond), commit.Sub(killed).Round(time.Millisecond))
	if bound := regionLease + leaseMargin + 5*failTick + 3*time.Second; commit.Sub(up) > bound {
		t.Errorf("failover committed %v after the new leader was up, want within %v", commit.Sub(up), bound)
	}
	// The new leader assumed the lease renewed at its takeover.
	if commit.Sub(killed) < regionLease {
		t.Errorf("failover committed %v after the kill, before any lease the dead datanode held could have run out", commit.Sub(killed))
	}
	c.waitServing(c.others(dead.ID)...)
}

// (f) A datanode cut off from every metasrv (all three frozen) stops
// serving its regions when its lease runs out; when they thaw, every
// region is served again by exactly its owner.
func TestE2ECutOffDatanodeStopsServing(t *testing.T) {
	c := startCluster(t, 3, 6)
	rs := c.mustRoutes()
	c.pauseAll()
	paused := time.Now()
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			c.resumeAll()
		}
	})
	for _, d := range c.Datanodes() {
		got, err := c.served(d)
		if err != nil || !slices.Equal(got, ownedBy(rs, d.ID)) {
			t.Fatalf("dn%d right after the freeze: %v %v, want still serving %v under its lease", d.ID, got, err, ownedBy(rs, d.ID))
		}
	}
	stopped := map[uint64]time.Duration{}
	c.Eventually("every datanode stops serving", func() error {
		for _, d := range c.Datanodes() {
			if _, ok := stopped[d.ID]; ok {
				continue
			}
			got, err := c.served(d)
			if err != nil {
				return err
			}
			if len(got) == 0 {
				stopped[d.ID] = time.Since(paused)
			}
		}
		if len(stopped) < len(c.Datanodes()) {
			return fmt.Errorf("stopped so far: %v", stopped)
		}
		return nil
	})
	for id, took := range stopped {
		t.Logf("dn%d stopped serving %v after every metasrv froze (lease %v from its last heartbeat)", id, took.Round(time.Millisecond), regionLease)
		if took > regionLease+1500*time.Millisecond {
			t.Errorf("dn%d served %v after it was cut off, want at most its lease %v", id, took, regionLease)
		}
	}
	c.resumeAll()
	resumed = true
	l := c.leader()
	c.waitStatus("alive", 1, 2, 3)
	c.waitServing(c.Datanodes()...)
	t.Logf("after the thaw: %v braked failover ticks on leader %s", c.mustMetric(l, "metasrv_failover_braked_ticks_total"), l.ID)
}

// The brake: with two of three datanodes dead, more than half look failed
// (more likely our own partition than their death): nothing moves. When
// one comes back, the other's regions fail over.
func TestE2EFailoverBrake(t *testing.T) {
	// A longer lease, so that whichever of the two looks failed first
	// cannot have its lease run out before the other looks failed too.
	c := startCluster(t, 3, 6, "--region-lease", "5s")
	before := c.mustRoutes()
	dn1, dn2 := c.Datanode(1), c.Datanode(2)
	// At once, so that neither looks failed alone long enough to fail over.
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); dn1.Kill() }()
	go func() { defer wg.Done(); dn2.Kill() }()
	wg.Wait()
	c.waitFailedAnd(dn1.ID, false, true)
	c.waitFailedAnd(dn2.ID, false, true)
	leader := c.leader()
	braked := c.mustMetric(leader, "metasrv_failover_braked_ticks_total")
	c.waitTicks(leader, 5, c.unchanged(before))
	if b := c.mustMetric(leader, "metasrv_failover_braked_ticks_total"); b < braked+5 {
		t.Errorf("braked ticks %v → %v, want +5", braked, b)
	}
	since := c.LastEventIndex()
	if err := dn2.Start(); err != nil {
		t.Fatal(err)
	}
	c.failoverCommit(dn1.ID, ownedBy(before, dn1.ID), since)
	c.waitServing(c.others(dn1.ID)...)

	// Failed and empty now: an operator may remove it.
	rep, err := c.Call(http.MethodDelete, "/admin/datanodes/1", "")
	if err != nil || rep.Code != http.StatusOK {
		t.Fatalf("remove dn1: %s %v", rep, err)
	}
	vs, err := c.datanodeViews()
	if _, ok := vs[1]; err != nil || ok || len(vs) != 2 {
		t.Errorf("datanodes after removing dn1: %+v %v", vs, err)
	}
	if rep, err = c.Call(http.MethodDelete, "/admin/datanodes/1", ""); err != nil || rep.Code != http.StatusNotFound {
		t.Errorf("remove dn1 again: %s %v, want 404", rep, err)
	}
}
