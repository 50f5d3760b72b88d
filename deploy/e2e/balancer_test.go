// Package e2e holds end-to-end tests that run the real metasrv and
// datanode binaries on loopback (through deploy/localcluster) and drive
// them over HTTP like an operator with curl would.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
	"github.com/metasrv/metasrv/server/wire"
)

// The binaries under test, built once by TestMain (not under -short: every
// test here skips itself there).
var metasrvBin, datanodeBin string

func TestMain(m *testing.M) {
	localcluster.RunTests(m, []string{"./cmd/metasrv", "./cmd/datanode"}, &metasrvBin, &datanodeBin)
}

const (
	// Generous bounds: a busy 2-core machine, often running other test
	// packages at the same time.
	waitLong = 45 * time.Second
	logTail  = 16 << 10
	// balancerInterval is --balancer-interval below.
	balancerInterval = time.Second
	// heartbeatInterval is --heartbeat-interval below.
	heartbeatInterval = 500 * time.Millisecond
)

// fastArgs are the metasrv flags of every cluster here.
var fastArgs = []string{
	"--heartbeat-interval", heartbeatInterval.String(), "--acceptable-heartbeat-pause", "1s",
	"--first-heartbeat-estimate", "500ms", "--failover-tick", "200ms",
	"--balancer-interval", balancerInterval.String(), "--balancer-cooldown", "0s",
}

// bcluster is a metasrv cluster with datanodes, bound to one test.
type bcluster struct {
	*localcluster.TestCluster
}

// startBalancerCluster starts three metasrv nodes (with fastArgs and then
// extra, which win) and datanodes 1..datanodes, and waits until a leader is
// ready and every datanode is alive. Every process is killed when the test
// ends, and the log tails are printed if it failed. METASRV_E2E_KEEP keeps
// data and logs (see localcluster.KeepEnv).
func startBalancerCluster(t *testing.T, datanodes int, extra ...string) *bcluster {
	t.Helper()
	localcluster.SkipIfShort(t)
	args := append(append([]string(nil), fastArgs...), extra...)
	bc := &bcluster{localcluster.StartTest(t, localcluster.TestOptions{
		Options: localcluster.Options{Bin: metasrvBin, Nodes: 3, Args: args,
			DatanodeBin: datanodeBin, Datanodes: datanodes},
		LogTail: logTail, Wait: waitLong, Timeout: 10 * time.Second})}
	bc.waitReady()
	bc.waitDatanodesAlive(ids(1, datanodes)...)
	return bc
}

func ids(from, to int) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, uint64(i))
	}
	return out
}

// waitReady waits until the running metasrv nodes agree on a leader and
// each answers /admin/ready.
func (c *bcluster) waitReady() *localcluster.Node {
	c.T.Helper()
	var leader *localcluster.Node
	err := localcluster.Eventually(waitLong, func() error {
		l, err := c.WaitLeader(5 * time.Second)
		if err != nil {
			return err
		}
		for _, n := range c.Running() {
			r, err := c.SendJSON(http.MethodGet, n.URL("/admin/ready"), "")
			if err != nil {
				return fmt.Errorf("%s ready: %v", n.ID, err)
			}
			if r.Code != http.StatusOK {
				return fmt.Errorf("%s ready: %s", n.ID, r)
			}
		}
		leader = l
		return nil
	})
	if err != nil {
		c.T.Fatalf("cluster not ready: %v", err)
	}
	return leader
}

// mustStatus sends a request and fails the test unless it answers want.
func (c *bcluster) mustStatus(want int, method, path string, body []byte) []byte {
	c.T.Helper()
	r := c.MustCall(method, path, string(body))
	if r.Code != want {
		c.T.Fatalf("%s %s: %s, want %d", method, path, r, want)
	}
	return r.Body
}

// API views (the fields these tests read).

type balancerStatus struct {
	Enabled       bool       `json:"enabled"`
	Interval      string     `json:"interval"`
	Paused        bool       `json:"paused"`
	PausedReason  string     `json:"paused_reason"`
	LastRun       *time.Time `json:"last_run"`
	Runs          uint64     `json:"runs"`
	MovesDone     uint64     `json:"moves_done"`
	MovesRejected uint64     `json:"moves_rejected"`
	Spread        int        `json:"spread"`
}

