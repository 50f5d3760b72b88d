package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metasrv/metasrv/server/wire"
)

// Datanode-facing tests: heartbeats, tables, regions, datanode admin,
// failover and the balancer, with fake datanodes heartbeating in process.

// dnTimings makes heartbeats, leases and failure detection fast.
func dnTimings(more ...func(*Config)) func(*Config) {
	return func(c *Config) {
		c.HeartbeatInterval = 200 * time.Millisecond
		c.RegionLease = time.Second
		c.FailoverTick = 50 * time.Millisecond
		c.FailureThreshold = 8
		c.MinStdDeviation = 50 * time.Millisecond
		c.AcceptableHeartbeatPause = 500 * time.Millisecond
		c.FirstHeartbeatEstimate = 200 * time.Millisecond
		for _, m := range more {
			m(c)
		}
	}
}

// dnWorld is a set of fake datanodes heartbeating to one cluster. Every
// change to what a fake serves happens under mu, and a region can only
// start being served when a heartbeat answer is applied, so checking at
// each apply finds every moment two fakes serve one region.
type dnWorld struct {
	t     *testing.T
	c     *tcluster
	mu    sync.Mutex
	fakes []*fakeDN
	// violations are the moments two fakes served one region.
	violations []string
	stop       chan struct{}
	wg         sync.WaitGroup
	client     *http.Client
}

type fakeDN struct {
	w     *dnWorld
	id    uint64
	addr  string
	start int64
	// Guarded by w.mu.
	seq        uint64
	serving    map[uint64]bool
	leaseUntil time.Time
	target     string
	paused     bool
	beats      int // successful heartbeats
}

// servedTable starts a one-node cluster with three fake datanodes and a
// six-region table whose regions are all served.
func servedTable(t *testing.T, table string) (*tcluster, *tnode, *dnWorld) {
	c := startCluster(t, 1, dnTimings())
	l := c.leader()
	w := newDNWorld(t, c)
	for id := uint64(1); id <= 3; id++ {
		w.add(id, nil)
	}
	c.regWaitAlive(l, 1, 2, 3)
	c.regCreateTable(l, table, 6)
	c.regWaitServed(l, w)
	return c, l, w
}

func newDNWorld(t *testing.T, c *tcluster) *dnWorld {
	w := &dnWorld{t: t, c: c, stop: make(chan struct{}), client: &http.Client{Timeout: 2 * time.Second}}
	t.Cleanup(func() {
		close(w.stop)
		w.wg.Wait()
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, v := range w.violations {
			t.Errorf("region served twice: %s", v)
		}
	})
	return w
}

// add starts fake datanode id, first sending to node tn (nil: node 1).
func (w *dnWorld) add(id uint64, tn *tnode) *fakeDN {
	if tn == nil {
		tn = w.c.nodes[0]
	}
	f := &fakeDN{w: w, id: id, addr: fmt.Sprintf("127.0.0.1:%d", 41000+id), start: time.Now().UnixMilli(),
		serving: map[uint64]bool{}, target: tn.url}
	w.mu.Lock()
	w.fakes = append(w.fakes, f)
	w.mu.Unlock()
	interval := w.c.nodes[0].cfg.HeartbeatInterval
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		deadline := time.After(3 * waitLong)
		for i := 0; i < 2000; i++ { // bounded by count and time
			f.beat()
			select {
			case <-w.stop:
				return
			case <-deadline:
				return
			case <-tick.C:
			}
		}
	}()
	return f
}

