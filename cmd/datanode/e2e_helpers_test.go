package main

// Helpers for the end-to-end failover tests: three real metasrv processes
// and real datanode processes (built once in TestMain) on random loopback
// addresses through deploy/localcluster, driven over HTTP like curl would.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
	"github.com/metasrv/metasrv/server/wire"
)

// The binaries under test, built once by TestMain (not under -short).
var metasrvBin, datanodeBin string

func TestMain(m *testing.M) {
	localcluster.RunTests(m, []string{"./cmd/metasrv", "./cmd/datanode"}, &metasrvBin, &datanodeBin)
}

// Short failover timings given to every metasrv node. The region lease is
// then 3 × 500 ms + 1 s = 2.5 s and the leader's lease margin 250 ms; a
// datanode heartbeating regularly looks failed ≈ 2.0 s after its last
// heartbeat, one a new leader only seeded ≈ 2.15 s after the seed.
const (
	hbInterval  = 500 * time.Millisecond
	failTick    = 200 * time.Millisecond
	regionLease = 3*hbInterval + time.Second
	leaseMargin = hbInterval / 2
	// failoverBound is how long after a kill the regions must be committed
	// elsewhere: the lease plus its margin (which outlast the ≈ 2.0 s
	// detection window here), a few ticks, and slack for a busy machine.
	failoverBound = regionLease + leaseMargin + 5*failTick + 3*time.Second
)

var fastArgs = []string{
	"--heartbeat-interval", hbInterval.String(),
	"--acceptable-heartbeat-pause", "1s",
	"--first-heartbeat-estimate", "500ms",
	"--failover-tick", failTick.String(),
	// The balancer would move regions onto a returning datanode on its own
	// schedule; these tests watch failover alone.
	"--balancer-interval", "0",
}

// Generous bounds for waiting on observable state (busy 2-core machine).
const (
	waitLong = 30 * time.Second
	logTail  = 16 << 10
)

// ecluster is a localcluster.Cluster with datanodes, bound to one test.
type ecluster struct {
	*localcluster.TestCluster
}

// startCluster starts three metasrv nodes (with fastArgs, then extra) and
// n datanodes, waits for a leader and for every datanode to be alive, and
// creates table "t" with regions regions spread over them, served by their
// owners. Every process is killed when the test ends; the logs are printed
// if it failed.
func startCluster(t *testing.T, datanodes, regions int, extra ...string) *ecluster {
	t.Helper()
	localcluster.SkipIfShort(t)
	c := &ecluster{localcluster.StartTest(t, localcluster.TestOptions{
		Options: localcluster.Options{Bin: metasrvBin, DatanodeBin: datanodeBin,
			Args: append(slices.Clone(fastArgs), extra...), Datanodes: datanodes},
		LogTail: logTail, Wait: waitLong, Timeout: 10 * time.Second})}
	c.leader()
	var ids []uint64
	for _, d := range c.Datanodes() {
		ids = append(ids, d.ID)
	}
	c.waitStatus("alive", ids...)
	if regions > 0 {
		r := c.PostJSON("/admin/tables", fmt.Sprintf(`{"name":"t","regions":%d}`, regions))
		if r.Code != http.StatusCreated {
			t.Fatalf("create table: %s", r)
		}
		c.waitServing(c.Datanodes()...)
	}
	return c
}

// leader waits for an agreed leader among the live nodes that has
// finished its leadership barrier (/admin/ready).
func (c *ecluster) leader() *localcluster.Node {
	c.T.Helper()
	var l *localcluster.Node
	c.Eventually("leader ready", func() error {
		var err error
		l, err = c.WaitLeader(5*time.Second, c.Live()...)
		if err != nil {
			return err
		}
		r, err := c.SendJSON(http.MethodGet, l.URL("/admin/ready"), "")
		if err != nil {
			return err
		}
		if r.Code != http.StatusOK {
			return fmt.Errorf("%s /admin/ready: %s", l.ID, r)
		}
		return nil
	})
	return l
}

// pauseAll / resumeAll freeze and thaw every metasrv process.
func (c *ecluster) pauseAll() {
	c.T.Helper()
	for _, n := range c.Running() {
		c.Pause(n)
	}
}

func (c *ecluster) resumeAll() {
	c.T.Helper()
	for _, n := range c.Running() {
		c.Resume(n)
	}
}

// routes reads GET /admin/regions through a live node.
func (c *ecluster) routes() ([]localcluster.Route, error) {
	var rs []localcluster.Route
	err := c.GetJSON("/admin/regions", &rs)
	return rs, err
}