type planMove struct {
	Region uint64 `json:"region"`
	From   uint64 `json:"from"`
	To     uint64 `json:"to"`
}

type planView struct {
	Moves        []planMove `json:"moves"`
	SpreadBefore int        `json:"spread_before"`
	SpreadAfter  int        `json:"spread_after"`
	Reason       string     `json:"reason"`
	Paused       bool       `json:"paused"`
	PausedReason string     `json:"paused_reason"`
}

// routes returns region → owner from GET /admin/regions, checking that
// every region is listed exactly once with an owner.
func (c *bcluster) routes() (map[uint64]uint64, error) {
	out, _, err := c.routesInFlight()
	return out, err
}

// routesInFlight is routes plus the regions whose owner has not yet
// reported serving them (the leader's view; the balancer skips them).
func (c *bcluster) routesInFlight() (map[uint64]uint64, []uint64, error) {
	var rs []localcluster.Route
	if err := c.GetJSON("/admin/regions", &rs); err != nil {
		return nil, nil, err
	}
	out := map[uint64]uint64{}
	var inFlight []uint64
	for _, r := range rs {
		if _, dup := out[r.ID]; dup {
			return nil, nil, fmt.Errorf("region %d listed twice in /admin/regions: %+v", r.ID, rs)
		}
		if r.Datanode == 0 {
			return nil, nil, fmt.Errorf("region %d has no owner: %+v", r.ID, r)
		}
		out[r.ID] = r.Datanode
		if r.InFlight {
			inFlight = append(inFlight, r.ID)
		}
	}
	return out, inFlight, nil
}

func (c *bcluster) datanodes() ([]wire.Datanode, error) {
	var ds []wire.Datanode
	return ds, c.GetJSON("/admin/datanodes", &ds)
}

func (c *bcluster) status() (balancerStatus, error) {
	var st balancerStatus
	return st, c.GetJSON("/admin/balancer/status", &st)
}

func (c *bcluster) mustStatusView() balancerStatus {
	c.T.Helper()
	var st balancerStatus
	err := localcluster.Eventually(waitLong, func() error {
		var err error
		st, err = c.status()
		return err
	})
	if err != nil {
		c.T.Fatal(err)
	}
	return st
}

// serving asks every running datanode which regions it serves now.
func (c *bcluster) serving() (map[uint64][]uint64, error) {
	out := map[uint64][]uint64{}
	for _, d := range c.Datanodes() {
		if !d.Running() {
			continue
		}
		regs, err := c.Regions(d)
		if err != nil {
			return nil, err
		}
		out[d.ID] = regs
	}
	return out, nil
}

// waitDatanodesAlive waits until GET /admin/datanodes lists each id with
// status alive.
func (c *bcluster) waitDatanodesAlive(want ...uint64) {
	c.T.Helper()
	err := localcluster.Eventually(waitLong, func() error {
		ds, err := c.datanodes()
		if err != nil {
			return err
		}
		st := map[uint64]string{}
		for _, d := range ds {
			st[d.ID] = d.Status
		}
		for _, id := range want {
			if st[id] != "alive" {
				return fmt.Errorf("datanode %d is %q (datanodes %+v)", id, st[id], ds)
			}
		}
		return nil
	})
	if err != nil {
		c.T.Fatalf("datanodes not alive: %v", err)
	}
}

// startDatanodes starts n more datanodes and waits until they are alive.
func (c *bcluster) startDatanodes(n int) []uint64 {
	c.T.Helper()
	var started []uint64
	for i := 0; i < n; i++ {
		d := c.AddDatanode()
		if err := d.Start(); err != nil {
			c.T.Fatalf("start datanode %d: %v", d.ID, err)
		}
		started = append(started, d.ID)
	}
	c.waitDatanodesAlive(started...)
	return started
}

// createTable creates a table with n regions and returns its routes.
func (c *bcluster) createTable(name string, n int) {
	c.T.Helper()
	c.mustStatus(http.StatusCreated, http.MethodPost, "/admin/tables", []byte(fmt.Sprintf(`{"name":%q,"regions":%d}`, name, n)))
}

// counts returns the number of regions each datanode in dns owns.
func counts(routes map[uint64]uint64, dns []uint64) map[uint64]int {
	out := map[uint64]int{}
	for _, dn := range dns {
		out[dn] = 0
	}
	for _, dn := range routes {
		out[dn]++
	}
	return out
}