// servingLocked is what f serves at now: nothing once its lease ran out.
func (f *fakeDN) servingLocked(now time.Time) []uint64 {
	if !now.Before(f.leaseUntil) {
		clear(f.serving)
	}
	out := make([]uint64, 0, len(f.serving))
	for r := range f.serving {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Serving is what the fake serves now.
func (f *fakeDN) Serving() []uint64 {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	return f.servingLocked(time.Now())
}

// pause stops (or resumes) heartbeats; it serves on until its lease ends.
func (f *fakeDN) pause(p bool) {
	f.w.mu.Lock()
	f.paused = p
	f.w.mu.Unlock()
}

func (f *fakeDN) beat() {
	w := f.w
	w.mu.Lock()
	if f.paused {
		w.mu.Unlock()
		return
	}
	f.seq++
	hb := wire.Heartbeat{ID: f.id, Addr: f.addr, StartTimeMs: f.start, Seq: f.seq, Regions: f.servingLocked(time.Now())}
	target := f.target
	w.mu.Unlock()

	sent := time.Now()
	body, _ := json.Marshal(hb)
	resp, err := w.client.Post(target+"/v1/heartbeat", "application/json", bytes.NewReader(body))
	var rb []byte
	status := 0
	if err == nil {
		rb, _ = regReadAll(resp)
		status = resp.StatusCode
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case status == http.StatusOK:
		var hr wire.HeartbeatResponse
		if json.Unmarshal(rb, &hr) != nil {
			return
		}
		now := time.Now()
		f.servingLocked(now) // drop everything if the old lease already ran out
		for _, r := range hr.Close {
			delete(f.serving, r)
		}
		for _, r := range hr.Open {
			f.serving[r] = true
		}
		f.leaseUntil = sent.Add(time.Duration(hr.LeaseMs) * time.Millisecond)
		f.beats++
		w.checkLocked(now)
	case status == http.StatusServiceUnavailable && wire.LeaderHint(rb) != "":
		f.target = "http://" + wire.LeaderHint(rb)
	default: // unreachable or no leader: try the next node
		for i, tn := range w.c.nodes {
			if tn.url == target {
				f.target = w.c.nodes[(i+1)%len(w.c.nodes)].url
				break
			}
		}
	}
}

func (w *dnWorld) checkLocked(now time.Time) {
	by := map[uint64]uint64{}
	for _, f := range w.fakes {
		for _, r := range f.servingLocked(now) {
			if other, ok := by[r]; ok {
				w.violations = append(w.violations, fmt.Sprintf("region %d by datanodes %d and %d at %s", r, other, f.id, now.Format(time.StampMilli)))
			}
			by[r] = f.id
		}
	}
}

// servedBy maps each served region to the fakes serving it.
func (w *dnWorld) servedBy() map[uint64][]uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	out := map[uint64][]uint64{}
	for _, f := range w.fakes {
		for _, r := range f.servingLocked(now) {
			out[r] = append(out[r], f.id)
		}
	}
	return out
}

func regReadAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err := b.ReadFrom(resp.Body)
	return b.Bytes(), err
}

// datanodes is GET /admin/datanodes by id.
func (c *tcluster) regDatanodes(tn *tnode) map[uint64]wire.Datanode {
	c.t.Helper()
	var dns []wire.Datanode
	c.mustJSON(tn, http.MethodGet, "/admin/datanodes", nil, http.StatusOK, &dns)
	out := map[uint64]wire.Datanode{}
	for _, d := range dns {
		out[d.ID] = d
	}
	return out
}

func (c *tcluster) regRoutes(tn *tnode, query string) []wire.Route {
	c.t.Helper()
	var rs []wire.Route
	c.mustJSON(tn, http.MethodGet, "/admin/regions"+query, nil, http.StatusOK, &rs)
	return rs
}

// waitAlive waits until every id is registered and alive.
func (c *tcluster) regWaitAlive(tn *tnode, ids ...uint64) {
	c.t.Helper()
	eventually(c.t, fmt.Sprintf("datanodes %v alive", ids), func() error {
		dns := c.regDatanodes(tn)
		for _, id := range ids {
			if d, ok := dns[id]; !ok || d.Status != "alive" {
				return fmt.Errorf("datanode %d: %+v (registered %t)", id, d, ok)
			}
		}
		return nil
	})
}

// waitServed waits until every region is served by exactly its owner and
// no longer in flight.
func (c *tcluster) regWaitServed(tn *tnode, w *dnWorld) {
	c.t.Helper()
	eventually(c.t, "every region served by its owner", func() error {
		served := w.servedBy()
		for _, r := range c.regRoutes(tn, "") {
			if got := served[r.ID]; len(got) != 1 || got[0] != r.Datanode {
				return fmt.Errorf("region %d owned by %d is served by %v", r.ID, r.Datanode, got)
			}
			if r.InFlight {
				return fmt.Errorf("region %d still in flight", r.ID)
			}
		}
		return nil
	})
}

type regCreated struct {
	Name    string       `json:"name"`
	Regions []wire.Route `json:"regions"`
}

func (c *tcluster) regCreateTable(tn *tnode, name string, regions int) regCreated {
	c.t.Helper()
	var ct regCreated
	c.mustJSON(tn, http.MethodPost, "/admin/tables", map[string]any{"name": name, "regions": regions}, http.StatusCreated, &ct)
	return ct
}

func (c *tcluster) regMaintenance(tn *tnode, on bool) {
	c.t.Helper()
	c.mustJSON(tn, http.MethodPost, fmt.Sprintf("/admin/maintenance?enable=%t", on), nil, http.StatusOK, nil)
}

func regWantErr(t *testing.T, r reply, status int, code string) {
	t.Helper()
	if r.status != status || r.code() != code {
		t.Fatalf("got %s, want %d %s", r, status, code)
	}
	if status == http.StatusServiceUnavailable && r.header.Get("Retry-After") == "" {
		t.Fatalf("503 without Retry-After: %s", r)
	}
}

func regPostHB(c *tcluster, tn *tnode, hb wire.Heartbeat) (wire.HeartbeatResponse, reply) {
	c.t.Helper()
	r := c.do(tn, http.MethodPost, "/v1/heartbeat", hb)
	var hr wire.HeartbeatResponse
	if r.status == http.StatusOK {
		if err := json.Unmarshal(r.body, &hr); err != nil {
			c.t.Fatalf("heartbeat answer %s: %v", r, err)
		}
	}
	return hr, r
}

