package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/metasrv/metasrv/server/wire"
)

// Bounds the scenarios check against. With the suite's timings (heartbeat
// 500ms, acceptable pause 1s, failover tick 200ms) the detection window is
// about 2.2s and a region lease 2.5s; raft elects within about a second.
const (
	electionBound = 10 * time.Second // a new ready leader after a crash, freeze or partition
	failedBound   = 20 * time.Second // a killed datanode shown failed
	failoverBound = 15 * time.Second // its regions on live datanodes once maintenance is off
	rejoinBound   = 30 * time.Second // a restarted, unfrozen or healed node follows and is ready
	balanceBound  = 40 * time.Second // balancing finishes once maintenance is off
)

func scenarios() []scenario {
	all := []string{"metasrv1", "metasrv2", "metasrv3", "datanode1", "datanode2", "datanode3"}
	return []scenario{
		{name: "1-leader-kill", title: "maintenance on, kill the leader, kill a datanode: failover deferred until disable",
			regions: 6, mode: modeToggle, run: scenarioLeaderKill},
		{name: "2-partition", title: "partition the leader into the minority during maintenance while clients toggle",
			regions: 6, mode: modeToggle, run: scenarioPartition},
		{name: "3-freeze", title: "freeze the leader (docker pause) past the election timeout, with and without maintenance",
			regions: 6, mode: modeToggle, run: scenarioFreeze},
		{name: "4-rolling-restart", title: "rolling restart of every metasrv node with maintenance on, then off, writes in flight",
			regions: 6, mode: modeToggle, run: scenarioRolling},
		{name: "5-balancer", title: "balancer moving regions, maintenance on mid-balancing, leader killed: no automatic move after the enable",
			start: all[:5], regions: 48, mode: modeToggle, run: scenarioBalancer},
	}
}

func roleOf(ctx context.Context, r *Run, service string) string {
	if l, _, err := r.cl.leader(ctx); err == nil && l.Service == service {
		return " (leader)"
	}
	return ""
}

// scenarioLeaderKill: enable maintenance, kill the leader, check the flag
// through every live node, kill a datanode, see it failed with its
// failover deferred and no route change over many failover ticks, disable,
// and see its regions fail over within a bound.
func scenarioLeaderKill(ctx context.Context, r *Run) error {
	r.sleep(ctx, 3*time.Second)
	r.wl.SetMode(modeOn)
	if err := r.setMaintenance(ctx, true); err != nil {
		return err
	}
	r.sleep(ctx, time.Second)
	old, _, err := r.cl.leader(ctx)
	if err != nil {
		return err
	}
	if err := r.kill(ctx, old.Service, " (leader)"); err != nil {
		return err
	}
	nl, took, err := r.cl.waitLeader(ctx, old.ID, electionBound)
	if !r.check("new leader after the leader was killed", err == nil, "%s in %s%s", nl.ID, took.Round(time.Millisecond), suffix(errString(err))) {
		return err
	}
	r.flagEverywhere(ctx, "maintenance still on through every live node", true)

	// Kill a datanode that owns regions.
	routes, err := r.cl.regions(ctx)
	if err != nil || len(routes) == 0 {
		return fmt.Errorf("routes: %v", err)
	}
	victimID := routes[0].Datanode
	victim := "datanode" + strconv.FormatUint(victimID, 10)
	if err := r.kill(ctx, victim, ""); err != nil {
		return err
	}
	killedAt := time.Now()
	var seen wire.Datanode
	shown := false
	for time.Since(killedAt) < failedBound && ctx.Err() == nil {
		views, err := r.cl.datanodeViews(ctx)
		if err == nil {
			for _, v := range views {
				if v.ID == victimID {
					seen = v
				}
			}
			if seen.Status == "failed" && seen.FailoverDeferred {
				shown = true
				break
			}
		}
		sleep(ctx, 200*time.Millisecond)
	}
	r.check("killed datanode shown failed with failover_deferred", shown, "datanode %d after %s: status=%s phi=%.1f deferred=%t",
		victimID, time.Since(killedAt).Round(time.Millisecond), seen.Status, seen.Phi, seen.FailoverDeferred)

	// No route changes over many failover ticks.
	leader, _, err := r.cl.leader(ctx)
	if err != nil {
		return err
	}
	t0, err := r.cl.metric(ctx, leader, "metasrv_failover_ticks_total")
	if err != nil {
		return err
	}
	var t1 float64
	start := time.Now()
	for time.Since(start) < 15*time.Second && ctx.Err() == nil {
		if t1, err = r.cl.metric(ctx, leader, "metasrv_failover_ticks_total"); err == nil && t1 >= t0+10 {
			break
		}
		sleep(ctx, 200*time.Millisecond)
	}
	after, err := r.cl.regions(ctx)
	if err != nil {
		return err
	}
	views, _ := r.cl.datanodeViews(ctx)
	stillDeferred := false
	for _, v := range views {
		if v.ID == victimID {
			stillDeferred = v.FailoverDeferred
		}
	}
	r.check("no route change over failover ticks while maintenance is on", routesKey(routes) == routesKey(after) && t1 >= t0+10 && stillDeferred,
		"leader %s ticks %.0f -> %.0f, routes unchanged=%t, still deferred=%t", leader.ID, t0, t1, routesKey(routes) == routesKey(after), stillDeferred)

	// The killed metasrv node comes back as a follower, flag on.
	if err := r.startSvc(ctx, old.Service); err != nil {
		return err
	}
	took, err = r.cl.waitReady(ctx, old, rejoinBound)
	r.check("killed leader restarts and is ready", err == nil, "%s in %s%s", old.Service, took.Round(time.Millisecond), suffix(errString(err)))
	r.flagEverywhere(ctx, "maintenance on through every node after the restart", true)

	// Disable: the deferred failover runs.
	r.wl.SetMode(modeOff)
	if err := r.setMaintenance(ctx, false); err != nil {
		return err
	}
	disabledAt := time.Now()
	live := map[uint64]bool{}
	for _, d := range r.cl.upDatanodes() {
		id, _ := strconv.ParseUint(d.ID, 10, 64)
		live[id] = true
	}
	left := 0
	moved := false
	for time.Since(disabledAt) < failoverBound && ctx.Err() == nil {
		rs, err := r.cl.regions(ctx)
		if err == nil {
			left = 0
			for _, reg := range rs {
				if !live[reg.Datanode] {
					left++
				}
			}
			if left == 0 {
				moved = true
				break
			}
		}
		sleep(ctx, 100*time.Millisecond)
	}
	r.check("failover after disable within bound", moved, "every region on a live datanode %s after the disable (bound %s), %d not",
		time.Since(disabledAt).Round(time.Millisecond), failoverBound, left)
	r.wl.SetMode(modeToggle)
	r.sleep(ctx, 2*time.Second)
	return nil
}

