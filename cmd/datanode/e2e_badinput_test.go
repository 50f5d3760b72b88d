package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/metasrv/metasrv/deploy/localcluster"
	"github.com/metasrv/metasrv/server/wire"
)

// Bad input on every datanode/table/region endpoint, sent to the leader
// and to a follower: a 4xx with a JSON error, and nothing applied.
func TestE2EBadInput(t *testing.T) {
	c := startCluster(t, 3, 6)
	leader := c.leader()
	follower := localcluster.Followers(leader, c.Live())[0]
	rs := c.mustRoutes()
	r1 := ownedBy(rs, 1)[0]
	mig := func(q string) string { return fmt.Sprintf("/admin/regions/%d/migrate%s", r1, q) }
	const huge = "18446744073709551616" // 2^64
	cases := []struct {
		method, path, body string
		want               int
	}{
		// POST /admin/tables
		{"POST", "/admin/tables", "", 400},
		{"POST", "/admin/tables", "not json", 400},
		{"POST", "/admin/tables", "[1,2]", 400},
		{"POST", "/admin/tables", `{"name":"x"}`, 400},
		{"POST", "/admin/tables", `{"name":"x","regions":null}`, 400},
		{"POST", "/admin/tables", `{"name":"x","regions":0}`, 400},
		{"POST", "/admin/tables", `{"name":"x","regions":-1}`, 400},
		{"POST", "/admin/tables", `{"name":"x","regions":-9223372036854775808}`, 400},
		{"POST", "/admin/tables", `{"name":"x","regions":10001}`, 400},
		{"POST", "/admin/tables", `{"name":"x","regions":9223372036854775807}`, 400},
		{"POST", "/admin/tables", `{"name":"x","regions":99999999999999999999}`, 400},
		{"POST", "/admin/tables", `{"name":"x","regions":1e20}`, 400},
		{"POST", "/admin/tables", `{"name":"x","regions":2.5}`, 400},
		{"POST", "/admin/tables", `{"name":"x","regions":"3"}`, 400},
		{"POST", "/admin/tables", `{"name":"","regions":1}`, 400},
		{"POST", "/admin/tables", `{"name":"bad name","regions":1}`, 400},
		{"POST", "/admin/tables", `{"name":7,"regions":1}`, 400},
		{"POST", "/admin/tables", `{"name":"x","regions":1}{"name":"y","regions":1}`, 400},
		{"POST", "/admin/tables", `{"name":"t","regions":2}`, 409}, // duplicate name
		{"PUT", "/admin/tables", `{"name":"x","regions":1}`, 405},
		// DELETE /admin/tables/{name}
		{"DELETE", "/admin/tables/nope", "", 404},
		{"DELETE", "/admin/tables/bad%20name", "", 400},
		{"GET", "/admin/tables/t", "", 405},
		// GET /admin/regions
		{"GET", "/admin/regions?datanode=abc", "", 400},
		{"GET", "/admin/regions?datanode=0", "", 400},
		{"GET", "/admin/regions?datanode=-1", "", 400},
		{"GET", "/admin/regions?datanode=" + huge, "", 400},
		// POST /admin/regions/{id}/migrate
		{"POST", "/admin/regions/abc/migrate?to=2", "", 400},
		{"POST", "/admin/regions/0/migrate?to=2", "", 400},
		{"POST", "/admin/regions/-1/migrate?to=2", "", 400},
		{"POST", "/admin/regions/" + huge + "/migrate?to=2", "", 400},
		{"POST", "/admin/regions/999/migrate?to=2", "", 404},
		{"POST", mig(""), "", 400},
		{"POST", mig("?to="), "", 400},
		{"POST", mig("?to=abc"), "", 400},
		{"POST", mig("?to=0"), "", 400},
		{"POST", mig("?to=-2"), "", 400},
		{"POST", mig("?to=" + huge), "", 400},
		{"POST", mig("?to=999"), "", 404},
		{"POST", mig("?to=2&from=abc"), "", 400},
		{"POST", mig("?to=2&from=3"), "", 409}, // r1 is on datanode 1
		{"GET", mig("?to=2"), "", 405},
		// /admin/datanodes/{id} and its admin states
		{"DELETE", "/admin/datanodes/abc", "", 400},
		{"DELETE", "/admin/datanodes/0", "", 400},
		{"DELETE", "/admin/datanodes/-1", "", 400},
		{"DELETE", "/admin/datanodes/" + huge, "", 400},
		{"DELETE", "/admin/datanodes/999", "", 404},
		{"DELETE", "/admin/datanodes/1", "", 409}, // holds regions
		{"GET", "/admin/datanodes/1", "", 405},
		{"POST", "/admin/datanodes/abc/cordon", "", 400},
		{"POST", "/admin/datanodes/0/drain", "", 400},
		{"POST", "/admin/datanodes/999/cordon", "", 404},
		{"POST", "/admin/datanodes/999/drain", "", 404},
		{"POST", "/admin/datanodes/999/uncordon", "", 404},
		{"POST", "/admin/datanodes", "", 405},
		// POST /v1/heartbeat
		{"POST", "/v1/heartbeat", "", 400},
		{"POST", "/v1/heartbeat", "nope", 400},
		{"POST", "/v1/heartbeat", `{"id":0,"addr":"127.0.0.1:1"}`, 400},
		{"POST", "/v1/heartbeat", `{"id":-1,"addr":"127.0.0.1:1"}`, 400},
		{"POST", "/v1/heartbeat", `{"id":"77","addr":"127.0.0.1:1"}`, 400},
		{"POST", "/v1/heartbeat", `{"id":77}`, 400},
		{"POST", "/v1/heartbeat", `{"id":77,"addr":"nohost"}`, 400},
		{"POST", "/v1/heartbeat", `{"id":77,"addr":"127.0.0.1:1","regions":["x"]}`, 400},
		{"GET", "/v1/heartbeat", "", 405},
		// GreptimeDB-shaped reads
		{"GET", "/admin/heartbeat?addr=garbage", "", 400},
		{"GET", "/admin/heartbeat?addr=a:b:c", "", 400},
		{"POST", "/admin/node-lease", "", 405},
	}

	before := c.stateDigest()
	since := c.LastEventIndex()
	for _, n := range []*localcluster.Node{leader, follower} {
		for _, tc := range cases {
			rep, err := c.SendJSON(tc.method, n.URL(tc.path), tc.body)
			if err != nil {
				t.Errorf("%s %s %s %q: %v", n.ID, tc.method, tc.path, tc.body, err)
				continue
			}
			var eb wire.Error
			if rep.Code != tc.want || json.Unmarshal(rep.Body, &eb) != nil || eb.Error == "" || eb.Code == "" {
				t.Errorf("%s %s %s %q: %s, want %d with a JSON {error, code}", n.ID, tc.method, tc.path, tc.body, rep, tc.want)
			}
			if rep.Code == http.StatusMethodNotAllowed && rep.Header.Get("Allow") == "" {
				t.Errorf("%s %s %s: 405 without an Allow header", n.ID, tc.method, tc.path)
			}
		}
	}

	// A well-formed heartbeat to a follower: 503 not_leader naming the leader.
	rep, err := c.SendJSON(http.MethodPost, follower.URL("/v1/heartbeat"), `{"id":77,"addr":"127.0.0.1:1"}`)
	var nl wire.Error
	if err != nil || rep.Code != http.StatusServiceUnavailable || json.Unmarshal(rep.Body, &nl) != nil ||
		nl.Code != "not_leader" || nl.LeaderRPCAddr != leader.RPCAddr {
		t.Errorf("heartbeat to follower %s: %s %v, want 503 not_leader with leader_rpc_addr %s", follower.ID, rep, err, leader.RPCAddr)
	}

	// A follower has no detector: its stale view shows every datanode unknown.
	var vs []wire.Datanode
	if rep, err := c.SendJSON(http.MethodGet, follower.URL("/admin/datanodes?stale"), ""); err != nil || rep.Code != 200 || json.Unmarshal(rep.Body, &vs) != nil {
		t.Errorf("follower stale /admin/datanodes: %s %v", rep, err)
	}
	for _, v := range vs {
		if v.Status != "unknown" {
			t.Errorf("follower's stale view of dn%d: status %q, want unknown", v.ID, v.Status)
		}
	}

	// Nothing applied.
	if after := c.stateDigest(); !reflect.DeepEqual(after, before) {
		t.Errorf("state changed by refused requests:\nbefore %+v\nafter  %+v", before, after)
	}
	evs, err := c.Events(since)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		t.Errorf("event after refused requests: %+v", e)
	}

	// The same endpoints' happy paths, for contrast.
	var leases []wire.NodeLease
	if err := c.GetJSON("/admin/node-lease", &leases); err != nil || len(leases) != 3 {
		t.Errorf("GET /admin/node-lease: %+v %v, want one lease per datanode", leases, err)
	}
	for _, l := range leases {
		if d := c.Datanode(l.Name["node_id"]); d == nil || d.Addr != l.Lease.NodeAddr || l.Lease.TimestampMillis == 0 {
			t.Errorf("node lease %+v does not match a datanode", l)
		}
	}
	rep = c.PostJSON("/admin/tables", `{"name":"x","regions":3}`)
	var created struct {
		Name    string               `json:"name"`
		Regions []localcluster.Route `json:"regions"`
	}
	if rep.Code != http.StatusCreated || json.Unmarshal(rep.Body, &created) != nil || created.Name != "x" || len(created.Regions) != 3 {
		t.Fatalf("create table x: %s, want 201 with 3 routes", rep)
	}
	spread := map[uint64]bool{}
	for _, r := range created.Regions {
		spread[r.Datanode] = true
	}
	if len(spread) != 3 {
		t.Errorf("table x placed on %v, want one region on each datanode (fewest first)", spread)
	}
	if rep = c.PostJSON("/admin/tables", `{"name":"x","regions":1}`); rep.Code != http.StatusConflict {
		t.Errorf("create x again: %s, want 409", rep)
	}
	c.waitServing(c.Datanodes()...)
	if rep, err = c.Call(http.MethodDelete, "/admin/tables/x", ""); err != nil || rep.Code != http.StatusOK {
		t.Fatalf("drop x: %s %v", rep, err)
	}
	c.waitServing(c.Datanodes()...) // the datanodes closed x's regions
	if rep, err = c.Call(http.MethodDelete, "/admin/tables/x", ""); err != nil || rep.Code != http.StatusNotFound {
		t.Errorf("drop x again: %s %v, want 404", rep, err)
	}
}

