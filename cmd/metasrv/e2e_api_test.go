package main

// End-to-end tests of the admin API on a healthy three-node cluster: the
// GreptimeDB-compatible maintenance routes byte for byte on every node,
// and the additive routes (verbose state, CAS, events, cluster, metrics).

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
	"github.com/metasrv/metasrv/server/wire"
)

// TestSeedCurlSequenceOnEveryNode runs the curl commands of the seed
// document (cluster-maintenance-mode.md) against each node in turn; after
// every write, a consistent read through every node sees it.
func TestSeedCurlSequenceOnEveryNode(t *testing.T) {
	c := startCluster(t)
	nodes := c.Nodes()
	for _, n := range nodes {
		// curl -X POST 'http://NODE/admin/maintenance?enable=true'
		wantEnabled(t, n.ID+" POST enable=true", c.must(http.MethodPost, n.URL("/admin/maintenance?enable=true"), nil), true)
		for _, m := range nodes {
			// curl -X GET http://NODE/admin/maintenance
			wantEnabled(t, n.ID+"→"+m.ID+" GET", c.must(http.MethodGet, m.URL("/admin/maintenance"), nil), true)
		}
		// curl -X POST 'http://NODE/admin/maintenance?enable=false'
		wantEnabled(t, n.ID+" POST enable=false", c.must(http.MethodPost, n.URL("/admin/maintenance?enable=false"), nil), false)
		for _, m := range nodes {
			wantEnabled(t, n.ID+"→"+m.ID+" GET", c.must(http.MethodGet, m.URL("/admin/maintenance"), nil), false)
		}
	}
}

// TestMaintenanceRoutesOnEveryNode covers the other compatible forms: the
// status route, /enable and /disable, the legacy PUT and GET setters.
func TestMaintenanceRoutesOnEveryNode(t *testing.T) {
	c := startCluster(t)
	nodes := c.Nodes()
	for _, n := range nodes {
		steps := []struct {
			method, path string
			want         bool
		}{
			{http.MethodPost, "/admin/maintenance/enable", true},
			{http.MethodGet, "/admin/maintenance/status", true},
			{http.MethodPost, "/admin/maintenance/disable", false},
			{http.MethodGet, "/admin/maintenance/status", false},
			{http.MethodPut, "/admin/maintenance?enable=true", true}, // legacy
			{http.MethodGet, "/admin/maintenance", true},
			{http.MethodGet, "/admin/maintenance?enable=false", false}, // legacy GET setter
			{http.MethodGet, "/admin/maintenance/status", false},
			{http.MethodGet, "/admin/maintenance?enable=true", true},
			{http.MethodPut, "/admin/maintenance?enable=false", false},
		}
		for _, s := range steps {
			what := fmt.Sprintf("%s %s %s", n.ID, s.method, s.path)
			wantEnabled(t, what, c.must(s.method, n.URL(s.path), nil), s.want)
			// Every write is visible through every node at once.
			for _, m := range nodes {
				wantEnabled(t, what+" then GET via "+m.ID, c.must(http.MethodGet, m.URL("/admin/maintenance/status"), nil), s.want)
			}
		}
	}
}