// scenarioPartition: cut the leader off (docker network disconnect) while
// clients toggle and read through every node, and also write to it from
// inside its own network namespace. The minority must commit nothing and
// acknowledge no write; the majority elects a leader; on heal the old
// leader follows.
func scenarioPartition(ctx context.Context, r *Run) error {
	if err := r.setMaintenance(ctx, true); err != nil {
		return err
	}
	r.sleep(ctx, 2*time.Second)
	old, _, err := r.cl.leader(ctx)
	if err != nil {
		return err
	}
	hc, err := r.cl.nsClient(ctx, old.Service)
	if err != nil {
		return err
	}
	// Probe first that the namespace client works at all.
	if res := r.cl.do(ctx, hc, "GET", "127.0.0.1:3002", "/admin/raft", nil, 3*time.Second); !res.ok() {
		return fmt.Errorf("cannot reach %s from inside its network namespace: %s", old.Service, res)
	}
	r.cl.setDown(old.Service, "partitioned")
	reconnect, err := r.compose.Disconnect(ctx, old.Service)
	if err != nil {
		return err
	}
	r.fault("network disconnect %s (leader, alone in the minority)", old.Service)
	cutAt := time.Now()
	healed := false
	heal := func() error {
		if healed {
			return nil
		}
		healed = true
		err := reconnect(context.Background())
		if err == nil {
			r.cl.setDown(old.Service, "")
		}
		r.step("network connect %s", old.Service)
		return err
	}
	defer heal() // on an early return; the normal path heals below

	// The minority side, observed from inside it.
	type sample struct {
		at    time.Duration
		state string
		ci    uint64
	}
	type minorityOp struct {
		ret    time.Duration
		status string
		oc     outcome
	}
	var mu sync.Mutex
	var samples []sample
	var mops []minorityOp
	pctx, pstop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 400 && pctx.Err() == nil; i++ {
			res := r.cl.do(pctx, hc, "GET", "127.0.0.1:3002", "/admin/raft", nil, 2*time.Second)
			var st wire.RaftStatus
			if res.ok() && jsonInto(res.Body, &st) == nil {
				mu.Lock()
				samples = append(samples, sample{time.Since(cutAt), st.State, st.CommitIndex})
				mu.Unlock()
			}
			sleep(pctx, 100*time.Millisecond)
		}
	}()
	var writers sync.WaitGroup
	for i := 0; i < 3; i++ {
		writers.Add(1)
		go func() {
			defer writers.Done()
			id := r.rec.NewClient()
			for j := 0; j < 50 && pctx.Err() == nil; j++ {
				in := regInput{Write: true, Value: rand.IntN(2) == 0}
				oc, _, res := maintenanceOp(ctx, r.cl, hc, r.rec, id, "127.0.0.1:3002", old.Service+"(minority)", in, 8*time.Second)
				_, _, status := classify(in, res)
				mu.Lock()
				mops = append(mops, minorityOp{time.Since(cutAt), status, oc})
				mu.Unlock()
				if oc == outcomeUnknown {
					id = r.rec.NewClient()
				}
				sleep(pctx, 200*time.Millisecond)
			}
		}()
	}

	nl, took, err := r.cl.waitLeader(ctx, old.ID, electionBound)
	r.check("majority elects a new leader", err == nil, "%s in %s%s", nl.ID, took.Round(time.Millisecond), suffix(errString(err)))
	r.sleep(ctx, time.Until(cutAt.Add(7*time.Second)))
	pstop() // no new minority requests; those in flight finish on their own
	wg.Wait()
	if err := heal(); err != nil {
		return err
	}
	healAt := time.Since(cutAt)
	writers.Wait()

	// Commit index inside the minority: frozen once the cut took effect
	// (acks already on the wire may land in the first moments).
	mu.Lock()
	var base *sample
	var maxCI uint64
	stepDown := time.Duration(-1)
	for i := range samples {
		s := samples[i]
		if s.state != "leader" && stepDown < 0 {
			stepDown = s.at
		}
		if s.at < 500*time.Millisecond {
			continue
		}
		if base == nil {
			base = &samples[i]
		}
		maxCI = max(maxCI, s.ci)
	}
	acked, byStatus := 0, map[string]int{}
	for _, op := range mops {
		if op.ret < healAt && op.oc == outcomeOK {
			acked++
		}
		if op.ret < healAt {
			byStatus[op.status]++
		}
	}
	nsamples := len(samples)
	mu.Unlock()
	r.check("minority commits nothing", base != nil && maxCI == base.ci, "%d samples of %s's commit index inside its namespace: %s",
		nsamples, old.Service, ciDetail(base != nil, func() uint64 { return base.ci }, maxCI))
	r.check("minority acknowledges no write", acked == 0 && len(byStatus) > 0, "writes sent to %s inside the partition: %s; acknowledged: %d",
		old.Service, statusCounts(byStatus), acked)
	r.check("cut-off leader steps down", stepDown >= 0 && stepDown < 2*time.Second, "state left leader after %s (lease timeout 300ms)", stepDown.Round(time.Millisecond))

	st, took, err := r.waitFollows(ctx, old, rejoinBound)
	r.check("old leader follows after heal", err == nil, "%s follows %s, term %d, after %s%s", old.Service, st.LeaderID, st.Term,
		took.Round(time.Millisecond), suffix(errString(err)))
	r.sleep(ctx, 3*time.Second)
	return nil
}

