package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/metasrv/metasrv/server/wire"
)

// preflightOf reads GET /admin/maintenance/preflight through tn.
func (c *tcluster) preflightOf(tn *tnode) wire.Preflight {
	c.t.Helper()
	var p wire.Preflight
	c.mustJSON(tn, http.MethodGet, "/admin/maintenance/preflight", nil, http.StatusOK, &p)
	return p
}

func checkNamed(p wire.Preflight, name string) (wire.PreflightCheck, bool) {
	for _, c := range p.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return wire.PreflightCheck{}, false
}

// refusedDisables are the two ways to ask for a guarded disable.
var refusedDisables = []struct{ name, path string }{
	{"disable route", "/admin/maintenance/disable?require_ready=true"},
	{"enable=false", "/admin/maintenance?enable=false&require_ready=true&reason=done"},
}

func TestPreflightRefusesDisableWhileADatanodeIsFailed(t *testing.T) {
	c, l, w := servedTable(t, "p")
	c.regMaintenance(l, true)

	p := c.preflightOf(l)
	if !p.Ready || p.WouldMove != 0 || len(p.Checks) != 3 {
		t.Fatalf("healthy cluster: preflight %+v, want ready with 3 checks and nothing to move", p)
	}

	w.fakes[0].pause(true) // datanode 1 stops heartbeating
	eventually(t, "datanode 1 failed", func() error {
		if d := c.regDatanodes(l)[1]; d.Status != "failed" {
			return fmt.Errorf("%+v", d)
		}
		return nil
	})
	p = c.preflightOf(l)
	dc, _ := checkNamed(p, wire.CheckDatanodes)
	if p.Ready || dc.OK || !strings.Contains(dc.Detail, "1 (") || p.WouldMove != 2 ||
		len(p.MoveFrom) != 1 || p.MoveFrom[0].Datanode != 1 || p.MoveFrom[0].Regions != 2 {
		t.Fatalf("datanode 1 failed: preflight %+v, want not ready, datanodes_alive naming 1, 2 regions to move from it", p)
	}

	for _, tc := range refusedDisables {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do(l, http.MethodPost, tc.path, nil)
			regWantErr(t, r, http.StatusConflict, wire.CodePreflightFailed)
			var body struct {
				Error     string                `json:"error"`
				Checks    []wire.PreflightCheck `json:"checks"`
				WouldMove int                   `json:"would_move"`
			}
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatal(err)
			}
			if len(body.Checks) != 1 || body.Checks[0].Name != wire.CheckDatanodes || body.Checks[0].OK ||
				body.WouldMove != 2 || !strings.Contains(body.Error, wire.CheckDatanodes) {
				t.Fatalf("refusal body %s: want only the failed datanodes_alive check and would_move 2", r.body)
			}
			var m wire.Maintenance
			c.mustJSON(l, http.MethodGet, "/admin/maintenance/status?verbose=true", nil, http.StatusOK, &m)
			if !m.Enabled {
				t.Fatalf("maintenance turned off by a refused disable: %+v", m)
			}
		})
	}

	w.fakes[0].pause(false)
	c.regWaitAlive(l, 1)
	c.regWaitServed(l, w)
	c.mustJSON(l, http.MethodPost, "/admin/maintenance/disable?require_ready=true", nil, http.StatusOK, nil)
	var m wire.Maintenance
	c.mustJSON(l, http.MethodGet, "/admin/maintenance/status?verbose=true", nil, http.StatusOK, &m)
	if m.Enabled {
		t.Fatalf("a ready disable left maintenance on: %+v", m)
	}
}

func TestPreflightBadInput(t *testing.T) {
	c := startCluster(t, 1, nil)
	l := c.leader()
	for _, tc := range []struct{ name, path, want string }{
		{"not a bool", "/admin/maintenance/disable?require_ready=maybe", "require_ready"},
		{"on enable", "/admin/maintenance?enable=true&require_ready=true", "only when disabling"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do(l, http.MethodPost, tc.path, nil)
			regWantErr(t, r, http.StatusBadRequest, "bad_request")
			if !strings.Contains(string(r.body), tc.want) {
				t.Fatalf("%s: %s, want it to mention %q", tc.path, r, tc.want)
			}
		})
	}
	// The plain disable keeps its exact answer.
	r := c.mustJSON(l, http.MethodPost, "/admin/maintenance/disable", nil, http.StatusOK, nil)
	if string(r.body) != `{"enabled":false}` {
		t.Fatalf("plain disable: %s", r)
	}
}

func TestPreflightVoterDown(t *testing.T) {
	if testing.Short() {
		t.Skip("three nodes; skipped with -short")
	}
	c := startCluster(t, 3, nil)
	l := c.leader()
	if p := c.preflightOf(c.follower()); !p.Ready {
		t.Fatalf("healthy cluster through a follower: %+v", p)
	}
	// Only the leader has the datanodes' live view: no stale answer.
	regWantErr(t, c.do(c.follower(), http.MethodGet, "/admin/maintenance/preflight?stale", nil), http.StatusServiceUnavailable, wire.CodeNotLeader)
	var down *tnode
	for _, tn := range c.nodes {
		if tn != l {
			down = tn
			break
		}
	}
	c.stop(down)
	p := c.preflightOf(l)
	vc, _ := checkNamed(p, wire.CheckVoters)
	if p.Ready || vc.OK || !strings.Contains(vc.Detail, down.id+" unreachable") {
		t.Fatalf("voter %s down: preflight %+v, want voters_caught_up naming it", down.id, p)
	}
	r := c.do(l, http.MethodPost, "/admin/maintenance/disable?require_ready=true", nil)
	regWantErr(t, r, http.StatusConflict, wire.CodePreflightFailed)
}
