package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/server/wire"
)

// GreptimeDB's tooling compares bodies byte for byte and probes /health,
// /ready, /v1/health and /status; the newcomer defects of the same issue.

func TestGreptimeBodiesByteForByte(t *testing.T) {
	c := startCluster(t, 3, nil)
	lead := c.leader()
	cases := []struct {
		method, path string
		want         string
		wantType     string
	}{
		{http.MethodPost, "/admin/maintenance?enable=true", `{"enabled":true}`, "application/json"},
		{http.MethodGet, "/admin/maintenance", `{"enabled":true}`, "application/json"},
		{http.MethodGet, "/admin/maintenance/status", `{"enabled":true}`, "application/json"},
		{http.MethodPost, "/admin/maintenance/disable", `{"enabled":false}`, "application/json"},
		{http.MethodGet, "/admin/maintenance?enable=true", `{"enabled":true}`, "application/json"},
		{http.MethodPut, "/admin/maintenance?enable=false", `{"enabled":false}`, "application/json"},
		{http.MethodGet, "/admin/health", "OK\n", "text/plain; charset=utf-8"},
		{http.MethodGet, "/admin/leader", lead.cfg.AdvertiseRPCAddr, "text/plain; charset=utf-8"},
		{http.MethodGet, "/health", `{}`, "application/json"},
		{http.MethodPost, "/health", `{}`, "application/json"},
		{http.MethodGet, "/v1/health", `{}`, "application/json"},
		{http.MethodPost, "/v1/health", `{}`, "application/json"},
		{http.MethodGet, "/ready", `{}`, "application/json"},
		{http.MethodPost, "/ready", `{}`, "application/json"},
		{http.MethodPost, "/admin/maintenance?enable=foo", `{"code":"bad_request","error":"enable=\"foo\": want exactly true or false"}`, "application/json"},
	}
	for _, tn := range c.nodes {
		for _, tc := range cases {
			r := c.do(tn, tc.method, tc.path, nil)
			if string(r.body) != tc.want || r.header.Get("Content-Type") != tc.wantType {
				t.Errorf("%s %s %s on %s: %d %q (%s), want %q (%s)", tn.id, tc.method, tc.path, tn.id, r.status, r.body,
					r.header.Get("Content-Type"), tc.want, tc.wantType)
			}
		}
	}
}

func TestGreptimeStatusAndOpenRoutes(t *testing.T) {
	c := startCluster(t, 3, func(cfg *Config) {
		cfg.AdminToken = "s3cret-token-for-tests"
		cfg.Version, cfg.Commit, cfg.Branch = "v9.9.9", "0123abc", "main"
	})
	host, _ := os.Hostname()
	for _, tn := range c.nodes {
		var st map[string]string
		r := c.mustJSON(tn, http.MethodGet, "/status", nil, http.StatusOK, &st)
		want := map[string]string{"commit": "0123abc", "branch": "main", "rustc_version": runtime.Version(),
			"hostname": host, "version": "v9.9.9"}
		if len(st) != len(want) {
			t.Fatalf("%s /status: %s", tn.id, r.body)
		}
		for k, v := range want {
			if st[k] != v {
				t.Errorf("%s /status %s = %q, want %q", tn.id, k, st[k], v)
			}
		}
		// No credentials needed, even with --admin-token: probes never carry one.
		for _, p := range []string{"/health", "/v1/health", "/ready"} {
			if r := c.do(tn, http.MethodPost, p, nil); r.status != http.StatusOK {
				t.Errorf("%s POST %s without a token: %s", tn.id, p, r)
			}
		}
	}
}

func TestWebReadyFollowsAdminReadyWithoutQuorum(t *testing.T) {
	c := startCluster(t, 3, func(cfg *Config) { cfg.LeaderWait = time.Second })
	lead := c.leader()
	var survivor *tnode
	for _, tn := range c.nodes {
		if tn != lead && survivor == nil {
			survivor = tn
			continue
		}
		c.stop(tn)
	}
	eventually(t, "ready without quorum answers 503", func() error {
		admin := c.do(survivor, http.MethodGet, "/admin/ready", nil)
		web := c.do(survivor, http.MethodGet, "/ready", nil)
		if admin.status != http.StatusServiceUnavailable || web.status != http.StatusServiceUnavailable {
			return errorf("admin %s, web %s", admin, web)
		}
		return nil
	})
	// Without quorum, no_leader says who this node reaches and who not.
	r := c.do(survivor, http.MethodPost, "/admin/maintenance?enable=true", nil)
	var e wire.Error
	_ = json.Unmarshal(r.body, &e)
	if r.status != http.StatusServiceUnavailable || e.Code != wire.CodeNoLeader ||
		!strings.Contains(e.Error, "reaches 1 of 3 voters ("+survivor.id+")") || !strings.Contains(e.Error, "a quorum needs 2") ||
		!strings.Contains(e.Error, "unreachable: ") {
		t.Fatalf("write without quorum: %s", r)
	}
	for _, tn := range c.nodes {
		if tn != survivor && !strings.Contains(e.Error, tn.id) {
			t.Errorf("no_leader does not name unreachable %s: %s", tn.id, e.Error)
		}
	}
}

func TestTransferToCurrentLeaderNamesBoth(t *testing.T) {
	c := startCluster(t, 3, nil)
	lead := c.leader()
	var ans map[string]string
	c.mustJSON(c.follower(), http.MethodPost, "/admin/cluster/transfer-leadership?to="+lead.id, nil, http.StatusOK, &ans)
	if ans["previous_leader_id"] != lead.id || ans["leader_id"] != lead.id || len(ans) != 2 {
		t.Fatalf("transfer to the leader itself: %v", ans)
	}
}

// The README's manual join: a body with id, raft_addr and rpc_addr only.
// The member counts as the lowest protocol level until it says otherwise,
// so nothing newer is proposed meanwhile.
func TestManualJoinWithoutProtocol(t *testing.T) {
	c := startCluster(t, 3, nil)
	lead := c.leader()
	eventually(t, "cluster protocol current", func() error {
		if p := lead.node.raft.ClusterProtocol(); p < 2 {
			return errorf("cluster protocol %d", p)
		}
		return nil
	})
	body := `{"id":"n4","raft_addr":"` + listening(t) + `","rpc_addr":"127.0.0.1:2"}` // the join probes that something listens
	r := c.do(c.follower(), http.MethodPost, "/admin/cluster/join", body)
	if r.status != http.StatusOK {
		t.Fatalf("manual join without protocol: %s", r)
	}
	if p := lead.node.raft.ClusterProtocol(); p != 1 {
		t.Fatalf("cluster protocol with a member of unknown level: %d, want 1", p)
	}
	c.mustJSON(lead, http.MethodDelete, "/admin/cluster/members/n4", nil, http.StatusOK, nil)
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