// TestMaintenanceVerboseReasonTTLAndCAS covers ?verbose=true, reason/by/
// ttl, idempotent repeats and if_epoch compare-and-set, through the leader
// and through a follower.
func TestMaintenanceVerboseReasonTTLAndCAS(t *testing.T) {
	c := startCluster(t)
	leader := c.waitReady(c.Nodes()...)
	f := localcluster.Followers(leader, c.Nodes())[0]

	// Fresh cluster: every field is present, with null where absent.
	r := c.mustOK(http.MethodGet, f.URL("/admin/maintenance?verbose=true"), nil)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &raw); err != nil {
		t.Fatalf("verbose: %v: %s", err, r.Body)
	}
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	if len(raw) != 6 {
		t.Fatalf("verbose fields %v, want enabled, epoch, reason, by, since, expires_at", keys)
	}
	for _, k := range []string{"enabled", "epoch", "reason", "by", "since", "expires_at"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("verbose answer %s lacks %q", r.Body, k)
		}
	}
	if string(raw["since"]) != "null" || string(raw["expires_at"]) != "null" || string(raw["enabled"]) != "false" {
		t.Fatalf("fresh verbose state %s: want enabled false, since and expires_at null", r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("verbose Content-Type %q", ct)
	}
	m0 := c.verbose(leader)

	// Enable with reason, by and ttl through a follower.
	before := time.Now()
	wantEnabled(t, "enable with reason/by/ttl", c.must(http.MethodPost,
		f.URL("/admin/maintenance?enable=true&reason=upgrade%20to%20v2&by=alice&ttl=1h"), nil), true)
	after := time.Now()
	for _, n := range c.Nodes() {
		m := c.verbose(n)
		if !m.Enabled || m.Epoch != m0.Epoch+1 || m.Reason != "upgrade to v2" || m.By != "alice" {
			t.Fatalf("%s verbose after enable: %+v (epoch before %d)", n.ID, m, m0.Epoch)
		}
		if m.Since == nil || m.Since.Before(before.Add(-time.Second)) || m.Since.After(after.Add(time.Second)) {
			t.Fatalf("%s since %v, want between %v and %v", n.ID, m.Since, before, after)
		}
		if m.ExpiresAt == nil || m.ExpiresAt.Sub(*m.Since) < time.Hour-time.Second || m.ExpiresAt.Sub(*m.Since) > time.Hour+time.Second {
			t.Fatalf("%s expires_at %v, want since+1h (since %v)", n.ID, m.ExpiresAt, m.Since)
		}
	}
	// RFC 3339 on the wire.
	r = c.mustOK(http.MethodGet, leader.URL("/admin/maintenance?verbose=true"), nil)
	raw = nil
	_ = json.Unmarshal(r.Body, &raw)
	for _, k := range []string{"since", "expires_at"} {
		var s string
		if err := json.Unmarshal(raw[k], &s); err != nil {
			t.Fatalf("%s = %s: want an RFC 3339 string", k, raw[k])
		}
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			t.Fatalf("%s = %q: not RFC 3339: %v", k, s, err)
		}
	}
	m1 := c.verbose(leader)

	// An enable without ttl clears the expiry. (Repeating a ttl write is
	// not idempotent: ttl=1h from a later instant is a new expiry.)
	wantEnabled(t, "enable without ttl", c.must(http.MethodPost, leader.URL("/admin/maintenance?enable=true&reason=r&by=bob"), nil), true)
	m2 := c.verbose(f)
	if m2.ExpiresAt != nil {
		t.Fatalf("an enable without ttl must clear the expiry: %+v", m2)
	}
	if m2.Epoch <= m1.Epoch || m2.Reason != "r" || m2.By != "bob" || !m2.Since.Equal(*m1.Since) {
		t.Fatalf("after re-enable: %+v (before %+v); since must stay when enabled does not change", m2, m1)
	}
	wantEnabled(t, "idempotent repeat", c.must(http.MethodPost, f.URL("/admin/maintenance?enable=true&reason=r&by=bob"), nil), true)
	if m3 := c.verbose(leader); m3.Epoch != m2.Epoch {
		t.Fatalf("an identical write bumped the epoch: %d → %d", m2.Epoch, m3.Epoch)
	}

	// by defaults to the client address.
	wantEnabled(t, "disable", c.must(http.MethodPost, f.URL("/admin/maintenance?enable=false"), nil), false)
	m4 := c.verbose(leader)
	if net.ParseIP(m4.By) == nil || m4.Reason != "" || m4.Enabled || m4.Since == nil || m4.ExpiresAt != nil {
		t.Fatalf("after a plain disable through a follower: %+v; want by = client IP, no reason, no expiry", m4)
	}

	// if_epoch compare-and-set, on the leader and through a follower.
	for _, n := range []string{leader.ID, f.ID} {
		node := c.Node(n)
		cur := c.verbose(node)
		stale := cur.Epoch + 7
		r := c.must(http.MethodPost, node.URL("/admin/maintenance?enable=true&reason=cas&if_epoch="+strconv.FormatUint(stale, 10)), nil)
		if r.Code != http.StatusConflict {
			t.Fatalf("%s CAS with a wrong epoch: %s, want 409", n, r)
		}
		var conflict struct {
			Error       string           `json:"error"`
			Code        string           `json:"code"`
			Maintenance wire.Maintenance `json:"maintenance"`
		}
		if err := json.Unmarshal(r.Body, &conflict); err != nil {
			t.Fatalf("409 body: %v: %s", err, r.Body)
		}
		if conflict.Code != "epoch_mismatch" || conflict.Error == "" || conflict.Maintenance.Epoch != cur.Epoch ||
			conflict.Maintenance.Enabled != cur.Enabled {
			t.Fatalf("%s 409 body %s: want code epoch_mismatch and the current state %+v", n, r.Body, cur)
		}
		if r.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("409 Content-Type %q", r.Header.Get("Content-Type"))
		}
		if got := c.verbose(leader); got.Epoch != cur.Epoch || got.Enabled != cur.Enabled || got.Reason != cur.Reason {
			t.Fatalf("%s a rejected CAS changed the state: %+v → %+v", n, cur, got)
		}
		// The right epoch wins, once.
		path := fmt.Sprintf("/admin/maintenance?enable=%t&reason=cas-%s&if_epoch=%d", !cur.Enabled, n, cur.Epoch)
		wantEnabled(t, n+" CAS with the current epoch", c.must(http.MethodPost, node.URL(path), nil), !cur.Enabled)
		r = c.must(http.MethodPost, node.URL(path), nil)
		if r.Code != http.StatusConflict {
			t.Fatalf("%s the same CAS a second time: %s, want 409", n, r)
		}
		if got := c.verbose(node); got.Epoch != cur.Epoch+1 || got.Enabled == cur.Enabled {
			t.Fatalf("%s after one successful CAS: %+v (was %+v)", n, got, cur)
		}
	}
	// if_epoch works on the /enable and /disable routes too.
	cur := c.verbose(f)
	r = c.must(http.MethodPost, f.URL(fmt.Sprintf("/admin/maintenance/disable?if_epoch=%d", cur.Epoch+1)), nil)
	if r.Code != http.StatusConflict {
		t.Fatalf("/disable with a wrong if_epoch: %s, want 409", r)
	}
	if got := c.verbose(f); got.Epoch != cur.Epoch {
		t.Fatalf("a rejected /disable changed the epoch: %d → %d", cur.Epoch, got.Epoch)
	}
}