func ciDetail(ok bool, base func() uint64, maxCI uint64) string {
	if !ok {
		return "no sample after the cut took effect"
	}
	return fmt.Sprintf("%d at the cut, at most %d until the heal", base(), maxCI)
}

func statusCounts(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%d× %s", v, k))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "none completed"
	}
	return strings.Join(parts, ", ")
}

// freezeLeader pauses the leader past the election timeout, checks that the
// others elect a leader meanwhile, unpauses it and checks that it follows.
func freezeLeader(ctx context.Context, r *Run, label string, d time.Duration) error {
	old, _, err := r.cl.leader(ctx)
	if err != nil {
		return err
	}
	if err := r.pause(ctx, old.Service, " (leader)"); err != nil {
		return err
	}
	pausedAt := time.Now()
	nl, took, err := r.cl.waitLeader(ctx, old.ID, d)
	r.check("new leader while the old one is frozen"+label, err == nil, "%s in %s%s", nl.ID, took.Round(time.Millisecond), suffix(errString(err)))
	r.sleep(ctx, time.Until(pausedAt.Add(d)))
	if err := r.unpause(ctx, old.Service); err != nil {
		return err
	}
	st, took, err := r.waitFollows(ctx, old, rejoinBound)
	r.check("unfrozen leader follows"+label, err == nil, "%s follows %s after %s%s", old.Service, st.LeaderID, took.Round(time.Millisecond), suffix(errString(err)))
	return nil
}

