package server

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/wire"
)

// addNode starts one more node that joins through the current leader and
// waits until it is ready.
func (c *tcluster) addNode(id string, mutate func(*Config)) *tnode {
	c.t.Helper()
	cfg := testConfig(c.t, id, mutate)
	cfg.Join = []string{c.leader().cfg.AdvertiseRPCAddr}
	tn := c.start(cfg)
	c.waitReady(tn)
	return tn
}

// clusterView is tn's GET /admin/cluster.
func (c *tcluster) clusterView(tn *tnode) wire.Cluster {
	c.t.Helper()
	var v wire.Cluster
	c.mustJSON(tn, http.MethodGet, "/admin/cluster", nil, http.StatusOK, &v)
	return v
}

func memberIDs(v wire.Cluster) []string {
	var ids []string
	for _, m := range v.Members {
		ids = append(ids, m.ID+"/"+m.Suffrage)
	}
	return ids
}

func TestJoinFourthNodeAndRemoveIt(t *testing.T) {
	c := startCluster(t, 3, nil)
	n4 := c.addNode("n4", nil)
	for _, tn := range c.nodes {
		eventually(t, tn.id+" sees n4", func() error {
			v := c.clusterView(tn)
			if len(v.Members) != 4 || v.Members[3].ID != "n4" || v.Members[3].Suffrage != "voter" ||
				v.Members[3].RPCAddr != n4.cfg.AdvertiseRPCAddr || !v.Members[3].Reachable {
				return fmt.Errorf("members %+v", v.Members)
			}
			return nil
		})
	}
	// Writes through the new node.
	var e wire.Enabled
	c.mustJSON(n4, http.MethodPost, "/admin/maintenance?enable=true", nil, http.StatusOK, &e)
	if !e.Enabled {
		t.Fatal("write through n4")
	}
	lead := c.leader()
	var page wire.EventsPage
	c.mustJSON(n4, http.MethodGet, "/admin/events", nil, http.StatusOK, &page)
	joined := false
	for _, ev := range page.Events {
		joined = joined || (ev.Type == fsm.EventMemberJoined && ev.Fields["id"] == "n4")
	}
	if !joined {
		t.Fatalf("no member_joined event for n4: %+v", page.Events)
	}

	// Removing: the leader itself is refused, an unknown id is 404, a
	// follower goes.
	wantError(t, c.do(n4, http.MethodDelete, "/admin/cluster/members/"+lead.id, nil), http.StatusConflict, "conflict")
	wantError(t, c.do(n4, http.MethodDelete, "/admin/cluster/members/n99", nil), http.StatusNotFound, "not_found")
	var removed map[string]string
	c.mustJSON(c.follower(), http.MethodDelete, "/admin/cluster/members/n4", nil, http.StatusOK, &removed)
	if removed["removed"] != "n4" {
		t.Fatalf("remove answer %v", removed)
	}
	eventually(t, "n4 gone from the leader's view", func() error {
		v := c.clusterView(c.leader())
		if len(v.Members) != 3 {
			return fmt.Errorf("members %v", memberIDs(v))
		}
		for _, m := range v.Members {
			if m.ID == "n4" {
				return fmt.Errorf("members %v", memberIDs(v))
			}
		}
		return nil
	})
	wantError(t, c.do(lead, http.MethodDelete, "/admin/cluster/members/n4", nil), http.StatusNotFound, "not_found")
	// The three remaining nodes still take writes.
	for _, tn := range c.nodes[:3] {
		c.mustJSON(tn, http.MethodPost, "/admin/maintenance?enable=false", nil, http.StatusOK, nil)
	}
}

