package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/server/wire"
)

// wantError checks an error answer: status, JSON {"error","code"}, and code.
func wantError(t *testing.T, r reply, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("got %s, want %d %s", r, status, code)
	}
	var e map[string]any
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body is not JSON: %s", r)
	}
	if msg, _ := e["error"].(string); msg == "" {
		t.Fatalf("error body without a message: %s", r)
	}
	if c, _ := e["code"].(string); c != code {
		t.Fatalf("code %q, want %q: %s", c, code, r)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q on an error", ct)
	}
}

func TestLocalRoutesOnEveryNode(t *testing.T) {
	c := startCluster(t, 3, nil)
	lead := c.leader()
	for _, tn := range c.nodes {
		t.Run(tn.id, func(t *testing.T) {
			r := c.do(tn, http.MethodGet, "/admin/health", nil)
			if r.status != http.StatusOK || string(r.body) != "OK\n" {
				t.Fatalf("health: %s", r)
			}

			var st wire.RaftStatus
			c.mustJSON(tn, http.MethodGet, "/admin/raft", nil, http.StatusOK, &st)
			if st.NodeID != tn.id || st.LeaderID != lead.id || st.Term == 0 || st.CommitIndex == 0 {
				t.Fatalf("raft: %+v", st)
			}
			if wantState := map[bool]string{true: "leader", false: "follower"}[tn == lead]; st.State != wantState {
				t.Fatalf("raft state %q, want %q", st.State, wantState)
			}

			r = c.do(tn, http.MethodGet, "/admin/leader", nil)
			if r.status != http.StatusOK || string(r.body) != lead.cfg.AdvertiseRPCAddr {
				t.Fatalf("leader: %q, want %q", r.body, lead.cfg.AdvertiseRPCAddr)
			}

			var ready wire.Ready
			c.mustJSON(tn, http.MethodGet, "/admin/ready", nil, http.StatusOK, &ready)
			if !ready.Ready || ready.NodeID != tn.id || ready.LeaderID != lead.id || ready.AppliedIndex == 0 {
				t.Fatalf("ready: %+v", ready)
			}

			eventually(t, tn.id+" cluster view", func() error {
				var cl wire.Cluster
				c.mustJSON(tn, http.MethodGet, "/admin/cluster", nil, http.StatusOK, &cl)
				if cl.NodeID != tn.id || cl.LeaderID != lead.id || cl.LeaderRPCAddr != lead.cfg.AdvertiseRPCAddr || cl.ClusterID == "" {
					return fmt.Errorf("view %+v", cl)
				}
				if len(cl.Members) != 3 {
					return fmt.Errorf("%d members: %+v", len(cl.Members), cl.Members)
				}
				for i, m := range cl.Members {
					want := c.nodes[i]
					if m.ID != want.id || m.RPCAddr != want.cfg.AdvertiseRPCAddr || m.RaftAddr != want.cfg.AdvertiseRaftAddr {
						return fmt.Errorf("member %d: %+v, want %s at %s", i, m, want.id, want.cfg.AdvertiseRPCAddr)
					}
					if m.Leader != (m.ID == lead.id) || !m.Reachable || m.Suffrage != "voter" {
						return fmt.Errorf("member %+v (leader %s)", m, lead.id)
					}
				}
				return nil
			})

			r = c.do(tn, http.MethodGet, "/metrics", nil)
			if r.status != http.StatusOK {
				t.Fatalf("metrics: %d", r.status)
			}
			m := string(r.body)
			for _, want := range []string{"metasrv_raft_term", "metasrv_http_requests_total", "metasrv_is_leader"} {
				if !strings.Contains(m, want) {
					t.Fatalf("metrics lack %s", want)
				}
			}
			isLeader := "metasrv_is_leader 0"
			if tn == lead {
				isLeader = "metasrv_is_leader 1"
			}
			if !strings.Contains(m, isLeader+"\n") {
				t.Fatalf("metrics lack %q", isLeader)
			}
			if !strings.Contains(m, `metasrv_http_requests_total{code="200",method="GET",route="/admin/health"} `) {
				t.Fatalf("health request not counted:\n%s", grepLines(m, "metasrv_http_requests_total"))
			}

			// HEAD on a GET route: the GET's status, no body.
			r = c.do(tn, http.MethodHead, "/admin/health", nil)
			if r.status != http.StatusOK || len(r.body) != 0 {
				t.Fatalf("HEAD health: %s", r)
			}
			r = c.do(tn, http.MethodHead, "/admin/maintenance", nil)
			if r.status != http.StatusOK || len(r.body) != 0 {
				t.Fatalf("HEAD maintenance: %s", r)
			}
		})
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestRouteErrors(t *testing.T) {
	c := startCluster(t, 3, nil)
	f := c.follower()
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code, allow        string
	}{
		{"wrong method on health", http.MethodPost, "/admin/health", nil, 405, "method_not_allowed", "GET, HEAD"},
		{"wrong method on maintenance", http.MethodDelete, "/admin/maintenance", nil, 405, "method_not_allowed", "GET, HEAD, POST, PUT"},
		{"wrong method on enable", http.MethodGet, "/admin/maintenance/enable", nil, 405, "method_not_allowed", "POST"},
		{"wrong method on members", http.MethodGet, "/admin/cluster/members/n1", nil, 405, "method_not_allowed", "DELETE, PUT"},
		{"HEAD never writes", http.MethodHead, "/admin/maintenance?enable=true", nil, 405, "", "GET, HEAD, POST, PUT"},
		{"unknown route", http.MethodGet, "/admin/nope", nil, 404, "not_found", ""},
		{"unknown root", http.MethodPost, "/", nil, 404, "not_found", ""},
		{"body over 1 MiB", http.MethodPost, "/admin/cluster/join", strings.Repeat("x", 1<<20+1), 413, "payload_too_large", ""},
		{"join not JSON", http.MethodPost, "/admin/cluster/join", "nope", 400, "bad_request", ""},
		{"join empty", http.MethodPost, "/admin/cluster/join", nil, 400, "bad_request", ""},
		{"join trailing data", http.MethodPost, "/admin/cluster/join", `{"id":"x","raft_addr":"h:1","rpc_addr":"h:2"} {}`, 400, "bad_request", ""},
		{"join bad id", http.MethodPost, "/admin/cluster/join", `{"id":"a b","raft_addr":"h:1","rpc_addr":"h:2"}`, 400, "bad_request", ""},
		{"join bad raft addr", http.MethodPost, "/admin/cluster/join", `{"id":"x","raft_addr":"h","rpc_addr":"h:2"}`, 400, "bad_request", ""},
		{"join bad rpc addr", http.MethodPost, "/admin/cluster/join", `{"id":"x","raft_addr":"h:1","rpc_addr":""}`, 400, "bad_request", ""},
		{"delete bad id", http.MethodDelete, "/admin/cluster/members/a=b", nil, 400, "bad_request", ""},
		{"transfer bad id", http.MethodPost, "/admin/cluster/transfer-leadership?to=a,b", nil, 400, "bad_request", ""},
		{"bad stale", http.MethodGet, "/admin/maintenance?stale=yes", nil, 400, "bad_request", ""},
		{"bad verbose", http.MethodGet, "/admin/maintenance/status?verbose=2", nil, 400, "bad_request", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do(f, tc.method, tc.path, tc.body)
			if tc.method == http.MethodHead {
				if r.status != tc.status {
					t.Fatalf("got %s, want %d", r, tc.status)
				}
			} else {
				wantError(t, r, tc.status, tc.code)
			}
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Fatalf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
	// Nothing above changed the maintenance flag.
	var m wire.Enabled
	c.mustJSON(c.leader(), http.MethodGet, "/admin/maintenance", nil, http.StatusOK, &m)
	if m.Enabled {
		t.Fatal("a refused request enabled maintenance")
	}
}

func TestEventsPaging(t *testing.T) {
	c := startCluster(t, 3, nil)
	f := c.follower()
	for i := 0; i < 4; i++ {
		c.mustJSON(f, http.MethodPost, fmt.Sprintf("/admin/maintenance?enable=%t&reason=r%d", i%2 == 0, i), nil, http.StatusOK, nil)
	}
	var all wire.EventsPage
	c.mustJSON(f, http.MethodGet, "/admin/events", nil, http.StatusOK, &all)
	var maint []wire.Event
	for i, e := range all.Events {
		if i > 0 && e.Index <= all.Events[i-1].Index {
			t.Fatalf("events not in index order: %+v", all.Events)
		}
		if strings.HasPrefix(e.Type, "maintenance_") {
			maint = append(maint, e)
		}
	}
	if len(maint) != 4 || maint[0].Type != "maintenance_enabled" || maint[1].Type != "maintenance_disabled" || maint[3].Reason != "r3" {
		t.Fatalf("maintenance events %+v", maint)
	}
	if all.FirstIndex == 0 || all.FirstIndex > all.Events[0].Index {
		t.Fatalf("first_index %d, first event %d", all.FirstIndex, all.Events[0].Index)
	}

	var page wire.EventsPage
	c.mustJSON(f, http.MethodGet, "/admin/events?limit=2", nil, http.StatusOK, &page)
	if len(page.Events) != 2 || page.Events[0].Index != all.Events[0].Index {
		t.Fatalf("limit=2: %+v", page.Events)
	}
	since := maint[1].Index
	c.mustJSON(f, http.MethodGet, fmt.Sprintf("/admin/events?since=%d&limit=1", since), nil, http.StatusOK, &page)
	if len(page.Events) != 1 || page.Events[0].Index != maint[2].Index {
		t.Fatalf("since=%d&limit=1: %+v, want index %d", since, page.Events, maint[2].Index)
	}
	c.mustJSON(f, http.MethodGet, fmt.Sprintf("/admin/events?since=%d&stale", maint[3].Index), nil, http.StatusOK, &page)
	for _, e := range page.Events {
		if e.Index <= maint[3].Index {
			t.Fatalf("since=%d returned %+v", maint[3].Index, e)
		}
	}
	for _, q := range []string{"since=-1", "since=x", "since=", "limit=0", "limit=10001", "limit=x"} {
		wantError(t, c.do(f, http.MethodGet, "/admin/events?"+q, nil), http.StatusBadRequest, "bad_request")
	}
}

func TestMaintenanceThroughFollower(t *testing.T) {
	c := startCluster(t, 3, nil)
	f := c.follower()
	lead := c.leader()
	get := func(tn *tnode, path string) wire.Maintenance {
		t.Helper()
		var m wire.Maintenance
		c.mustJSON(tn, http.MethodGet, path, nil, http.StatusOK, &m)
		return m
	}
	var e wire.Enabled
	c.mustJSON(f, http.MethodPost, "/admin/maintenance/enable?reason=upgrade&by=alice", nil, http.StatusOK, &e)
	if !e.Enabled {
		t.Fatalf("enable: %+v", e)
	}
	r := c.mustJSON(f, http.MethodGet, "/admin/maintenance/status", nil, http.StatusOK, nil)
	if string(r.body) != "{\"enabled\":true}" {
		t.Fatalf("status body %q", r.body)
	}
	m := get(f, "/admin/maintenance?verbose=true")
	if !m.Enabled || m.Reason != "upgrade" || m.By != "alice" || m.Since == nil || m.ExpiresAt != nil || m.Epoch == 0 {
		t.Fatalf("verbose %+v", m)
	}
	if v := get(f, "/admin/maintenance/status?verbose"); v.Epoch != m.Epoch || v.Reason != "upgrade" {
		t.Fatalf("status?verbose %+v", v)
	}
	epoch := m.Epoch

	// Stale reads answer from each node's own copy; it catches up.
	for _, tn := range c.nodes {
		eventually(t, tn.id+" stale read", func() error {
			var s wire.Enabled
			c.mustJSON(tn, http.MethodGet, "/admin/maintenance?stale", nil, http.StatusOK, &s)
			if !s.Enabled {
				return fmt.Errorf("stale read on %s: disabled", tn.id)
			}
			return nil
		})
	}

	// if_epoch compare-and-set.
	r = c.do(f, http.MethodPost, fmt.Sprintf("/admin/maintenance/disable?if_epoch=%d", epoch+5), nil)
	wantError(t, r, http.StatusConflict, "epoch_mismatch")
	var mismatch struct {
		Maintenance wire.Maintenance `json:"maintenance"`
	}
	if err := json.Unmarshal(r.body, &mismatch); err != nil || !mismatch.Maintenance.Enabled || mismatch.Maintenance.Epoch != epoch {
		t.Fatalf("epoch_mismatch body %s", r.body)
	}
	c.mustJSON(f, http.MethodPost, fmt.Sprintf("/admin/maintenance/disable?if_epoch=%d", epoch), nil, http.StatusOK, &e)
	if e.Enabled {
		t.Fatal("disable with the right epoch did not disable")
	}
	if m := get(lead, "/admin/maintenance?verbose=true"); m.Enabled || m.Epoch != epoch+1 {
		t.Fatalf("after CAS disable: %+v, want epoch %d", m, epoch+1)
	}

	// Legacy setters: GET ?enable= and PUT, through the follower.
	c.mustJSON(f, http.MethodGet, "/admin/maintenance?enable=true", nil, http.StatusOK, &e)
	if !e.Enabled || !get(lead, "/admin/maintenance?verbose").Enabled {
		t.Fatal("legacy GET setter did not enable")
	}
	c.mustJSON(f, http.MethodPut, "/admin/maintenance?enable=false", nil, http.StatusOK, &e)
	if e.Enabled || get(lead, "/admin/maintenance?verbose").Enabled {
		t.Fatal("legacy PUT setter did not disable")
	}
	c.mustJSON(f, http.MethodPost, "/admin/maintenance?enable=false", nil, http.StatusOK, &e)
	if m := get(lead, "/admin/maintenance?verbose"); m.Enabled {
		t.Fatalf("POST enable=false: %+v", m)
	}

	// Bad parameters: 400 before anything is forwarded; nothing changes.
	before := get(lead, "/admin/maintenance?verbose").Epoch
	for _, q := range []string{
		"/admin/maintenance?enable=foo", "/admin/maintenance?enable=", "/admin/maintenance?enable=1", "/admin/maintenance",
		"/admin/maintenance?enable=true&ttl=banana", "/admin/maintenance?enable=true&ttl=0s", "/admin/maintenance?enable=true&ttl=-1m",
		"/admin/maintenance?enable=true&ttl=100000h", "/admin/maintenance?enable=false&ttl=1h", "/admin/maintenance/disable?ttl=1h",
		"/admin/maintenance?enable=true&if_epoch=x", "/admin/maintenance?enable=true&by=",
		"/admin/maintenance?enable=true&reason=" + strings.Repeat("r", 1025),
		"/admin/maintenance?enable=true&by=" + strings.Repeat("b", 257),
	} {
		for _, method := range []string{http.MethodPost, http.MethodPut} {
			if strings.HasPrefix(q, "/admin/maintenance/") && method == http.MethodPut {
				continue
			}
			wantError(t, c.do(f, method, q, nil), http.StatusBadRequest, "bad_request")
		}
	}
	wantError(t, c.do(f, http.MethodGet, "/admin/maintenance?enable=maybe", nil), http.StatusBadRequest, "bad_request")
	if after := get(lead, "/admin/maintenance?verbose").Epoch; after != before {
		t.Fatalf("a refused write changed the epoch: %d → %d", before, after)
	}
}

func TestMaintenanceTTLExpires(t *testing.T) {
	c := startCluster(t, 3, nil)
	f := c.follower()
	var e wire.Enabled
	c.mustJSON(f, http.MethodPost, "/admin/maintenance?enable=true&ttl=1s&reason=short", nil, http.StatusOK, &e)
	if !e.Enabled {
		t.Fatal("ttl enable did not enable")
	}
	var m wire.Maintenance
	c.mustJSON(f, http.MethodGet, "/admin/maintenance?verbose=true", nil, http.StatusOK, &m)
	if m.ExpiresAt == nil || m.Since == nil || m.ExpiresAt.Sub(*m.Since) < 900*time.Millisecond || m.ExpiresAt.Sub(*m.Since) > 1100*time.Millisecond {
		t.Fatalf("expires_at %v since %v", m.ExpiresAt, m.Since)
	}
	eventually(t, "maintenance expires", func() error {
		var s wire.Enabled
		c.mustJSON(f, http.MethodGet, "/admin/maintenance", nil, http.StatusOK, &s)
		if s.Enabled {
			return fmt.Errorf("still enabled")
		}
		return nil
	})
	var page wire.EventsPage
	c.mustJSON(f, http.MethodGet, "/admin/events", nil, http.StatusOK, &page)
	last := page.Events[len(page.Events)-1]
	if last.Type != "maintenance_expired" || last.By != "ttl" || last.Epoch != m.Epoch+1 {
		t.Fatalf("last event %+v, want maintenance_expired by ttl with epoch %d", last, m.Epoch+1)
	}
	c.mustJSON(f, http.MethodGet, "/admin/maintenance?verbose=true", nil, http.StatusOK, &m)
	if m.Enabled || m.ExpiresAt != nil || m.By != "ttl" {
		t.Fatalf("after expiry: %+v", m)
	}
}

func TestAdminToken(t *testing.T) {
	const tok = "s3cret"
	c := startCluster(t, 3, func(cfg *Config) { cfg.AdminToken = tok })
	lead, f := c.leader(), c.follower()
	writes := []struct{ method, path string }{
		{http.MethodPost, "/admin/maintenance?enable=true"},
		{http.MethodPut, "/admin/maintenance?enable=true"},
		{http.MethodGet, "/admin/maintenance?enable=true"},
		{http.MethodPost, "/admin/maintenance/enable"},
		{http.MethodPost, "/admin/maintenance/disable"},
		{http.MethodPost, "/admin/cluster/transfer-leadership"},
		{http.MethodDelete, "/admin/cluster/members/n2"},
		{http.MethodPost, "/admin/cluster/join"},
	}
	for _, tn := range []*tnode{lead, f} {
		for _, w := range writes {
			wantError(t, c.do(tn, w.method, w.path, nil), http.StatusUnauthorized, "unauthorized")
			for _, bad := range []string{"Bearer wrong", "s3cret", "Basic s3cret", "Bearer "} {
				wantError(t, c.do(tn, w.method, w.path, nil, "Authorization", bad), http.StatusUnauthorized, "unauthorized")
			}
		}
	}
	// Reads need no token, linearizable or stale.
	for _, p := range []string{"/admin/maintenance", "/admin/maintenance?stale", "/admin/maintenance/status?verbose", "/admin/events?limit=1", "/admin/cluster", "/admin/raft"} {
		if r := c.do(f, http.MethodGet, p, nil); r.status != http.StatusOK {
			t.Fatalf("read %s without a token: %s", p, r)
		}
	}
	// With the token, through a follower: the forward carries it.
	r := c.do(f, http.MethodPost, "/admin/maintenance?enable=true", nil, "Authorization", "Bearer "+tok)
	if r.status != http.StatusOK || string(r.body) != "{\"enabled\":true}" {
		t.Fatalf("authorized write through %s: %s", f.id, r)
	}
	var m wire.Enabled
	c.mustJSON(lead, http.MethodGet, "/admin/maintenance", nil, http.StatusOK, &m)
	if !m.Enabled {
		t.Fatal("the authorized write did not apply")
	}
	r = c.do(lead, http.MethodPost, "/admin/maintenance/disable", nil, "Authorization", "Bearer "+tok)
	if r.status != http.StatusOK {
		t.Fatalf("authorized write on the leader: %s", r)
	}
}