// checkServedMatchesRoutes: every datanode serves exactly the regions it
// owns, so every region is served by exactly one datanode.
func checkServedMatchesRoutes(routes map[uint64]uint64, serving map[uint64][]uint64) error {
	owned := map[uint64][]uint64{}
	for r, dn := range routes {
		owned[dn] = append(owned[dn], r)
	}
	for dn, regs := range serving {
		want := append([]uint64{}, owned[dn]...)
		sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
		got := append([]uint64{}, regs...)
		sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("datanode %d serves %v, owns %v", dn, got, want)
		}
	}
	for dn := range owned {
		if _, ok := serving[dn]; !ok {
			return fmt.Errorf("datanode %d owns regions but is not running", dn)
		}
	}
	return nil
}

// waitLayout waits until the routes give each datanode want[dn] regions
// (total regions in all), every datanode serves exactly what it owns, and
// the leader has heard so from each (no region in flight). It returns how
// long that took.
func (c *bcluster) waitLayout(total int, want map[uint64]int) time.Duration {
	c.T.Helper()
	start := time.Now()
	var dns []uint64
	for dn := range want {
		dns = append(dns, dn)
	}
	err := localcluster.Eventually(waitLong, func() error {
		routes, inFlight, err := c.routesInFlight()
		if err != nil {
			return err
		}
		if len(inFlight) > 0 {
			return fmt.Errorf("regions %v in flight", inFlight)
		}
		if len(routes) != total {
			return fmt.Errorf("%d regions routed, want %d", len(routes), total)
		}
		if got := counts(routes, dns); !reflect.DeepEqual(got, want) {
			return fmt.Errorf("regions per datanode %v, want %v", got, want)
		}
		serving, err := c.serving()
		if err != nil {
			return err
		}
		return checkServedMatchesRoutes(routes, serving)
	})
	if err != nil {
		c.T.Fatalf("layout %v not reached: %v", want, err)
	}
	return time.Since(start)
}

// watchServing polls every datanode's GET /regions until stop is called,
// and returns the rounds in which two datanodes served the same region.
// A round counts only when it took well under one heartbeat interval: a
// region closes on one datanode at least about one interval before it
// opens on another, so a faster round cannot see both by accident.
func (c *bcluster) watchServing() (stop func() (violations []string, rounds int)) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var violations []string
	rounds := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			start := time.Now()
			serving, err := c.serving()
			took := time.Since(start)
			if err == nil && took < heartbeatInterval/2 {
				seen := map[uint64]uint64{}
				for dn, regs := range serving {
					for _, r := range regs {
						if other, ok := seen[r]; ok {
							mu.Lock()
							violations = append(violations, fmt.Sprintf("%s: region %d served by datanodes %d and %d (%v)",
								start.Format("15:04:05.000"), r, other, dn, serving))
							mu.Unlock()
						}
						seen[r] = dn
					}
				}
				mu.Lock()
				rounds++
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() ([]string, int) {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return violations, rounds
	}
}

func (c *bcluster) checkWatch(stop func() ([]string, int)) {
	c.T.Helper()
	violations, rounds := stop()
	for _, v := range violations {
		c.T.Error(v)
	}
	if rounds < 5 {
		c.T.Errorf("only %d serving rounds were fast enough to check", rounds)
	}
	c.T.Logf("%d serving snapshots checked: no region served by two datanodes", rounds)
}