// TestInfoRoutes covers health, ready, leader, cluster, events and metrics.
func TestInfoRoutes(t *testing.T) {
	c := startCluster(t)
	nodes := c.Nodes()
	leader := c.waitReady(nodes...)

	for _, n := range nodes {
		r := c.mustOK(http.MethodGet, n.URL("/admin/health"), nil)
		if strings.TrimSpace(string(r.Body)) != "OK" {
			t.Fatalf("%s /admin/health: %q, want OK", n.ID, r.Body)
		}
		c.mustOK(http.MethodGet, n.URL("/admin/ready"), nil)
		r = c.mustOK(http.MethodGet, n.URL("/admin/leader"), nil)
		if got := strings.TrimSpace(string(r.Body)); got != leader.RPCAddr {
			t.Fatalf("%s /admin/leader: %q, want %q", n.ID, got, leader.RPCAddr)
		}
	}

	// /admin/cluster: the same cluster ID and leader everywhere, three
	// reachable voters with their addresses. Members record their own RPC
	// address and version through the leader after they learn of it, and
	// each node answers from its own state, so every view must converge to
	// the complete one (it may lag for a moment right after start-up).
	var clusterID string
	for _, n := range nodes {
		c.Eventually(n.ID+" /admin/cluster complete", func() error {
			v, err := c.clusterView(n)
			if err != nil {
				return err
			}
			if v.ClusterID == "" || (clusterID != "" && v.ClusterID != clusterID) {
				return fmt.Errorf("%s cluster_id %q (others %q)", n.ID, v.ClusterID, clusterID)
			}
			wantState := "follower"
			if n.ID == leader.ID {
				wantState = "leader"
			}
			if v.NodeID != n.ID || v.LeaderID != leader.ID || v.LeaderRPCAddr != leader.RPCAddr || v.State != wantState ||
				v.Term == 0 || v.CommitIndex == 0 || v.AppliedIndex == 0 || v.Version == "" {
				return fmt.Errorf("%s /admin/cluster: %+v", n.ID, v)
			}
			if len(v.Members) != len(nodes) {
				return fmt.Errorf("%s /admin/cluster members: %+v", n.ID, v.Members)
			}
			for i, m := range v.Members {
				want := nodes[i]
				if m.ID != want.ID || m.RaftAddr != want.RaftAddr || m.RPCAddr != want.RPCAddr || m.Suffrage != "voter" ||
					m.Version == "" || !m.Reachable || m.Leader != (m.ID == leader.ID) {
					return fmt.Errorf("%s /admin/cluster member %d: %+v, want %s %s %s voter reachable", n.ID, i, m, want.ID, want.RaftAddr, want.RPCAddr)
				}
			}
			clusterID = v.ClusterID
			return nil
		})
	}

	// /admin/events: raft indexes, newest last, ?since filters.
	f := localcluster.Followers(leader, nodes)[0]
	wantEnabled(t, "enable", c.must(http.MethodPost, f.URL("/admin/maintenance?enable=true&reason=ev1&by=ops"), nil), true)
	wantEnabled(t, "disable", c.must(http.MethodPost, leader.URL("/admin/maintenance?enable=false&reason=ev2&by=ops"), nil), false)
	for _, n := range nodes {
		p := c.events(n, "")
		if p.FirstIndex != 1 {
			t.Fatalf("%s first_index %d, want 1 (nothing dropped)", n.ID, p.FirstIndex)
		}
		if len(p.Events) < 2 {
			t.Fatalf("%s events: %+v", n.ID, p.Events)
		}
		for i := 1; i < len(p.Events); i++ {
			if p.Events[i].Index <= p.Events[i-1].Index {
				t.Fatalf("%s events not in raft index order: %+v", n.ID, p.Events)
			}
		}
		types := map[string]bool{}
		for _, e := range p.Events {
			types[e.Type] = true
			if e.Index == 0 || e.Time.IsZero() || e.Type == "" {
				t.Fatalf("%s event %+v lacks index, time or type", n.ID, e)
			}
		}
		if !types["cluster_initialized"] || !types["member_joined"] {
			t.Fatalf("%s events %+v: want cluster_initialized and member_joined", n.ID, p.Events)
		}
		last, prev := p.Events[len(p.Events)-1], p.Events[len(p.Events)-2]
		if prev.Type != "maintenance_enabled" || prev.Reason != "ev1" || prev.By != "ops" ||
			last.Type != "maintenance_disabled" || last.Reason != "ev2" || last.Epoch != prev.Epoch+1 {
			t.Fatalf("%s newest events: %+v, %+v", n.ID, prev, last)
		}
		since := c.events(n, fmt.Sprintf("?since=%d", prev.Index))
		if len(since.Events) != 1 || since.Events[0].Index != last.Index {
			t.Fatalf("%s ?since=%d: %+v, want only index %d", n.ID, prev.Index, since.Events, last.Index)
		}
		st := c.verbose(n)
		if last.Epoch != st.Epoch {
			t.Fatalf("%s newest event epoch %d, state epoch %d", n.ID, last.Epoch, st.Epoch)
		}
	}

	// /metrics: Prometheus text with the maintenance, raft and HTTP series.
	wantEnabled(t, "enable", c.must(http.MethodPost, f.URL("/admin/maintenance?enable=true"), nil), true)
	for _, n := range nodes {
		c.Eventually(n.ID+" metrics", func() error {
			r, err := c.get(n.URL("/metrics"), 5*time.Second)
			if err != nil {
				return err
			}
			if r.Code != http.StatusOK {
				return fmt.Errorf("/metrics: %s", r)
			}
			body := string(r.Body)
			for _, want := range []string{
				"\nmetasrv_maintenance_enabled 1\n", "\nmetasrv_maintenance_epoch ", "\nmetasrv_maintenance_seconds ",
				"\nmetasrv_raft_term ", "\nmetasrv_raft_commit_index ", "\nmetasrv_raft_applied_index ",
				"\nmetasrv_raft_leader_changes_total ", `metasrv_raft_state{state="leader"}`,
				"\nmetasrv_write_outcome_unknown_total 0\n", "metasrv_http_requests_total{",
			} {
				if !strings.Contains(body, want) {
					return fmt.Errorf("%s /metrics lacks %q", n.ID, strings.TrimSpace(want))
				}
			}
			return nil
		})
	}
	r := c.mustOK(http.MethodGet, f.URL("/metrics"), nil)
	if !strings.Contains(string(r.Body), `metasrv_forwarded_requests_total{outcome="ok"}`) {
		t.Fatalf("follower %s forwarded writes but /metrics has no metasrv_forwarded_requests_total{outcome=\"ok\"}", f.ID)
	}
}