func (c *ecluster) mustRoutes() []localcluster.Route {
	c.T.Helper()
	var rs []localcluster.Route
	c.Eventually("read routes", func() error {
		var err error
		rs, err = c.routes()
		return err
	})
	return rs
}

// ownedBy returns the region ids datanode dn owns in rs, ascending.
func ownedBy(rs []localcluster.Route, dn uint64) []uint64 {
	out := []uint64{}
	for _, r := range rs {
		if r.Datanode == dn {
			out = append(out, r.ID)
		}
	}
	return out
}

func owners(rs []localcluster.Route) map[uint64]uint64 {
	out := map[uint64]uint64{}
	for _, r := range rs {
		out[r.ID] = r.Datanode
	}
	return out
}

// datanodeViews reads GET /admin/datanodes through a live node, by id.
func (c *ecluster) datanodeViews() (map[uint64]wire.Datanode, error) {
	var vs []wire.Datanode
	if err := c.GetJSON("/admin/datanodes", &vs); err != nil {
		return nil, err
	}
	out := map[uint64]wire.Datanode{}
	for _, v := range vs {
		out[v.ID] = v
	}
	return out, nil
}

// waitStatus waits until the leader shows every id with status.
func (c *ecluster) waitStatus(status string, ids ...uint64) {
	c.T.Helper()
	c.Eventually(fmt.Sprintf("datanodes %v %s", ids, status), func() error {
		vs, err := c.datanodeViews()
		if err != nil {
			return err
		}
		for _, id := range ids {
			if v, ok := vs[id]; !ok || v.Status != status {
				return fmt.Errorf("datanode %d: %+v (registered %t), want %s", id, v, ok, status)
			}
		}
		return nil
	})
}

// waitFailedAnd waits until the leader shows dn failed with an expired
// lease and the given deferred/braked flags.
func (c *ecluster) waitFailedAnd(dn uint64, deferred, braked bool) wire.Datanode {
	c.T.Helper()
	var v wire.Datanode
	c.Eventually(fmt.Sprintf("datanode %d failed (deferred=%t braked=%t)", dn, deferred, braked), func() error {
		vs, err := c.datanodeViews()
		if err != nil {
			return err
		}
		v = vs[dn]
		if v.Status != "failed" || !v.LeaseExpired || v.FailoverDeferred != deferred || v.FailoverBraked != braked {
			return fmt.Errorf("datanode %d: %+v", dn, v)
		}
		return nil
	})
	return v
}