func TestHeartbeatBadBodies(t *testing.T) {
	c := startCluster(t, 1, nil)
	l := c.leader()
	for _, tc := range []struct{ name, body string }{
		{"empty", ""},
		{"not JSON", "hello"},
		{"trailing data", `{"id":1,"addr":"127.0.0.1:1"} {}`},
		{"wrong type", `{"id":"one","addr":"127.0.0.1:1"}`},
		{"id 0", `{"id":0,"addr":"127.0.0.1:1"}`},
		{"id missing", `{"addr":"127.0.0.1:1"}`},
		{"addr missing", `{"id":1}`},
		{"addr without port", `{"id":1,"addr":"127.0.0.1"}`},
		{"addr without host", `{"id":1,"addr":":4001"}`},
		{"addr with a space", `{"id":1,"addr":"a b:4001"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			regWantErr(t, c.do(l, http.MethodPost, "/v1/heartbeat", tc.body), http.StatusBadRequest, "bad_request")
		})
	}
	if r := c.do(l, http.MethodGet, "/v1/heartbeat", nil); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Fatalf("GET /v1/heartbeat: %s, Allow %q", r, r.header.Get("Allow"))
	}
	if dns := c.regDatanodes(l); len(dns) != 0 {
		t.Fatalf("bad heartbeats registered datanodes: %+v", dns)
	}
}

func TestHeartbeatRegistersAndIgnoresStaleSeq(t *testing.T) {
	c := startCluster(t, 1, nil)
	l := c.leader()
	start := time.Now().UnixMilli()
	hb := func(seq uint64, regions ...uint64) wire.HeartbeatResponse {
		t.Helper()
		hr, r := regPostHB(c, l, wire.Heartbeat{ID: 7, Addr: "127.0.0.1:4007", StartTimeMs: start, Seq: seq, Regions: regions})
		if r.status != http.StatusOK {
			t.Fatalf("heartbeat seq %d: %s", seq, r)
		}
		return hr
	}
	first := hb(1)
	if first.LeaderID != l.id || first.HeartbeatIntervalMs != l.cfg.HeartbeatInterval.Milliseconds() ||
		first.LeaseMs != l.cfg.RegionLease.Milliseconds() || len(first.Regions)+len(first.Open)+len(first.Close) != 0 {
		t.Fatalf("first answer: %+v", first)
	}
	d, ok := c.regDatanodes(l)[7]
	if !ok || d.Addr != "127.0.0.1:4007" || d.Status != "alive" || d.AdminState != "active" || d.Regions != 0 {
		t.Fatalf("registered datanode: %+v (found %t)", d, ok)
	}

	ct := c.regCreateTable(l, "metrics", 1)
	if len(ct.Regions) != 1 || ct.Regions[0].Datanode != 7 || !ct.Regions[0].InFlight {
		t.Fatalf("created: %+v", ct)
	}
	rid := ct.Regions[0].ID
	if got := hb(2); !slices.Equal(got.Regions, []uint64{rid}) || !slices.Equal(got.Open, []uint64{rid}) {
		t.Fatalf("after create: %+v, want region %d to open", got, rid)
	}
	if rs := c.regRoutes(l, ""); !rs[0].InFlight {
		t.Fatalf("in flight before the owner reports it: %+v", rs)
	}
	if got := hb(3, rid, 999); len(got.Open) != 0 || !slices.Equal(got.Close, []uint64{999}) {
		t.Fatalf("serving it and an unowned region: %+v, want close [999]", got)
	}
	if rs := c.regRoutes(l, ""); rs[0].InFlight {
		t.Fatalf("still in flight once reported: %+v", rs)
	}

	// A late heartbeat with an older seq changes nothing: the region is
	// still reported, and it is not kept in the history.
	var before [][]wire.HeartbeatStat
	c.mustJSON(l, http.MethodGet, "/admin/heartbeat", nil, http.StatusOK, &before)
	if got := hb(2); len(got.Open) != 0 || got.LeaseMs != 0 || got.AckSeq == nil || *got.AckSeq != 0 {
		t.Fatalf("stale heartbeat was granted opens or a lease: %+v", got)
	}

	if rs := c.regRoutes(l, ""); rs[0].InFlight {
		t.Fatalf("a stale heartbeat (seq 2 after 3) that reports nothing counted: %+v", rs)
	}
	var after [][]wire.HeartbeatStat
	c.mustJSON(l, http.MethodGet, "/admin/heartbeat", nil, http.StatusOK, &after)
	if len(before) != 1 || len(after) != 1 || len(after[0]) != len(before[0]) {
		t.Fatalf("history before %d, after a stale heartbeat %d", len(before[0]), len(after[0]))
	}
	if last := after[0][len(after[0])-1]; last.RegionNum != 2 || last.ID != 7 || last.NodeEpoch != start || last.Addr != "127.0.0.1:4007" {
		t.Fatalf("last kept heartbeat: %+v", last)
	}
	if got := hb(4, rid); got.LeaseMs != l.cfg.RegionLease.Milliseconds() || got.AckSeq == nil || *got.AckSeq != 4 {
		t.Fatalf("a taken heartbeat's answer does not acknowledge it: %+v", got)
	}

	// A new address re-registers the datanode.
	if _, r := regPostHB(c, l, wire.Heartbeat{ID: 7, Addr: "127.0.0.1:5007", StartTimeMs: start + 1, Seq: 1}); r.status != http.StatusOK {
		t.Fatalf("heartbeat from a new address: %s", r)
	}
	if d := c.regDatanodes(l)[7]; d.Addr != "127.0.0.1:5007" {
		t.Fatalf("after moving: %+v", d)
	}
}

func TestTablesAPI(t *testing.T) {
	c := startCluster(t, 1, dnTimings())
	l := c.leader()
	regWantErr(t, c.do(l, http.MethodPost, "/admin/tables", `{"name":"early","regions":2}`), http.StatusServiceUnavailable, "no_datanode")

	w := newDNWorld(t, c)
	for id := uint64(1); id <= 3; id++ {
		w.add(id, nil)
	}
	c.regWaitAlive(l, 1, 2, 3)
	ct := c.regCreateTable(l, "cpu", 6)
	if ct.Name != "cpu" || len(ct.Regions) != 6 {
		t.Fatalf("created: %+v", ct)
	}
	per := map[uint64]int{}
	for _, r := range ct.Regions {
		if r.Table != "cpu" || !r.InFlight {
			t.Fatalf("route: %+v", r)
		}
		per[r.Datanode]++
	}
	if per[1] != 2 || per[2] != 2 || per[3] != 2 {
		t.Fatalf("placement %v, want 2 on each of 3 datanodes", per)
	}
	regWantErr(t, c.do(l, http.MethodPost, "/admin/tables", `{"name":"cpu","regions":1}`), http.StatusConflict, "conflict")

	long := strings.Repeat("a", 129)
	for _, body := range []string{
		``, `nope`, `{"regions":1}`, `{"name":"","regions":1}`, `{"name":"1cpu","regions":1}`,
		`{"name":"a b","regions":1}`, `{"name":"a/b","regions":1}`, `{"name":"` + long + `","regions":1}`,
		`{"name":"mem"}`, `{"name":"mem","regions":0}`, `{"name":"mem","regions":-1}`, `{"name":"mem","regions":10001}`,
		`{"name":"mem","regions":"2"}`,
	} {
		t.Run("bad "+body, func(t *testing.T) {
			regWantErr(t, c.do(l, http.MethodPost, "/admin/tables", body), http.StatusBadRequest, "bad_request")
		})
	}
	c.regCreateTable(l, "mem.v2_x-y", 1)

	var tables []struct {
		Name    string   `json:"name"`
		Regions []uint64 `json:"regions"`
	}
	c.mustJSON(l, http.MethodGet, "/admin/tables", nil, http.StatusOK, &tables)
	sort.Slice(tables, func(i, j int) bool { return tables[i].Name < tables[j].Name })
	if len(tables) != 2 || tables[0].Name != "cpu" || len(tables[0].Regions) != 6 || tables[1].Name != "mem.v2_x-y" {
		t.Fatalf("tables: %+v", tables)
	}
	c.regWaitServed(l, w)

	var dropped map[string]string
	c.mustJSON(l, http.MethodDelete, "/admin/tables/cpu", nil, http.StatusOK, &dropped)
	if dropped["dropped"] != "cpu" {
		t.Fatalf("drop: %v", dropped)
	}
	regWantErr(t, c.do(l, http.MethodDelete, "/admin/tables/cpu", nil), http.StatusNotFound, "not_found")
	regWantErr(t, c.do(l, http.MethodDelete, "/admin/tables/1bad", nil), http.StatusBadRequest, "bad_request")
	if rs := c.regRoutes(l, "?table=cpu"); len(rs) != 0 {
		t.Fatalf("regions of a dropped table: %+v", rs)
	}
	eventually(t, "the dropped table's regions closed", func() error {
		if served := w.servedBy(); len(served) != 1 {
			return fmt.Errorf("served: %v", served)
		}
		return nil
	})
}

func TestRegionsAPIAndMigrate(t *testing.T) {
	c := startCluster(t, 1, dnTimings())
	l := c.leader()
	w := newDNWorld(t, c)
	w.add(1, nil)
	w.add(2, nil)
	c.regWaitAlive(l, 1, 2)
	ct := c.regCreateTable(l, "disk", 4)
	c.regCreateTable(l, "net", 2)
	c.regWaitServed(l, w)

	if rs := c.regRoutes(l, "?table=disk"); len(rs) != 4 {
		t.Fatalf("?table=disk: %+v", rs)
	}
	if rs := c.regRoutes(l, "?table=nope"); len(rs) != 0 {
		t.Fatalf("?table=nope: %+v", rs)
	}
	if rs := c.regRoutes(l, ""); len(rs) != 6 {
		t.Fatalf("all regions: %+v", rs)
	}
	on1 := c.regRoutes(l, "?datanode=1")
	for _, r := range on1 {
		if r.Datanode != 1 {
			t.Fatalf("?datanode=1: %+v", on1)
		}
	}
	if rs := c.regRoutes(l, "?table=disk&datanode=2"); len(rs) != 2 {
		t.Fatalf("?table=disk&datanode=2: %+v", rs)
	}
	for _, q := range []string{"?datanode=x", "?datanode=0", "?datanode=-1", "?datanode="} {
		regWantErr(t, c.do(l, http.MethodGet, "/admin/regions"+q, nil), http.StatusBadRequest, "bad_request")
	}

	var reg wire.Route
	for _, r := range ct.Regions {
		if r.Datanode == 1 {
			reg = r
			break
		}
	}
	migrate := func(query string, want int) wire.Route {
		t.Helper()
		var got wire.Route
		path := fmt.Sprintf("/admin/regions/%d/migrate%s", reg.ID, query)
		var r reply
		// The target must be alive; a stall on this busy machine may make
		// it suspect for a moment.
		eventually(t, "migrate "+query, func() error {
			r = c.do(l, http.MethodPost, path, nil)
			if r.status != want {
				return fmt.Errorf("%s, want %d", r, want)
			}
			return nil
		})
		if want == http.StatusOK {
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
		}
		return got
	}
	moved := migrate("?to=2", http.StatusOK)
	if moved.ID != reg.ID || moved.Datanode != 2 || moved.Version != reg.Version+1 || !moved.InFlight {
		t.Fatalf("moved %+v, from %+v", moved, reg)
	}
	if same := migrate("?to=2&from=2", http.StatusOK); same.Datanode != 2 || same.Version != moved.Version {
		t.Fatalf("migrating to its owner: %+v", same)
	}
	regWantErr(t, c.do(l, http.MethodPost, fmt.Sprintf("/admin/regions/%d/migrate?to=1&from=1", reg.ID), nil), http.StatusConflict, "conflict")
	regWantErr(t, c.do(l, http.MethodPost, "/admin/regions/9999/migrate?to=1", nil), http.StatusNotFound, "not_found")
	regWantErr(t, c.do(l, http.MethodPost, fmt.Sprintf("/admin/regions/%d/migrate?to=99", reg.ID), nil), http.StatusNotFound, "not_found")
	for _, path := range []string{
		fmt.Sprintf("/admin/regions/%d/migrate", reg.ID),
		fmt.Sprintf("/admin/regions/%d/migrate?to=x", reg.ID),
		fmt.Sprintf("/admin/regions/%d/migrate?to=1&from=0", reg.ID),
		"/admin/regions/x/migrate?to=1",
	} {
		regWantErr(t, c.do(l, http.MethodPost, path, nil), http.StatusBadRequest, "bad_request")
	}
	c.regWaitServed(l, w)

	// Manual moves are allowed during maintenance.
	c.regMaintenance(l, true)
	if back := migrate("?to=1&from=2", http.StatusOK); back.Datanode != 1 {
		t.Fatalf("migrate during maintenance: %+v", back)
	}
	var page wire.EventsPage
	c.mustJSON(l, http.MethodGet, "/admin/events", nil, http.StatusOK, &page)
	var causes []string
	for _, e := range page.Events {
		if e.Type == "region_moved" && e.Fields["region"] == fmt.Sprint(reg.ID) {
			causes = append(causes, e.Fields["cause"])
		}
	}
	if !slices.Equal(causes, []string{"manual", "manual"}) {
		t.Fatalf("region_moved causes: %v", causes)
	}
	c.regWaitServed(l, w)
	c.regMaintenance(l, false)
}

func TestDatanodeAdminStates(t *testing.T) {
	c, l, w := servedTable(t, "a")

	type stateAnswer struct {
		ID         uint64 `json:"id"`
		AdminState string `json:"admin_state"`
		Regions    int    `json:"regions"`
	}
	set := func(id uint64, verb, want string) stateAnswer {
		t.Helper()
		var got stateAnswer
		c.mustJSON(l, http.MethodPost, fmt.Sprintf("/admin/datanodes/%d/%s", id, verb), nil, http.StatusOK, &got)
		if got.ID != id || got.AdminState != want {
			t.Fatalf("%s %d: %+v, want %s", verb, id, got, want)
		}
		if d := c.regDatanodes(l)[id]; d.AdminState != want {
			t.Fatalf("after %s: %+v", verb, d)
		}
		return got
	}
	if got := set(1, "cordon", "cordoned"); got.Regions != 2 {
		t.Fatalf("cordon keeps the regions: %+v", got)
	}
	for _, r := range c.regCreateTable(l, "b", 4).Regions {
		if r.Datanode == 1 {
			t.Fatalf("a region placed on a cordoned datanode: %+v", r)
		}
	}
	set(1, "uncordon", "active")
	for _, verb := range []string{"cordon", "drain", "uncordon"} {
		regWantErr(t, c.do(l, http.MethodPost, "/admin/datanodes/99/"+verb, nil), http.StatusNotFound, "not_found")
		regWantErr(t, c.do(l, http.MethodPost, "/admin/datanodes/x/"+verb, nil), http.StatusBadRequest, "bad_request")
	}

	// Drain runs during maintenance: an operator asked for it.
	c.regMaintenance(l, true)
	set(2, "drain", "draining")
	eventually(t, "datanode 2 drained", func() error {
		if rs := c.regRoutes(l, "?datanode=2"); len(rs) != 0 {
			return fmt.Errorf("%d regions left", len(rs))
		}
		return nil
	})
	c.regWaitServed(l, w)
	if got := w.fakes[1].Serving(); len(got) != 0 {
		t.Fatalf("drained datanode still serves %v", got)
	}

	regWantErr(t, c.do(l, http.MethodDelete, "/admin/datanodes/3", nil), http.StatusConflict, "conflict")
	regWantErr(t, c.do(l, http.MethodDelete, "/admin/datanodes/99", nil), http.StatusNotFound, "not_found")
	regWantErr(t, c.do(l, http.MethodDelete, "/admin/datanodes/0", nil), http.StatusBadRequest, "bad_request")
	// The drained datanode holds nothing and serves nothing: it may go
	// (its next heartbeat registers it again).
	c.mustJSON(l, http.MethodDelete, "/admin/datanodes/2", nil, http.StatusOK, nil)
	c.regMaintenance(l, false)
	c.regWaitAlive(l, 2)
}

func TestFailoverDeferredByMaintenance(t *testing.T) {
	c, l, w := servedTable(t, "f")
	c.regMaintenance(l, true)

	w.fakes[0].pause(true) // datanode 1 stops heartbeating
	eventually(t, "datanode 1 failed, its failover deferred", func() error {
		d := c.regDatanodes(l)[1]
		if d.Status != "failed" || !d.FailoverDeferred || !d.LeaseExpired || d.FailoverBraked {
			return fmt.Errorf("%+v", d)
		}
		return nil
	})
	if rs := c.regRoutes(l, "?datanode=1"); len(rs) != 2 {
		t.Fatalf("regions moved off the failed datanode during maintenance: %+v", rs)
	}
	if got := w.fakes[0].Serving(); len(got) != 0 {
		t.Fatalf("datanode 1 serves %v after its lease ran out", got)
	}

	c.regMaintenance(l, false)
	eventually(t, "datanode 1's regions failed over", func() error {
		if rs := c.regRoutes(l, "?datanode=1"); len(rs) != 0 {
			return fmt.Errorf("%d still on datanode 1", len(rs))
		}
		if d := c.regDatanodes(l)[1]; d.FailoverDeferred {
			return fmt.Errorf("still deferred: %+v", d)
		}
		return nil
	})
	c.regWaitServed(l, w)
	var page wire.EventsPage
	c.mustJSON(l, http.MethodGet, "/admin/events", nil, http.StatusOK, &page)
	failovers := 0
	for _, e := range page.Events {
		if e.Type == "region_moved" && e.Fields["cause"] == "failover" && e.Fields["from"] == "1" {
			failovers++
		}
	}
	if failovers != 2 {
		t.Fatalf("%d failover moves from datanode 1, want 2", failovers)
	}
}

func TestBalancerViews(t *testing.T) {
	c := startCluster(t, 1, dnTimings(func(c *Config) {
		c.BalancerInterval = 100 * time.Millisecond
		c.BalancerTolerance = 1
	}))
	l := c.leader()
	w := newDNWorld(t, c)
	w.add(1, nil)
	c.regWaitAlive(l, 1)
	c.regCreateTable(l, "skew", 6)
	c.regWaitServed(l, w)

	type plan struct {
		Moves        []map[string]any `json:"moves"`
		SpreadBefore int              `json:"spread_before"`
		SpreadAfter  int              `json:"spread_after"`
		Paused       bool             `json:"paused"`
		PausedReason string           `json:"paused_reason"`
	}
	type status struct {
		Enabled      bool   `json:"enabled"`
		Interval     string `json:"interval"`
		Paused       bool   `json:"paused"`
		PausedReason string `json:"paused_reason"`
		Runs         uint64 `json:"runs"`
		MovesDone    uint64 `json:"moves_done"`
	}
	c.regMaintenance(l, true)
	w.add(2, nil)
	c.regWaitAlive(l, 1, 2)
	eventually(t, "balancer paused by maintenance", func() error {
		var p plan
		c.mustJSON(l, http.MethodGet, "/admin/balancer/plan", nil, http.StatusOK, &p)
		var s status
		c.mustJSON(l, http.MethodGet, "/admin/balancer/status", nil, http.StatusOK, &s)
		if !p.Paused || p.PausedReason != "maintenance" || p.SpreadBefore != 6 || len(p.Moves) == 0 || p.SpreadAfter >= 6 {
			return fmt.Errorf("plan %+v", p)
		}
		if !s.Enabled || s.Interval != "100ms" || !s.Paused || s.PausedReason != "maintenance" || s.Runs == 0 || s.MovesDone != 0 {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
	if rs := c.regRoutes(l, "?datanode=2"); len(rs) != 0 {
		t.Fatalf("balanced during maintenance: %+v", rs)
	}

	c.regMaintenance(l, false)
	eventually(t, "balanced", func() error {
		var p plan
		c.mustJSON(l, http.MethodGet, "/admin/balancer/plan", nil, http.StatusOK, &p)
		if p.Paused || len(p.Moves) != 0 || p.SpreadBefore > 1 {
			return fmt.Errorf("plan %+v", p)
		}
		if n := len(c.regRoutes(l, "?datanode=2")); n != 3 {
			return fmt.Errorf("%d regions on datanode 2", n)
		}
		return nil
	})
	c.regWaitServed(l, w)

	var leases []wire.NodeLease
	c.mustJSON(l, http.MethodGet, "/admin/node-lease", nil, http.StatusOK, &leases)
	if len(leases) != 2 || leases[0].Name["node_id"] != 1 || leases[1].Name["node_id"] != 2 ||
		leases[0].Lease.NodeAddr != w.fakes[0].addr || leases[0].Lease.TimestampMillis == 0 || leases[0].HumanTime == "" {
		t.Fatalf("node leases: %+v", leases)
	}
	var all, one [][]wire.HeartbeatStat
	c.mustJSON(l, http.MethodGet, "/admin/heartbeat", nil, http.StatusOK, &all)
	c.mustJSON(l, http.MethodGet, "/admin/heartbeat?addr="+w.fakes[1].addr, nil, http.StatusOK, &one)
	if len(all) != 2 || len(one) != 1 || len(one[0]) == 0 || one[0][0].ID != 2 || one[0][0].Addr != w.fakes[1].addr {
		t.Fatalf("heartbeats: all %d, one %+v", len(all), one)
	}
	for _, s := range one[0][1:] {
		if s.RegionStats == nil {
			t.Fatalf("region_stats is null: %+v", s)
		}
	}
	c.mustJSON(l, http.MethodGet, "/admin/heartbeat?addr=127.0.0.1:1", nil, http.StatusOK, &one)
	if len(one) != 0 {
		t.Fatalf("heartbeats of an unknown addr: %+v", one)
	}
	for _, q := range []string{"?addr=nope", "?addr=127.0.0.1", "?addr=:1"} {
		regWantErr(t, c.do(l, http.MethodGet, "/admin/heartbeat"+q, nil), http.StatusBadRequest, "bad_request")
	}
}

// TestDatanodeViewsThroughFollower: heartbeats to a follower are turned
// away with the leader's address; the leader-only views are forwarded;
// a follower's own (stale) view knows no detector state.
func TestDatanodeViewsThroughFollower(t *testing.T) {
	c := startCluster(t, 3, dnTimings())
	l, f := c.leader(), c.follower()

	_, r := regPostHB(c, f, wire.Heartbeat{ID: 5, Addr: "127.0.0.1:4005", Seq: 1})
	regWantErr(t, r, http.StatusServiceUnavailable, "not_leader")
	if e := wire.ParseError(r.body); e.LeaderID != l.id || e.LeaderRPCAddr != l.cfg.AdvertiseRPCAddr || !wire.Retryable(r.body) {
		t.Fatalf("not_leader answer %s, want leader %s at %s", r, l.id, l.cfg.AdvertiseRPCAddr)
	}
	regWantErr(t, c.do(f, http.MethodPost, "/v1/heartbeat", `{"id":0}`), http.StatusBadRequest, "bad_request")

	w := newDNWorld(t, c)
	w.add(1, f) // follows the hint to the leader
	w.add(2, f)
	c.regWaitAlive(f, 1, 2)
	ct := c.regCreateTable(f, "fw", 4)
	if len(ct.Regions) != 4 {
		t.Fatalf("created through a follower: %+v", ct)
	}
	c.regWaitServed(f, w)

	var p map[string]any
	c.mustJSON(f, http.MethodGet, "/admin/balancer/plan", nil, http.StatusOK, &p)
	for _, k := range []string{"moves", "spread_before", "spread_after", "reason", "paused", "paused_reason"} {
		if _, ok := p[k]; !ok {
			t.Fatalf("plan through a follower has no %q: %v", k, p)
		}
	}
	var s map[string]any
	c.mustJSON(f, http.MethodGet, "/admin/balancer/status", nil, http.StatusOK, &s)
	if s["enabled"] != false || s["paused"] != false {
		t.Fatalf("status through a follower: %v", s)
	}
	var leases []wire.NodeLease
	c.mustJSON(f, http.MethodGet, "/admin/node-lease", nil, http.StatusOK, &leases)
	if len(leases) != 2 {
		t.Fatalf("node leases through a follower: %+v", leases)
	}
	var hbs [][]wire.HeartbeatStat
	c.mustJSON(f, http.MethodGet, "/admin/heartbeat?addr="+w.fakes[0].addr, nil, http.StatusOK, &hbs)
	if len(hbs) != 1 || hbs[0][0].ID != 1 {
		t.Fatalf("heartbeats through a follower: %+v", hbs)
	}
	regWantErr(t, c.do(f, http.MethodGet, "/admin/heartbeat?addr=bad", nil), http.StatusBadRequest, "bad_request")

	// The follower's own view: replicated state, no detector.
	eventually(t, "the follower's stale view", func() error {
		var dns []wire.Datanode
		c.mustJSON(f, http.MethodGet, "/admin/datanodes?stale", nil, http.StatusOK, &dns)
		if len(dns) != 2 {
			return fmt.Errorf("datanodes %+v", dns)
		}
		for _, d := range dns {
			if d.Status != "unknown" || d.SecondsSinceHeartbeat != -1 || d.FailoverDeferred || d.Regions != 2 {
				return fmt.Errorf("datanode %+v", d)
			}
		}
		rs := c.regRoutes(f, "?stale")
		if len(rs) != 4 {
			return fmt.Errorf("regions %+v", rs)
		}
		for _, r := range rs {
			if r.InFlight {
				return fmt.Errorf("in flight on a follower: %+v", r)
			}
		}
		return nil
	})
	for _, path := range []string{"/admin/balancer/plan?stale", "/admin/balancer/status?stale", "/admin/node-lease?stale", "/admin/heartbeat?stale"} {
		regWantErr(t, c.do(f, http.MethodGet, path, nil), http.StatusServiceUnavailable, "not_leader")
	}
}

// One forged heartbeat (the victim's node_epoch, read from the open
// GET /admin/heartbeat, and seq 2^64-1) is refused with nothing changed:
// the victim's real heartbeats go on being taken, and it stays alive.
func TestForgedHeartbeatCannotPoisonTheDetector(t *testing.T) {
	c := startCluster(t, 1, nil)
	l := c.leader()
	start := time.Now().UnixMilli()
	for seq := uint64(1); seq <= 3; seq++ {
		if _, r := regPostHB(c, l, wire.Heartbeat{ID: 3, Addr: "127.0.0.1:4003", StartTimeMs: start, Seq: seq}); r.status != http.StatusOK {
			t.Fatalf("victim heartbeat: %s", r)
		}
	}
	// Only datanode events count: the member's own registration may land
	// at any time.
	datanodeEvents := func() string {
		var page wire.EventsPage
		c.mustJSON(l, http.MethodGet, "/admin/events", nil, http.StatusOK, &page)
		var b strings.Builder
		for _, e := range page.Events {
			if strings.HasPrefix(e.Type, "datanode") && !isWatchEvent(e.Type) {
				fmt.Fprintf(&b, "%d %s %v\n", e.Index, e.Type, e.Fields)
			}
		}
		return b.String()
	}
	before := datanodeEvents()
	for _, forged := range []wire.Heartbeat{
		{ID: 3, Addr: "127.0.0.1:4003", StartTimeMs: start, Seq: 1<<64 - 1},
		{ID: 3, Addr: "127.0.0.1:4003", StartTimeMs: time.Now().Add(time.Hour).UnixMilli(), Seq: 1},
		{ID: 3, Addr: "127.0.0.1:6666", StartTimeMs: start - 1, Seq: 100},
		{ID: 9, Addr: "127.0.0.1:4009", StartTimeMs: time.Now().Add(time.Hour).UnixMilli(), Seq: 1},
	} {
		_, r := regPostHB(c, l, forged)
		regWantErr(t, r, http.StatusBadRequest, "implausible_heartbeat")
	}
	if after := datanodeEvents(); after != before {
		t.Fatalf("refused heartbeats changed the datanode events:\n%s\n%s", before, after)
	}
	dns := c.regDatanodes(l)
	if len(dns) != 1 || dns[3].Addr != "127.0.0.1:4003" {
		t.Fatalf("datanodes after forged heartbeats: %+v", dns)
	}
	for seq := uint64(4); seq <= 6; seq++ {
		hr, r := regPostHB(c, l, wire.Heartbeat{ID: 3, Addr: "127.0.0.1:4003", StartTimeMs: start, Seq: seq})
		if r.status != http.StatusOK || hr.LeaseMs == 0 || hr.AckSeq == nil || *hr.AckSeq != seq {
			t.Fatalf("victim heartbeat %d after the forgery: %s %+v", seq, r, hr)
		}
	}
	if d := c.regDatanodes(l)[3]; d.Status != "alive" {
		t.Fatalf("victim %+v, want alive", d)
	}
}
