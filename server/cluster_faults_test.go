package server

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/metasrv/metasrv/server/wire"
)

// restart starts a stopped node again on its data dir and addresses.
func (c *tcluster) restart(tn *tnode) *tnode {
	c.t.Helper()
	cfg := tn.cfg
	cfg.RPCAddr, cfg.RaftAddr = cfg.AdvertiseRPCAddr, cfg.AdvertiseRaftAddr
	return c.start(cfg)
}

func TestQuorumLossAndRestart(t *testing.T) {
	c := startCluster(t, 3, func(cfg *Config) { cfg.LeaderWait = time.Second })
	var e wire.Enabled
	c.mustJSON(c.nodes[0], http.MethodPost, "/admin/maintenance?enable=true&reason=before", nil, http.StatusOK, &e)
	for _, tn := range c.nodes {
		eventually(t, tn.id+" applied the write", func() error {
			if !tn.node.FSM().Maintenance().Enabled {
				return fmt.Errorf("not yet")
			}
			return nil
		})
	}

	survivor := c.follower()
	var stopped []*tnode
	for _, tn := range c.nodes {
		if tn != survivor {
			c.stop(tn)
			stopped = append(stopped, tn)
		}
	}
	eventually(t, survivor.id+" knows no leader", func() error {
		var st wire.RaftStatus
		c.mustJSON(survivor, http.MethodGet, "/admin/raft", nil, http.StatusOK, &st)
		if st.LeaderID != "" || st.State == "leader" {
			return fmt.Errorf("raft %+v", st)
		}
		return nil
	})

	bound := 4 * time.Second // LeaderWait 1s plus slack for a busy machine
	for _, req := range []struct{ method, path string }{
		{http.MethodPost, "/admin/maintenance?enable=false"},
		{http.MethodGet, "/admin/maintenance"},
		{http.MethodGet, "/admin/events"},
	} {
		start := time.Now()
		r := c.do(survivor, req.method, req.path, nil)
		took := time.Since(start)
		if r.status != http.StatusServiceUnavailable || (r.code() != wire.CodeNoLeader && r.code() != wire.CodeNotLeader) {
			t.Fatalf("%s %s without quorum: %s, want 503 no_leader", req.method, req.path, r)
		}
		if r.header.Get("Retry-After") != "1" {
			t.Fatalf("%s %s: Retry-After %q", req.method, req.path, r.header.Get("Retry-After"))
		}
		if took > bound {
			t.Fatalf("%s %s took %s, bound %s", req.method, req.path, took, bound)
		}
	}
	r := c.do(survivor, http.MethodGet, "/admin/leader", nil)
	wantError(t, r, http.StatusServiceUnavailable, wire.CodeNoLeader)
	r = c.do(survivor, http.MethodGet, "/admin/ready", nil)
	if r.status != http.StatusServiceUnavailable || r.code() != "not_ready" {
		t.Fatalf("ready without a leader: %s", r)
	}
	// Stale reads and local routes still answer.
	c.mustJSON(survivor, http.MethodGet, "/admin/maintenance?stale", nil, http.StatusOK, &e)
	if !e.Enabled {
		t.Fatal("stale read lost the flag")
	}
	if r := c.do(survivor, http.MethodGet, "/admin/health", nil); r.status != http.StatusOK {
		t.Fatalf("health without quorum: %s", r)
	}
	if r := c.do(survivor, http.MethodGet, "/admin/cluster", nil); r.status != http.StatusOK {
		t.Fatalf("cluster view without quorum: %s", r)
	}

	// One stopped node back on its data dir restores the quorum.
	back := c.restart(stopped[0])
	c.waitReady(back)
	c.waitReady(survivor)
	c.mustJSON(back, http.MethodGet, "/admin/maintenance?stale", nil, http.StatusOK, &e)
	if !e.Enabled {
		t.Fatalf("%s restarted without the flag it had", back.id)
	}
	var m wire.Maintenance
	c.mustJSON(back, http.MethodGet, "/admin/maintenance?verbose", nil, http.StatusOK, &m)
	if !m.Enabled || m.Reason != "before" {
		t.Fatalf("after restart: %+v", m)
	}
	c.mustJSON(back, http.MethodPost, "/admin/maintenance?enable=false", nil, http.StatusOK, &e)
	c.mustJSON(survivor, http.MethodGet, "/admin/maintenance", nil, http.StatusOK, &e)
	if e.Enabled {
		t.Fatal("write after the quorum came back not visible on the survivor")
	}
}