func TestMemberUpdateAndJoinConflicts(t *testing.T) {
	c := startCluster(t, 3, nil)
	lead, f := c.leader(), c.follower()
	n2, n3 := c.nodes[1], c.nodes[2]
	self := func(tn *tnode) wire.JoinRequest {
		return wire.JoinRequest{ID: tn.id, RaftAddr: tn.cfg.AdvertiseRaftAddr, RPCAddr: tn.cfg.AdvertiseRPCAddr,
			Version: "test", Protocol: fsm.Protocol}
	}

	// PUT members/{id}: the body id must match, the id must be a member,
	// and the raft address must be the member's.
	body := self(n2)
	body.ID = "n3"
	wantError(t, c.do(f, http.MethodPut, "/admin/cluster/members/n2", body), http.StatusBadRequest, "bad_request")
	stranger := wire.JoinRequest{ID: "n9", RaftAddr: "127.0.0.1:1", RPCAddr: "127.0.0.1:2", Protocol: fsm.Protocol}
	wantError(t, c.do(f, http.MethodPut, "/admin/cluster/members/n9", stranger), http.StatusNotFound, "not_found")
	moved := self(n2)
	moved.RaftAddr = "127.0.0.1:1"
	wantError(t, c.do(f, http.MethodPut, "/admin/cluster/members/n2", moved), http.StatusConflict, "conflict")
	wantError(t, c.do(f, http.MethodPut, "/admin/cluster/members/n2", "{"), http.StatusBadRequest, "bad_request")
	// A correct update records the member's version.
	var m wire.Member
	c.mustJSON(f, http.MethodPut, "/admin/cluster/members/n3", self(n3), http.StatusOK, &m)
	if m.ID != "n3" || m.Version != "test" || m.RPCAddr != n3.cfg.AdvertiseRPCAddr {
		t.Fatalf("updated member %+v", m)
	}

	// Join conflicts.
	stealer := wire.JoinRequest{ID: "n9", RaftAddr: n2.cfg.AdvertiseRaftAddr, RPCAddr: "127.0.0.1:2", Protocol: fsm.Protocol}
	r := c.do(f, http.MethodPost, "/admin/cluster/join", stealer)
	wantError(t, r, http.StatusConflict, "conflict")
	other := wire.JoinRequest{ID: "n9", RaftAddr: "127.0.0.1:1", RPCAddr: "127.0.0.1:2", Protocol: fsm.Protocol, ClusterID: "another-cluster"}
	wantError(t, c.do(f, http.MethodPost, "/admin/cluster/join", other), http.StatusConflict, "cluster_id_mismatch")

	// protocol_too_old needs every voter recorded at the current protocol
	// first; until then the cluster's level is 1 and such a join would be
	// accepted.
	eventually(t, "every member recorded at protocol "+fmt.Sprint(fsm.Protocol), func() error {
		for _, mm := range c.clusterView(lead).Members {
			if mm.Protocol != fsm.Protocol {
				return fmt.Errorf("%s at protocol %d", mm.ID, mm.Protocol)
			}
		}
		return nil
	})
	// A node that says it speaks an older protocol is refused; one that says
	// nothing (an operator's manual join) is let in (TestManualJoinWithoutProtocol).
	old := wire.JoinRequest{ID: "n9", RaftAddr: "127.0.0.1:1", RPCAddr: "127.0.0.1:2", Protocol: 1}
	wantError(t, c.do(f, http.MethodPost, "/admin/cluster/join", old), http.StatusConflict, "protocol_too_old")
	// Re-joining with its own id and address is idempotent.
	var jr wire.JoinResponse
	c.mustJSON(f, http.MethodPost, "/admin/cluster/join", self(n3), http.StatusOK, &jr)
	if jr.LeaderID != lead.id || jr.ClusterID == "" || len(jr.Members) != 3 {
		t.Fatalf("idempotent join: %+v", jr)
	}
	// None of it changed the configuration.
	if ids := memberIDs(c.clusterView(lead)); fmt.Sprint(ids) != "[n1/voter n2/voter n3/voter]" {
		t.Fatalf("members after refused changes: %v", ids)
	}
}

func TestTransferLeadership(t *testing.T) {
	c := startCluster(t, 3, nil)
	old := c.leader()
	var target *tnode
	for _, tn := range c.nodes {
		if tn != old {
			target = tn
			break
		}
	}
	via := c.nodes[0]
	if via == old || via == target {
		via = c.nodes[2]
		if via == old || via == target {
			via = c.nodes[1]
		}
	}

	wantError(t, c.do(via, http.MethodPost, "/admin/cluster/transfer-leadership?to=n99", nil), http.StatusNotFound, "not_found")

	var ans map[string]string
	c.mustJSON(via, http.MethodPost, "/admin/cluster/transfer-leadership?to="+target.id, nil, http.StatusOK, &ans)
	if ans["previous_leader_id"] != old.id || ans["leader_id"] != target.id {
		t.Fatalf("transfer to %s answered %v", target.id, ans)
	}
	eventually(t, target.id+" leads", func() error {
		if l := c.leader(); l != target {
			return fmt.Errorf("%s leads", l.id)
		}
		return nil
	})
	// To the current leader: a no-op that names it.
	c.mustJSON(via, http.MethodPost, "/admin/cluster/transfer-leadership?to="+target.id, nil, http.StatusOK, &ans)
	if ans["leader_id"] != target.id {
		t.Fatalf("transfer to the leader answered %v", ans)
	}
	writeEverywhere(t, c)

	// Without ?to some other node leads.
	c.mustJSON(via, http.MethodPost, "/admin/cluster/transfer-leadership", nil, http.StatusOK, &ans)
	if ans["previous_leader_id"] != target.id {
		t.Fatalf("transfer without ?to answered %v", ans)
	}
	eventually(t, "another node leads", func() error {
		if l := c.leader(); l == target {
			return fmt.Errorf("%s still leads", l.id)
		}
		return nil
	})
	writeEverywhere(t, c)
}

// writeEverywhere writes through every node and reads it back through
// every node.
func writeEverywhere(t *testing.T, c *tcluster) {
	t.Helper()
	for i, tn := range c.nodes {
		enable := i%2 == 0
		var got wire.Enabled
		c.mustJSON(tn, http.MethodPost, fmt.Sprintf("/admin/maintenance?enable=%t", enable), nil, http.StatusOK, &got)
		if got.Enabled != enable {
			t.Fatalf("write through %s: %+v", tn.id, got)
		}
		for _, reader := range c.nodes {
			c.mustJSON(reader, http.MethodGet, "/admin/maintenance", nil, http.StatusOK, &got)
			if got.Enabled != enable {
				t.Fatalf("read through %s after a write through %s: %+v", reader.id, tn.id, got)
			}
		}
	}
}