// scenarioFreeze: freeze the leader for 4 s (election timeout 300 ms) while
// clients toggle; then again during maintenance.
func scenarioFreeze(ctx context.Context, r *Run) error {
	r.sleep(ctx, 2*time.Second)
	if err := freezeLeader(ctx, r, "", 4*time.Second); err != nil {
		return err
	}
	r.sleep(ctx, 2*time.Second)
	r.wl.SetMode(modeOn)
	if err := r.setMaintenance(ctx, true); err != nil {
		return err
	}
	if err := freezeLeader(ctx, r, " (maintenance on)", 4*time.Second); err != nil {
		return err
	}
	r.flagEverywhere(ctx, "maintenance on through every node after the freeze", true)
	r.wl.SetMode(modeOff)
	if err := r.setMaintenance(ctx, false); err != nil {
		return err
	}
	r.wl.SetMode(modeToggle)
	r.sleep(ctx, 2*time.Second)
	return nil
}

// rolling restarts every metasrv node (docker stop, then start), followers
// first and the leader last, waiting for each to be ready.
func rolling(ctx context.Context, r *Run, label string) error {
	leader, _, err := r.cl.leader(ctx)
	if err != nil {
		return err
	}
	order := []node{}
	for _, n := range r.cl.metas {
		if n.ID != leader.ID {
			order = append(order, n)
		}
	}
	order = append(order, leader)
	var took []string
	ok := true
	for _, n := range order {
		role := ""
		if n.ID == leader.ID {
			role = " (leader)"
		}
		start := time.Now()
		if err := r.stop(ctx, n.Service, role); err != nil {
			return err
		}
		r.sleep(ctx, 500*time.Millisecond)
		if err := r.startSvc(ctx, n.Service); err != nil {
			return err
		}
		_, err := r.cl.waitReady(ctx, n, rejoinBound)
		if err == nil {
			_, _, err = r.cl.waitLeader(ctx, "", electionBound)
		}
		if err != nil {
			ok = false
			took = append(took, err.Error())
			continue
		}
		took = append(took, fmt.Sprintf("%s%s %s", n.Service, role, time.Since(start).Round(time.Millisecond)))
	}
	r.check("rolling restart"+label+": every node back and ready", ok, "%s", strings.Join(took, ", "))
	return nil
}

// scenarioRolling: rolling restarts with maintenance on, then off, while
// the clients keep writing.
func scenarioRolling(ctx context.Context, r *Run) error {
	r.sleep(ctx, 2*time.Second)
	for _, on := range []bool{true, false} {
		label := map[bool]string{true: " (maintenance on)", false: " (maintenance off)"}[on]
		r.wl.SetMode(map[bool]mode{true: modeOn, false: modeOff}[on])
		if err := r.setMaintenance(ctx, on); err != nil {
			return err
		}
		if err := rolling(ctx, r, label); err != nil {
			return err
		}
		r.flagEverywhere(ctx, "flag through every node after the rolling restart"+label, on)
	}
	r.wl.SetMode(modeToggle)
	r.sleep(ctx, 2*time.Second)
	return nil
}

// spread is max - min regions per datanode over the given datanodes.
func spread(routes []wire.Route, dns []uint64) (int, map[uint64]int) {
	counts := map[uint64]int{}
	for _, d := range dns {
		counts[d] = 0
	}
	for _, reg := range routes {
		counts[reg.Datanode]++
	}
	lo, hi := -1, 0
	for _, c := range counts {
		if lo < 0 || c < lo {
			lo = c
		}
		hi = max(hi, c)
	}
	return hi - lo, counts
}