// served asks a datanode which regions it serves (GET /regions).
func (c *ecluster) served(d *localcluster.Datanode) ([]uint64, error) {
	ids, err := c.Regions(d)
	if err != nil {
		return nil, err
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// agree checks that each given datanode serves exactly the regions the
// routes give it, and that every region is owned by one of them.
func (c *ecluster) agree(dns ...*localcluster.Datanode) error {
	return c.agreeCover(true, dns...)
}

func (c *ecluster) agreeCover(cover bool, dns ...*localcluster.Datanode) error {
	rs, err := c.routes()
	if err != nil {
		return err
	}
	covered := map[uint64]bool{}
	for _, d := range dns {
		want := ownedBy(rs, d.ID)
		got, err := c.served(d)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("dn%d serves %v, routes give it %v", d.ID, got, want)
		}
		for _, id := range want {
			covered[id] = true
		}
	}
	for _, r := range rs {
		if cover && !covered[r.ID] {
			return fmt.Errorf("region %d is owned by datanode %d, not one of the live ones", r.ID, r.Datanode)
		}
	}
	return nil
}

// waitServing waits until the given datanodes serve exactly their routes
// and cover every region.
func (c *ecluster) waitServing(dns ...*localcluster.Datanode) {
	c.T.Helper()
	c.Eventually("datanodes serve their routes", func() error { return c.agree(dns...) })
}

// waitOwnServed waits until the given datanodes serve exactly their routes
// (other datanodes may own regions too).
func (c *ecluster) waitOwnServed(dns ...*localcluster.Datanode) {
	c.T.Helper()
	c.Eventually("datanodes serve their routes", func() error { return c.agreeCover(false, dns...) })
}

func jsonInto(b []byte, v any) error { return json.Unmarshal(b, v) }

// others returns every datanode but the given ids.
func (c *ecluster) others(ids ...uint64) []*localcluster.Datanode {
	skip := map[uint64]bool{}
	for _, id := range ids {
		skip[id] = true
	}
	var out []*localcluster.Datanode
	for _, d := range c.Datanodes() {
		if !skip[d.ID] {
			out = append(out, d)
		}
	}
	return out
}

// moves returns the region_moved events after since, optionally only those
// from datanode from (0: any).
func (c *ecluster) moves(since, from uint64) []localcluster.Event {
	c.T.Helper()
	var out []localcluster.Event
	c.Eventually("read events", func() error {
		evs, err := c.Events(since)
		if err != nil {
			return err
		}
		out = nil
		for _, e := range evs {
			if e.Type == "region_moved" && (from == 0 || e.Fields["from"] == strconv.FormatUint(from, 10)) {
				out = append(out, e)
			}
		}
		return nil
	})
	return out
}

// metric reads one unlabelled sample from node n's /metrics.
func (c *ecluster) metric(n *localcluster.Node, name string) (float64, error) {
	r, err := c.SendJSON(http.MethodGet, n.URL("/metrics"), "")
	if err != nil {
		return 0, err
	}
	if r.Code != http.StatusOK {
		return 0, fmt.Errorf("%s /metrics: %s", n.ID, r)
	}
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s /metrics has no %s", n.ID, name)
}

func (c *ecluster) mustMetric(n *localcluster.Node, name string) float64 {
	c.T.Helper()
	var v float64
	c.Eventually("read "+name, func() error {
		var err error
		v, err = c.metric(n, name)
		return err
	})
	return v
}

// waitTicks waits until the leader's failover loop has ticked at least
// ticks more times, checking hold (what must stay true meanwhile) at
// every poll and once more at the end.
func (c *ecluster) waitTicks(leader *localcluster.Node, ticks int, hold func() error) {
	c.T.Helper()
	start := c.mustMetric(leader, "metasrv_failover_ticks_total")
	c.Eventually(fmt.Sprintf("%d failover ticks on %s", ticks, leader.ID), func() error {
		if err := hold(); err != nil {
			c.T.Fatalf("while waiting for failover ticks: %v", err)
		}
		v, err := c.metric(leader, "metasrv_failover_ticks_total")
		if err != nil {
			return err
		}
		if v < start+float64(ticks) {
			return fmt.Errorf("%s: %v failover ticks, want %v", leader.ID, v, start+float64(ticks))
		}
		return nil
	})
	if err := hold(); err != nil {
		c.T.Fatalf("after %d failover ticks: %v", ticks, err)
	}
}

// unchanged returns a check that the routes still equal before.
func (c *ecluster) unchanged(before []localcluster.Route) func() error {
	want := owners(before)
	return func() error {
		rs, err := c.routes()
		if err != nil {
			return err
		}
		if got := owners(rs); !reflect.DeepEqual(got, want) {
			return fmt.Errorf("routes changed: %v, were %v", got, want)
		}
		return nil
	}
}

// lastHeartbeat is when the leader last heard from datanode d (its
// /admin/heartbeat history), to the millisecond.
func (c *ecluster) lastHeartbeat(d *localcluster.Datanode) (time.Time, int64) {
	c.T.Helper()
	var last time.Time
	var epoch int64
	c.Eventually(fmt.Sprintf("dn%d heartbeat history", d.ID), func() error {
		var hist [][]wire.HeartbeatStat
		if err := c.GetJSON("/admin/heartbeat?addr="+d.Addr, &hist); err != nil {
			return err
		}
		if len(hist) != 1 || len(hist[0]) == 0 {
			return fmt.Errorf("dn%d: heartbeat history %v", d.ID, hist)
		}
		hb := hist[0][len(hist[0])-1]
		last, epoch = time.UnixMilli(hb.TimestampMillis), hb.NodeEpoch
		return nil
	})
	return last, epoch
}

// persisted reads the region set a datanode keeps in its data dir.
func persisted(t *testing.T, d *localcluster.Datanode) []uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.DataDir, "regions.json"))
	if os.IsNotExist(err) {
		return []uint64{}
	}
	if err != nil {
		t.Fatalf("dn%d regions.json: %v", d.ID, err)
	}
	var ids []uint64
	if err := json.Unmarshal(b, &ids); err != nil {
		t.Fatalf("dn%d regions.json %q: %v", d.ID, b, err)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func intersect(a, b []uint64) []uint64 {
	in := map[uint64]bool{}
	for _, x := range a {
		in[x] = true
	}
	var out []uint64
	for _, x := range b {
		if in[x] {
			out = append(out, x)
		}
	}
	return out
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}