// moveEvents returns the region_moved events after since, by cause.
func (c *bcluster) moveEvents(since uint64) map[string]int {
	c.T.Helper()
	var evs []localcluster.Event
	err := localcluster.Eventually(waitLong, func() error {
		var err error
		evs, err = c.Events(since)
		return err
	})
	if err != nil {
		c.T.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range evs {
		if e.Type == "region_moved" {
			out[e.Fields["cause"]]++
		}
	}
	return out
}

// setupTable starts with datanodes 1..n alive, creates table "t" with
// regions spread over them and waits until they serve them.
func (c *bcluster) setupTable(regions int, dns []uint64) {
	c.T.Helper()
	c.createTable("t", regions)
	want := map[uint64]int{}
	for i := 0; i < regions; i++ {
		want[dns[i%len(dns)]]++
	}
	c.waitLayout(regions, want)
}

// TestBalancerSpreadsOntoNewDatanodes: 2 datanodes with an 8-region table;
// 2 more start; the leader's balancer spreads the regions 2/2/2/2 within a
// few intervals, by balance moves only, with no region ever served twice.
func TestBalancerSpreadsOntoNewDatanodes(t *testing.T) {
	c := startBalancerCluster(t, 2)
	c.setupTable(8, ids(1, 2))
	since := c.LastEventIndex()
	watch := c.watchServing()

	c.startDatanodes(2)
	took := c.waitLayout(8, map[uint64]int{1: 2, 2: 2, 3: 2, 4: 2})
	t.Logf("converged to 2/2/2/2 %s after datanodes 3 and 4 were alive (balancer interval %s)", took.Round(time.Millisecond), balancerInterval)
	c.checkWatch(watch)

	if got := c.moveEvents(since); got["balance"] != 4 || len(got) != 1 {
		t.Errorf("region moves by cause %v, want exactly 4 balance moves", got)
	}
	// status.spread is the spread its last run saw: 0 from the run after
	// the balancing one.
	c.waitRuns(1, func() error { return nil })
	st := c.mustStatusView()
	if !st.Enabled || st.Paused || st.MovesDone < 4 || st.Runs < 2 || st.LastRun == nil || st.Spread != 0 || st.Interval != "1s" {
		t.Errorf("balancer status %+v", st)
	}
	// Balanced now: the dry run proposes nothing.
	var p planView
	if err := c.GetJSON("/admin/balancer/plan", &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Moves) != 0 || p.Reason != "balanced" || p.SpreadBefore != 0 || p.SpreadAfter != 0 || p.Paused {
		t.Errorf("plan after converging %+v", p)
	}
}

// TestBalancerPausedDuringMaintenance: the same with maintenance on:
// nothing moves while the status says paused for maintenance over several
// counted runs; the dry run shows what would move; once maintenance is
// disabled it balances.
func TestBalancerPausedDuringMaintenance(t *testing.T) {
	c := startBalancerCluster(t, 2)
	c.setupTable(8, ids(1, 2))
	c.mustStatus(http.StatusOK, http.MethodPost, "/admin/maintenance/enable", nil)
	since := c.LastEventIndex()
	c.startDatanodes(2)
	before := map[uint64]int{1: 4, 2: 4, 3: 0, 4: 0}

	// Count runs while paused: routes never change meanwhile.
	first := c.mustStatusView()
	base, seen := first.Runs, uint64(0)
	err := localcluster.Eventually(waitLong, func() error {
		st, err := c.status()
		if err != nil {
			return err
		}
		if st.Runs < base { // a new leader's counters: start counting again
			t.Logf("balancer runs went from %d to %d (new leader term); counting again", base, st.Runs)
			base = st.Runs
		}
		if !st.Paused || st.PausedReason != "maintenance" || !st.Enabled {
			t.Fatalf("balancer status during maintenance: %+v", st)
		}
		routes, err := c.routes()
		if err != nil {
			return err
		}
		if got := counts(routes, ids(1, 4)); !reflect.DeepEqual(got, before) {
			t.Fatalf("regions moved during maintenance: %v, were %v", got, before)
		}
		seen = st.Runs - base
		if seen < 3 {
			return fmt.Errorf("%d paused runs so far", seen)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("paused runs: %v", err)
	}
	t.Logf("%d balancer runs paused for maintenance, nothing moved", seen)

	// The dry run still shows the moves it would make, and why it will not.
	plan := c.MustCall(http.MethodGet, "/admin/balancer/plan", "")
	code, raw := plan.Code, plan.Body
	if code != http.StatusOK {
		t.Fatalf("plan: %d %s", code, raw)
	}
	var shape map[string]json.RawMessage
	if err := json.Unmarshal(raw, &shape); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range shape {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := []string{"moves", "paused", "paused_reason", "reason", "skipped", "skipped_total", "spread_after", "spread_before"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("plan keys %v, want %v", keys, want)
	}
	if sk, tot := string(shape["skipped"]), string(shape["skipped_total"]); sk != "[]" || tot != "0" {
		t.Errorf("dry run skipped %s (total %s), want [] (0): every region is served", sk, tot)
	}
	var p planView
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	if !p.Paused || p.PausedReason != "maintenance" || p.SpreadBefore != 4 || p.SpreadAfter != 0 ||
		p.Reason != "spread 4 exceeds tolerance 1" || len(p.Moves) != 4 {
		t.Errorf("dry run during maintenance: %s", raw)
	}
	routes, err := c.routes()
	if err != nil {
		t.Fatal(err)
	}
	in := map[uint64]int{}
	for _, m := range p.Moves {
		if routes[m.Region] != m.From || (m.From != 1 && m.From != 2) || (m.To != 3 && m.To != 4) {
			t.Errorf("dry-run move %+v does not fit the routes %v", m, routes)
		}
		in[m.To]++
	}
	if in[3] != 2 || in[4] != 2 {
		t.Errorf("dry run moves %+v: want two into each new datanode", p.Moves)
	}
	if got := c.moveEvents(since); len(got) != 0 {
		t.Errorf("region moves during maintenance: %v", got)
	}

	c.mustStatus(http.StatusOK, http.MethodPost, "/admin/maintenance/disable", nil)
	took := c.waitLayout(8, map[uint64]int{1: 2, 2: 2, 3: 2, 4: 2})
	t.Logf("balanced %s after maintenance was disabled", took.Round(time.Millisecond))
	if st := c.mustStatusView(); st.Paused || st.MovesDone < 4 {
		t.Errorf("status after balancing %+v", st)
	}
	if got := c.moveEvents(since); got["balance"] != 4 || len(got) != 1 {
		t.Errorf("region moves by cause %v, want 4 balance moves", got)
	}
}

// drainAndCheck drains datanode id and waits until it owns and serves no
// region while the others absorb them; it returns the drain's move events.
func (c *bcluster) drainAndCheck(id uint64, total int, others []uint64) {
	c.T.Helper()
	var resp struct {
		ID         uint64 `json:"id"`
		AdminState string `json:"admin_state"`
		Regions    int    `json:"regions"`
	}
	b := c.mustStatus(http.StatusOK, http.MethodPost, fmt.Sprintf("/admin/datanodes/%d/drain", id), nil)
	if err := json.Unmarshal(b, &resp); err != nil || resp.ID != id || resp.AdminState != "draining" {
		c.T.Fatalf("drain answer %s (%v)", b, err)
	}
	err := localcluster.Eventually(waitLong, func() error {
		routes, err := c.routes()
		if err != nil {
			return err
		}
		if len(routes) != total {
			return fmt.Errorf("%d regions routed, want %d", len(routes), total)
		}
		cnt := counts(routes, nil)
		if cnt[id] != 0 {
			return fmt.Errorf("datanode %d still owns %d regions", id, cnt[id])
		}
		sum := 0
		for _, o := range others {
			sum += cnt[o]
		}
		if sum != total {
			return fmt.Errorf("the others own %d of %d regions: %v", sum, total, cnt)
		}
		serving, err := c.serving()
		if err != nil {
			return err
		}
		if len(serving[id]) != 0 {
			return fmt.Errorf("datanode %d still serves %v", id, serving[id])
		}
		if err := checkServedMatchesRoutes(routes, serving); err != nil {
			return err
		}
		ds, err := c.datanodes()
		if err != nil {
			return err
		}
		for _, d := range ds {
			if d.ID == id && (d.AdminState != "draining" || d.Regions != 0) {
				return fmt.Errorf("GET /admin/datanodes shows %+v", d)
			}
		}
		return nil
	})
	if err != nil {
		c.T.Fatalf("drain of datanode %d: %v", id, err)
	}
}

// TestDrainDatanode: drain moves every region off one datanode onto the
// others (cause drain), and the balancer never moves one back.
func TestDrainDatanode(t *testing.T) {
	c := startBalancerCluster(t, 3)
	c.setupTable(9, ids(1, 3))
	since := c.LastEventIndex()
	watch := c.watchServing()
	start := time.Now()
	c.drainAndCheck(1, 9, []uint64{2, 3})
	t.Logf("datanode 1 drained in %s", time.Since(start).Round(time.Millisecond))
	// Stays empty over several balancer runs (it is not schedulable).
	c.waitRuns(3, func() error {
		routes, err := c.routes()
		if err != nil {
			return err
		}
		if n := counts(routes, nil)[1]; n != 0 {
			return fmt.Errorf("datanode 1 got %d regions back while draining", n)
		}
		return nil
	})
	c.checkWatch(watch)
	got := c.moveEvents(since)
	if got["drain"] != 3 || got["balance"] != 0 {
		t.Errorf("region moves by cause %v, want 3 drain moves", got)
	}
	routes, err := c.routes()
	if err != nil {
		t.Fatal(err)
	}
	if cnt := counts(routes, nil); !((cnt[2] == 4 && cnt[3] == 5) || (cnt[2] == 5 && cnt[3] == 4)) {
		t.Errorf("after the drain %v, want 4/5 on datanodes 2 and 3", cnt)
	}
}

// TestDrainDuringMaintenance: drain is operator-initiated, so it runs
// during maintenance too, while balancing stays paused.
func TestDrainDuringMaintenance(t *testing.T) {
	c := startBalancerCluster(t, 3)
	c.setupTable(9, ids(1, 3))
	c.mustStatus(http.StatusOK, http.MethodPost, "/admin/maintenance/enable", nil)
	since := c.LastEventIndex()
	watch := c.watchServing()
	c.drainAndCheck(2, 9, []uint64{1, 3})
	c.checkWatch(watch)
	if got := c.moveEvents(since); got["drain"] != 3 || len(got) != 1 {
		t.Errorf("region moves by cause %v, want 3 drain moves and nothing else", got)
	}
	st := c.mustStatusView()
	if !st.Paused || st.PausedReason != "maintenance" {
		t.Errorf("balancer status during maintenance %+v", st)
	}
	if m := c.mustStatus(http.StatusOK, http.MethodGet, "/admin/maintenance", nil); !strings.Contains(string(m), `"enabled":true`) {
		t.Errorf("maintenance %s", m)
	}
}

// waitRuns waits for at least n more balancer runs, checking cond at every
// poll (cond failing fails the test at once).
func (c *bcluster) waitRuns(n uint64, cond func() error) {
	c.T.Helper()
	base := c.mustStatusView().Runs
	err := localcluster.Eventually(waitLong, func() error {
		if err := cond(); err != nil {
			c.T.Fatal(err)
		}
		st, err := c.status()
		if err != nil {
			return err
		}
		if st.Runs < base {
			base = st.Runs
		}
		if st.Runs-base < n {
			return fmt.Errorf("%d of %d runs", st.Runs-base, n)
		}
		return nil
	})
	if err != nil {
		c.T.Fatal(err)
	}
}

// TestCordonUncordon: a cordoned datanode takes no region from the
// balancer; once uncordoned it gets its share.
func TestCordonUncordon(t *testing.T) {
	c := startBalancerCluster(t, 2)
	c.setupTable(8, ids(1, 2))
	// Maintenance holds the balancer while datanode 3 is cordoned.
	c.mustStatus(http.StatusOK, http.MethodPost, "/admin/maintenance/enable", nil)
	c.startDatanodes(2)
	var resp struct {
		ID         uint64 `json:"id"`
		AdminState string `json:"admin_state"`
		Regions    int    `json:"regions"`
	}
	b := c.mustStatus(http.StatusOK, http.MethodPost, "/admin/datanodes/3/cordon", nil)
	if err := json.Unmarshal(b, &resp); err != nil || resp.ID != 3 || resp.AdminState != "cordoned" || resp.Regions != 0 {
		t.Fatalf("cordon answer %s (%v)", b, err)
	}
	// Idempotent.
	c.mustStatus(http.StatusOK, http.MethodPost, "/admin/datanodes/3/cordon", nil)
	ds, err := c.datanodes()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		want := "active"
		if d.ID == 3 {
			want = "cordoned"
		}
		if d.AdminState != want {
			t.Errorf("datanode %d admin_state %q, want %q", d.ID, d.AdminState, want)
		}
	}
	var p planView
	if err := c.GetJSON("/admin/balancer/plan", &p); err != nil {
		t.Fatal(err)
	}
	for _, m := range p.Moves {
		if m.To == 3 {
			t.Errorf("dry run plans onto cordoned datanode 3: %+v", p.Moves)
		}
	}

	c.mustStatus(http.StatusOK, http.MethodPost, "/admin/maintenance/disable", nil)
	c.waitLayout(8, map[uint64]int{1: 3, 2: 3, 3: 0, 4: 2})
	c.waitRuns(3, func() error {
		routes, err := c.routes()
		if err != nil {
			return err
		}
		if n := counts(routes, nil)[3]; n != 0 {
			return fmt.Errorf("cordoned datanode 3 got %d regions", n)
		}
		return nil
	})

	b = c.mustStatus(http.StatusOK, http.MethodPost, "/admin/datanodes/3/uncordon", nil)
	if err := json.Unmarshal(b, &resp); err != nil || resp.AdminState != "active" {
		t.Fatalf("uncordon answer %s (%v)", b, err)
	}
	took := c.waitLayout(8, map[uint64]int{1: 2, 2: 2, 3: 2, 4: 2})
	t.Logf("balanced onto the uncordoned datanode in %s", took.Round(time.Millisecond))

	// The admin state changes are in the event log.
	evs, err := c.Events(0)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, e := range evs {
		if e.Type == "datanode_admin_state" && e.Fields["datanode"] == "3" {
			states = append(states, e.Fields["state"])
		}
	}
	if want := []string{"cordoned", "active"}; !reflect.DeepEqual(states, want) {
		t.Errorf("admin state events of datanode 3: %v, want %v", states, want)
	}
}

// TestBalancerDisabledAndDryRun: with --balancer-interval 0 the status says
// disabled and nothing runs, the dry run still answers, and drain works.
func TestBalancerDisabledAndDryRun(t *testing.T) {
	c := startBalancerCluster(t, 2, "--balancer-interval", "0")
	c.setupTable(8, ids(1, 2))
	c.startDatanodes(1)
	var p planView
	if err := c.GetJSON("/admin/balancer/plan", &p); err != nil {
		t.Fatal(err)
	}
	// 4/4/0 → one from each onto datanode 3: 3/3/2.
	if p.Paused || p.SpreadBefore != 4 || p.SpreadAfter != 1 || len(p.Moves) != 2 || p.Reason != "spread 4 exceeds tolerance 1" {
		t.Errorf("dry run %+v", p)
	}
	for _, m := range p.Moves {
		if m.To != 3 {
			t.Errorf("dry-run move %+v not onto the empty datanode", m)
		}
	}
	st := c.mustStatusView()
	if st.Enabled || st.Interval != "0s" || st.Runs != 0 || st.LastRun != nil {
		t.Errorf("status of a disabled balancer %+v", st)
	}
	// Drain still runs with balancing off.
	c.drainAndCheck(1, 8, []uint64{2, 3})
	if st := c.mustStatusView(); st.Runs != 0 || st.MovesDone != 0 {
		t.Errorf("a disabled balancer ran: %+v", st)
	}
}

// TestBalancerLeaderKill: kill -9 the metasrv leader in the middle of
// balancing. Every region keeps exactly one owner, no region is ever served
// by two datanodes, and the balancer resumes on the new leader and
// converges.
func TestBalancerLeaderKill(t *testing.T) {
	// Small caps so that balancing takes several rounds.
	c := startBalancerCluster(t, 2, "--balancer-max-moves", "2", "--balancer-max-moves-per-datanode", "1")
	c.setupTable(16, ids(1, 2))
	since := c.LastEventIndex()
	watch := c.watchServing()
	c.startDatanodes(2)

	// Wait for the first balance moves, then kill the leader at once.
	var atKill map[uint64]int
	err := localcluster.Eventually(waitLong, func() error {
		routes, err := c.routes()
		if err != nil {
			return err
		}
		cnt := counts(routes, ids(1, 4))
		if cnt[3]+cnt[4] == 0 {
			return fmt.Errorf("nothing moved yet: %v", cnt)
		}
		atKill = cnt
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	leader, err := c.WaitLeader(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	leader.Kill()
	killedAt := time.Now()
	t.Logf("killed leader %s with regions per datanode %v", leader.ID, atKill)
	if atKill[3] >= 4 && atKill[4] >= 4 {
		t.Fatalf("balancing had already finished before the kill: %v", atKill)
	}

	// Routes right after the election: 16 regions, one owner each.
	newLeader := c.waitReady()
	if newLeader.ID == leader.ID {
		t.Fatalf("the killed node %s is leader again", leader.ID)
	}
	routes, err := c.routes()
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 16 {
		t.Errorf("%d regions after the kill, want 16", len(routes))
	}
	for r, dn := range routes {
		if dn < 1 || dn > 4 {
			t.Errorf("region %d owned by unknown datanode %d", r, dn)
		}
	}

	took := c.waitLayout(16, map[uint64]int{1: 4, 2: 4, 3: 4, 4: 4})
	t.Logf("new leader %s; converged to 4/4/4/4 %s after the kill (%s after the election)",
		newLeader.ID, time.Since(killedAt).Round(time.Millisecond), took.Round(time.Millisecond))
	c.checkWatch(watch)

	st := c.mustStatusView()
	if st.Runs == 0 || st.MovesDone == 0 || st.LastRun == nil {
		t.Errorf("the new leader's balancer did not resume: %+v", st)
	}
	moves := c.moveEvents(since)
	if moves["balance"] < 8 {
		t.Errorf("region moves by cause %v, want at least 8 balance moves", moves)
	}
	if moves["failover"] != 0 {
		t.Errorf("failover moves %d: no datanode failed", moves["failover"])
	}
}

// TestAdminStateBadInput: unknown datanode → 404, non-numeric or zero id →
// 400, wrong method → 405 with Allow; through the leader and a follower.
func TestAdminStateBadInput(t *testing.T) {
	c := startBalancerCluster(t, 1)
	leader := c.waitReady()
	follower := localcluster.Followers(leader, c.Running())[0]
	check := func(n *localcluster.Node, method, path string, wantCode int, wantErr string) {
		t.Helper()
		var r localcluster.Reply
		err := localcluster.Eventually(waitLong, func() error {
			var err error
			r, err = c.SendJSON(method, n.URL(path), "")
			if err != nil {
				return err
			}
			if r.Code == http.StatusServiceUnavailable {
				return fmt.Errorf("503 %s", r.Body)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s %s via %s: %v", method, path, n.ID, err)
		}
		if r.Code != wantCode {
			t.Errorf("%s %s via %s: %s, want %d", method, path, n.ID, r, wantCode)
			return
		}
		var e wire.Error
		if err := json.Unmarshal(r.Body, &e); err != nil || e.Error == "" || e.Code != wantErr {
			t.Errorf("%s %s via %s: body %s, want a JSON error with code %q", method, path, n.ID, r.Body, wantErr)
		}
		if wantCode == http.StatusMethodNotAllowed && r.Header.Get("Allow") != "POST" {
			t.Errorf("%s %s: Allow %q, want POST", method, path, r.Header.Get("Allow"))
		}
	}
	for _, n := range []*localcluster.Node{leader, follower} {
		for _, action := range []string{"cordon", "drain", "uncordon"} {
			check(n, http.MethodPost, "/admin/datanodes/99/"+action, http.StatusNotFound, "not_found")
			check(n, http.MethodPost, "/admin/datanodes/abc/"+action, http.StatusBadRequest, "bad_request")
			check(n, http.MethodPost, "/admin/datanodes/0/"+action, http.StatusBadRequest, "bad_request")
			check(n, http.MethodPost, "/admin/datanodes/-1/"+action, http.StatusBadRequest, "bad_request")
			check(n, http.MethodPost, "/admin/datanodes/18446744073709551616/"+action, http.StatusBadRequest, "bad_request")
			for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
				check(n, m, "/admin/datanodes/1/"+action, http.StatusMethodNotAllowed, "method_not_allowed")
			}
		}
	}
	// Nothing above changed datanode 1.
	ds, err := c.datanodes()
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].ID != 1 || ds[0].AdminState != "active" {
		t.Errorf("datanodes after bad requests: %+v", ds)
	}
	evs, err := c.Events(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Type == "datanode_admin_state" {
			t.Errorf("a bad request left an admin state event: %+v", e)
		}
	}
	// The balancer endpoints are GET only.
	for _, path := range []string{"/admin/balancer/plan", "/admin/balancer/status"} {
		r := c.MustCall(http.MethodPost, path, "")
		if r.Code != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d %s, want 405", path, r.Code, r.Body)
		}
	}
}
