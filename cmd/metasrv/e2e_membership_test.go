package main

// End-to-end test of membership changes: a fourth node joins through a
// member's RPC address and is removed again.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/metasrv/metasrv/deploy/localcluster"
)

// memberIDs returns the member ids and suffrages in n's /admin/cluster.
func (c *tcluster) memberIDs(n *localcluster.Node) (string, error) {
	v, err := c.clusterView(n)
	if err != nil {
		return "", err
	}
	var ids []string
	for _, m := range v.Members {
		ids = append(ids, m.ID+":"+m.Suffrage)
	}
	return strings.Join(ids, ","), nil
}

// TestJoinAndRemoveFourthNode joins n4 with --join through a follower's RPC
// address (so the join is forwarded to the leader), checks every node's
// /admin/cluster and that n4 serves the API, then removes it with
// DELETE /admin/cluster/members/n4.
func TestJoinAndRemoveFourthNode(t *testing.T) {
	localcluster.SkipIfShort(t)
	c := startCluster(t)
	initial := c.Nodes()
	leader := c.waitReady(initial...)
	f := localcluster.Followers(leader, initial)[0]
	wantEnabled(t, "enable before the join", c.must(http.MethodPost, leader.URL("/admin/maintenance?enable=true&reason=before-join"), nil), true)
	clusterID := func() string {
		v, err := c.clusterView(leader)
		if err != nil {
			t.Fatal(err)
		}
		return v.ClusterID
	}()

	n4 := c.AddNode(f.RPCAddr)
	if err := n4.Start(); err != nil {
		t.Fatal(err)
	}
	all := c.Nodes()
	c.waitReady(all...)
	c.Eventually("every node lists n4 as a reachable voter", func() error {
		for _, n := range all {
			v, err := c.clusterView(n)
			if err != nil {
				return err
			}
			if v.ClusterID != clusterID {
				return fmt.Errorf("%s cluster_id %q, want %q", n.ID, v.ClusterID, clusterID)
			}
			if len(v.Members) != 4 {
				return fmt.Errorf("%s lists %d members: %+v", n.ID, len(v.Members), v.Members)
			}
			for _, m := range v.Members {
				if m.ID == n4.ID && (m.Suffrage != "voter" || m.RaftAddr != n4.RaftAddr || m.RPCAddr != n4.RPCAddr || !m.Reachable || m.Version == "") {
					return fmt.Errorf("%s lists n4 as %+v", n.ID, m)
				}
			}
		}
		return nil
	})

	// n4 serves the API: a consistent read sees the flag set before it
	// joined, and a write through it is visible everywhere.
	wantEnabled(t, "read through n4", c.must(http.MethodGet, n4.URL("/admin/maintenance"), nil), true)
	wantEnabled(t, "write through n4", c.must(http.MethodPost, n4.URL("/admin/maintenance?enable=false&reason=via-n4"), nil), false)
	c.everywhereEnabled(false, all...)

	// Remove it through a follower (forwarded to the leader).
	r := c.mustOK(http.MethodDelete, f.URL("/admin/cluster/members/"+n4.ID), nil)
	if strings.TrimSpace(string(r.Body)) != `{"removed":"n4"}` {
		t.Fatalf("DELETE n4: %s", r)
	}
	c.Eventually("n4 gone from every remaining node's view", func() error {
		for _, n := range initial {
			ids, err := c.memberIDs(n)
			if err != nil {
				return err
			}
			if ids != "n1:voter,n2:voter,n3:voter" {
				return fmt.Errorf("%s members %s", n.ID, ids)
			}
		}
		return nil
	})
	if r := c.must(http.MethodDelete, f.URL("/admin/cluster/members/"+n4.ID), nil); r.Code != http.StatusNotFound {
		t.Fatalf("removing n4 twice: %s, want 404", r)
	}

	// Both changes are in the event log.
	var joined, removed bool
	for _, e := range c.allEvents(leader) {
		if e.Fields["id"] != n4.ID {
			continue
		}
		switch e.Type {
		case "member_joined":
			joined = e.Fields["rpc_addr"] == n4.RPCAddr && e.Fields["raft_addr"] == n4.RaftAddr
		case "member_removed":
			removed = joined
		}
	}
	if !joined || !removed {
		t.Fatalf("events lack member_joined then member_removed for n4 (joined=%t removed=%t)", joined, removed)
	}

	// The removed node, still running, does not disturb the cluster.
	leader = c.waitReady(initial...)
	for _, n := range initial {
		wantEnabled(t, n.ID+" write after removal", c.must(http.MethodPost, n.URL("/admin/maintenance?enable=true&reason=after-remove-"+n.ID), nil), true)
		c.everywhereEnabled(true, initial...)
	}
	if ids, err := c.memberIDs(leader); err != nil || ids != "n1:voter,n2:voter,n3:voter" {
		t.Fatalf("members after removal and writes: %s %v", ids, err)
	}
	n4.Kill()
	c.waitReady(initial...)
	c.everywhereEnabled(true, initial...)
}