// digest is the part of the state the bad requests could have changed.
type digest struct {
	Tables    []string
	Routes    []localcluster.Route
	Datanodes []string
}

func (c *ecluster) stateDigest() digest {
	c.T.Helper()
	var d digest
	c.Eventually("read state", func() error {
		d = digest{}
		var tables []struct {
			Name    string   `json:"name"`
			Regions []uint64 `json:"regions"`
		}
		if err := c.GetJSON("/admin/tables", &tables); err != nil {
			return err
		}
		for _, t := range tables {
			d.Tables = append(d.Tables, fmt.Sprintf("%s%v", t.Name, t.Regions))
		}
		rs, err := c.routes()
		if err != nil {
			return err
		}
		for i := range rs {
			rs[i].InFlight = false
		}
		d.Routes = rs
		vs, err := c.datanodeViews()
		if err != nil {
			return err
		}
		for id := uint64(1); id <= 100; id++ {
			if v, ok := vs[id]; ok {
				d.Datanodes = append(d.Datanodes, fmt.Sprintf("%d@%s/%s", v.ID, v.Addr, v.AdminState))
			}
		}
		if len(vs) != len(d.Datanodes) {
			return fmt.Errorf("unexpected datanode ids in %v", vs)
		}
		return nil
	})
	return d
}
