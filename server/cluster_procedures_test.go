package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/metasrv/metasrv/server/wire"
)

// The procedure pause (/admin/procedure-manager/*) and the mixed-version
// guarantee: SetProcedures is a protocol 3 command, never proposed while a
// voter speaks an older protocol. An older binary is played in process
// (Config.Protocol).

// procWaitProtocols waits until the member table records want (id →
// protocol) as tn sees it.
func (c *tcluster) procWaitProtocols(tn *tnode, want map[string]int) {
	c.t.Helper()
	eventually(c.t, fmt.Sprintf("members recorded at protocols %v", want), func() error {
		v := c.clusterView(tn)
		if len(v.Members) != len(want) {
			return fmt.Errorf("members %+v", v.Members)
		}
		for _, m := range v.Members {
			if m.Protocol != want[m.ID] {
				return fmt.Errorf("%s at protocol %d, want %d", m.ID, m.Protocol, want[m.ID])
			}
		}
		return nil
	})
}

// procStatus is GET /admin/procedure-manager/status through tn.
func (c *tcluster) procStatus(tn *tnode, query string) wire.ProcedureStatusVerbose {
	c.t.Helper()
	var st wire.ProcedureStatusVerbose
	c.mustJSON(tn, http.MethodGet, "/admin/procedure-manager/status"+query, nil, http.StatusOK, &st)
	return st
}

// procNoFatal fails the test at once if any node started its fatal path.
func (c *tcluster) procNoFatal() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.fatal) > 0 {
		c.t.Fatalf("OnFatal fired: %v", c.fatal)
	}
}