// scenarioBalancer: a table on two datanodes, a third one started so the
// balancer has work, maintenance enabled as soon as the first balancing
// move commits, the leader killed: no automatic move may commit after the
// enable until the disable; afterwards balancing finishes.
func scenarioBalancer(ctx context.Context, r *Run) error {
	r.sleep(ctx, 2*time.Second) // clients toggle; the two datanodes are balanced already
	r.wl.SetMode(modeRead)
	if err := r.setMaintenance(ctx, false); err != nil {
		return err
	}
	if err := r.startSvc(ctx, "datanode3"); err != nil {
		return err
	}
	r.fault("start datanode3 (the balancer has work)")
	firstMove, ok := r.ev.waitFor(ctx, 30*time.Second, func(e event) bool { return e.Type == "region_moved" && e.Fields["cause"] == "balance" })
	if !r.check("balancer starts moving regions to the new datanode", ok, "first balance move at index %d", firstMove.Index) {
		return errors.New("the balancer did not move anything")
	}
	r.wl.SetMode(modeOn)
	if err := r.setMaintenance(ctx, true); err != nil {
		return err
	}
	enabled, ok := r.ev.waitFor(ctx, 10*time.Second, func(e event) bool { return e.Type == "maintenance_enabled" && e.Index > firstMove.Index })
	if !ok {
		return errors.New("the enable does not show in the event log")
	}
	old, _, err := r.cl.leader(ctx)
	if err != nil {
		return err
	}
	if err := r.kill(ctx, old.Service, " (leader)"); err != nil {
		return err
	}
	nl, took, err := r.cl.waitLeader(ctx, old.ID, electionBound)
	if !r.check("new leader after the leader was killed", err == nil, "%s in %s%s", nl.ID, took.Round(time.Millisecond), suffix(errString(err))) {
		return err
	}
	// Hold maintenance over several balancer intervals (1 s).
	r.sleep(ctx, 5*time.Second)
	var bs struct {
		Paused       bool   `json:"paused"`
		PausedReason string `json:"paused_reason"`
		Runs         uint64 `json:"runs"`
	}
	err = r.cl.getAny(ctx, "/admin/balancer/status", &bs)
	r.check("balancer paused on the new leader", err == nil && bs.Paused && bs.PausedReason == "maintenance" && bs.Runs >= 3,
		"paused=%t reason=%q runs=%d%s", bs.Paused, bs.PausedReason, bs.Runs, suffix(errString(err)))
	routes, err := r.cl.regions(ctx)
	if err != nil {
		return err
	}
	sp, counts := spread(routes, []uint64{1, 2, 3})
	if err := r.ev.Sync(ctx, 10*time.Second); err != nil {
		return err
	}
	var before, afterEnable []string
	rejected := 0
	for _, e := range r.ev.Events() {
		if e.Type == "move_rejected" && e.Index > enabled.Index {
			rejected++
		}
		switch {
		case !automaticMove(e):
		case e.Index < enabled.Index && e.Fields["cause"] == "balance":
			before = append(before, e.String())
		case e.Index > enabled.Index:
			afterEnable = append(afterEnable, e.String())
		}
	}
	// 48 regions over 3 datanodes is 16 each: the new one has fewer while
	// maintenance holds the balancer.
	r.check("maintenance enabled mid-balancing", len(before) > 0 && counts[3] < 16 && sp > 1,
		"%d balance moves before the enable at index %d; regions per datanode while held: %v (spread %d)",
		len(before), enabled.Index, counts, sp)
	r.check("zero automatic moves after the enable", len(afterEnable) == 0, "%d automatic moves after index %d (%d proposals rejected by the state machine)%s",
		len(afterEnable), enabled.Index, rejected, suffix(strings.Join(first(afterEnable, 5), "; ")))

	if err := r.startSvc(ctx, old.Service); err != nil {
		return err
	}
	took, err = r.cl.waitReady(ctx, old, rejoinBound)
	r.check("killed leader restarts and is ready", err == nil, "%s in %s%s", old.Service, took.Round(time.Millisecond), suffix(errString(err)))

	r.wl.SetMode(modeOff)
	if err := r.setMaintenance(ctx, false); err != nil {
		return err
	}
	disabledAt := time.Now()
	balanced := false
	for time.Since(disabledAt) < balanceBound && ctx.Err() == nil {
		if rs, err := r.cl.regions(ctx); err == nil {
			if sp, counts = spread(rs, []uint64{1, 2, 3}); sp <= 1 {
				balanced = true
				break
			}
		}
		sleep(ctx, 250*time.Millisecond)
	}
	r.check("balancing finishes after the disable", balanced, "regions per datanode %v after %s (bound %s)",
		counts, time.Since(disabledAt).Round(time.Millisecond), balanceBound)
	r.wl.SetMode(modeToggle)
	r.sleep(ctx, 2*time.Second)
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