func TestProcedurePauseMixedVersion(t *testing.T) {
	// n1 plays the older binary: it advertises, and its FSM knows, protocol
	// 2 only. It bootstraps the cluster, so n2 and n3 (protocol 3) may join.
	c := startCluster(t, 3, dnTimings(func(cfg *Config) {
		cfg.Protocol = 3
		if cfg.NodeID == "n1" {
			cfg.Protocol = 2
		}
	}))
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	c.procWaitProtocols(c.leader(), map[string]int{"n1": 2, "n2": 3, "n3": 3})

	refused := func(nodes ...*tnode) {
		t.Helper()
		for _, tn := range nodes {
			for _, path := range []string{"/admin/procedure-manager/pause?reason=upgrade", "/admin/procedure-manager/resume"} {
				r := c.do(tn, http.MethodPost, path, nil)
				regWantErr(t, r, http.StatusServiceUnavailable, "upgrade_in_progress")
			}
		}
	}
	// The older binary leads: it does not propose what it cannot apply.
	if l := c.leader(); l == n1 {
		refused(n1, n2, n3)
		var ans map[string]string
		c.mustJSON(n3, http.MethodPost, "/admin/cluster/transfer-leadership?to=n2", nil, http.StatusOK, &ans)
		eventually(t, "n2 leads", func() error {
			if l := c.leader(); l != n2 {
				return fmt.Errorf("%s leads", l.id)
			}
			return nil
		})
	}
	// A current binary leads and one follower is older: still refused,
	// through the leader and through either follower.
	if l := c.leader(); l == n1 {
		t.Fatalf("n1 still leads")
	}
	refused(n1, n2, n3)
	c.procNoFatal()
	// Nothing was applied anywhere, and every node, the older one
	// included, goes on applying.
	c.regMaintenance(n1, true)
	for _, tn := range c.nodes {
		eventually(t, tn.id+" applied the maintenance write", func() error {
			if !tn.node.FSM().Maintenance().Enabled {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		if p := tn.node.FSM().Procedures(); p.Paused || p.Epoch != 0 {
			t.Fatalf("%s: procedures %+v after refused writes", tn.id, p)
		}
		evs, _ := tn.node.FSM().Events(0, 0)
		for _, e := range evs {
			if strings.HasPrefix(e.Type, "procedures_") {
				t.Fatalf("%s recorded %+v", tn.id, e)
			}
		}
		if st := c.procStatus(tn, ""); st.Status != wire.ProceduresRunning {
			t.Fatalf("status through %s: %+v", tn.id, st)
		}
	}
	c.regMaintenance(n1, false)
	c.procNoFatal()

	// Upgrade n1: restarted on its data dir with the current binary.
	c.stop(n1)
	n1.cfg.Protocol = 3
	n1 = c.restart(n1)
	c.waitReady(n1)
	live := []*tnode{n1, n2, n3}
	c.procWaitProtocols(c.leader(), map[string]int{"n1": 3, "n2": 3, "n3": 3})
	var lead, fol *tnode
	eventually(t, "a leader among the live nodes", func() error {
		l := c.leader()
		for _, tn := range live {
			if tn == l {
				lead = l
			} else {
				fol = tn
			}
		}
		if lead == nil {
			return fmt.Errorf("%s leads", l.id)
		}
		return nil
	})

	// Datanodes and a table to move, drop and create.
	w := newDNWorld(t, c)
	for id := uint64(1); id <= 3; id++ {
		w.add(id, lead)
	}
	c.regWaitAlive(lead, 1, 2, 3)
	ct := c.regCreateTable(lead, "metrics", 3)
	c.regWaitServed(lead, w)

	// Pause through a follower.
	var ans wire.ProcedureStatus
	c.mustJSON(fol, http.MethodPost, "/admin/procedure-manager/pause?reason=upgrade&by=alice", nil, http.StatusOK, &ans)
	if ans.Status != wire.ProceduresPaused {
		t.Fatalf("pause answered %+v", ans)
	}
	for _, tn := range live {
		if st := c.procStatus(tn, ""); st.Status != wire.ProceduresPaused {
			t.Fatalf("status through %s: %+v", tn.id, st)
		}
		st := c.procStatus(tn, "?verbose=true")
		if st.Status != wire.ProceduresPaused || !st.Paused || st.By != "alice" || st.Reason != "upgrade" || st.Since == nil || st.Epoch != 1 {
			t.Fatalf("verbose status through %s: %+v", tn.id, st)
		}
	}
	// Pausing again is an applied no-op.
	c.mustJSON(lead, http.MethodPost, "/admin/procedure-manager/pause?by=bob", nil, http.StatusOK, &ans)
	if st := c.procStatus(fol, "?verbose"); st.Epoch != 1 || st.By != "alice" {
		t.Fatalf("second pause changed the state: %+v", st)
	}
	eventually(t, "a stale read on every node says paused", func() error {
		for _, tn := range live {
			if st := c.procStatus(tn, "?stale"); st.Status != wire.ProceduresPaused {
				return fmt.Errorf("%s: %+v", tn.id, st)
			}
		}
		return nil
	})

	// GET on a write route: 405 with Allow. Bad input: 400.
	r := c.do(fol, http.MethodGet, "/admin/procedure-manager/pause", nil)
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Fatalf("GET pause: %s, Allow %q", r, r.header.Get("Allow"))
	}
	wantError(t, c.do(fol, http.MethodPost, "/admin/procedure-manager/resume?by=", nil), http.StatusBadRequest, "bad_request")
	wantError(t, c.do(fol, http.MethodPost, "/admin/procedure-manager/pause?reason="+strings.Repeat("x", 1025), nil), http.StatusBadRequest, "bad_request")
	wantError(t, c.do(fol, http.MethodGet, "/admin/procedure-manager/status?verbose=maybe", nil), http.StatusBadRequest, "bad_request")

	// Every metadata change is refused, through the leader and a follower.
	reg := ct.Regions[0]
	to := reg.Datanode%3 + 1
	migrate := fmt.Sprintf("/admin/regions/%d/migrate?to=%d", reg.ID, to)
	for _, tn := range []*tnode{fol, lead} {
		eventually(t, "migrate refused through "+tn.id, func() error {
			if r := c.do(tn, http.MethodPost, migrate, nil); r.status != http.StatusConflict || r.code() != "procedures_paused" {
				return fmt.Errorf("%s", r)
			}
			return nil
		})
		eventually(t, "create refused through "+tn.id, func() error {
			r := c.do(tn, http.MethodPost, "/admin/tables", map[string]any{"name": "other", "regions": 2})
			if r.status != http.StatusConflict || r.code() != "procedures_paused" {
				return fmt.Errorf("%s", r)
			}
			return nil
		})
		wantError(t, c.do(tn, http.MethodDelete, "/admin/tables/metrics", nil), http.StatusConflict, "procedures_paused")
	}
	if rs := c.regRoutes(lead, ""); len(rs) != 3 || rs[0].Datanode != reg.Datanode {
		t.Fatalf("routes changed while paused: %+v", rs)
	}
	// The balancer says why it is paused; maintenance and datanode admin
	// states still change.
	var bs struct {
		Paused       bool   `json:"paused"`
		PausedReason string `json:"paused_reason"`
	}
	c.mustJSON(fol, http.MethodGet, "/admin/balancer/status", nil, http.StatusOK, &bs)
	if !bs.Paused || bs.PausedReason != "procedures paused" {
		t.Fatalf("balancer status %+v", bs)
	}
	c.regMaintenance(fol, true)
	c.regMaintenance(fol, false)
	c.mustJSON(fol, http.MethodPost, "/admin/datanodes/3/cordon", nil, http.StatusOK, nil)
	c.mustJSON(fol, http.MethodPost, "/admin/datanodes/3/uncordon", nil, http.StatusOK, nil)

	// Resume through a follower: everything works again.
	c.mustJSON(fol, http.MethodPost, "/admin/procedure-manager/resume?reason=done", nil, http.StatusOK, &ans)
	if ans.Status != wire.ProceduresRunning {
		t.Fatalf("resume answered %+v", ans)
	}
	if st := c.procStatus(lead, "?verbose=true"); st.Status != wire.ProceduresRunning || st.Paused || st.Epoch != 2 || st.Reason != "done" {
		t.Fatalf("after resume: %+v", st)
	}
	eventually(t, "migrate after resume", func() error {
		if r := c.do(fol, http.MethodPost, migrate, nil); r.status != http.StatusOK {
			return fmt.Errorf("%s", r)
		}
		return nil
	})
	eventually(t, "create after resume", func() error {
		if r := c.do(fol, http.MethodPost, "/admin/tables", map[string]any{"name": "other", "regions": 2}); r.status != http.StatusCreated {
			return fmt.Errorf("%s", r)
		}
		return nil
	})
	c.mustJSON(fol, http.MethodDelete, "/admin/tables/metrics", nil, http.StatusOK, nil)

	var page wire.EventsPage
	c.mustJSON(fol, http.MethodGet, "/admin/events", nil, http.StatusOK, &page)
	var seen []string
	for _, e := range page.Events {
		if strings.HasPrefix(e.Type, "procedures_") {
			seen = append(seen, fmt.Sprintf("%s by=%s epoch=%d", e.Type, e.By, e.Epoch))
		}
	}
	if fmt.Sprint(seen) != "[procedures_paused by=alice epoch=1 procedures_resumed by=127.0.0.1 epoch=2]" {
		t.Fatalf("procedure events %v", seen)
	}
	c.procNoFatal()
}
