package server

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/metasrv/metasrv/server/certs/certstest"
	"github.com/metasrv/metasrv/server/wire"
)

// peerTLS puts only the raft port under mutual TLS (the API stays HTTP).
func peerTLS(t *testing.T, pki *certstest.PKI, acceptPlain bool) func(*Config) {
	return func(c *Config) {
		c.PeerTLS = certstest.Source(t, pki.Node(c.NodeID))
		c.PeerAcceptPlaintext = acceptPlain
	}
}

// restartWith restarts a stopped node on its data dir and addresses with
// its configuration changed by mutate.
func (c *tcluster) restartWith(tn *tnode, mutate func(*Config)) *tnode {
	c.t.Helper()
	cfg := tn.cfg
	cfg.RPCAddr, cfg.RaftAddr = cfg.AdvertiseRPCAddr, cfg.AdvertiseRaftAddr
	mutate(&cfg)
	return c.start(cfg)
}

// writeEverywhere sets maintenance through the leader and waits until
// every node in live has applied it.
func (c *tcluster) writeEverywhere(live []*tnode, enable bool, reason string) {
	c.t.Helper()
	var e wire.Enabled
	c.mustJSON(c.leader(), http.MethodPost, fmt.Sprintf("/admin/maintenance?enable=%t&reason=%s", enable, reason), nil, http.StatusOK, &e)
	for _, tn := range live {
		eventually(c.t, tn.id+" applied "+reason, func() error {
			if m := tn.node.FSM().Maintenance(); m.Enabled != enable || m.Reason != reason {
				return fmt.Errorf("maintenance %+v", m)
			}
			return nil
		})
	}
}

// plaintextAppendRefused sends a plaintext AppendEntries to tn's raft port
// and reports whether it was refused.
func plaintextAppendRefused(t *testing.T, tn *tnode) bool {
	tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	st := tn.node.raft.Status()
	req := raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("x"), Addr: []byte("127.0.0.1:1")},
		Term: st.Term + 100, PrevLogEntry: st.LastIndex, LeaderCommitIndex: st.LastIndex}
	var resp raft.AppendEntriesResponse
	return tr.AppendEntries(raft.ServerID(tn.id), raft.ServerAddress(tn.cfg.AdvertiseRaftAddr), &req, &resp) != nil
}

// A follower that fell behind catches up from a leader that joined after
// it stopped: its own configuration does not name that leader, and peer
// TLS must not refuse it for that.
func TestPeerTLSLaggingFollowerCatchesUpFromNewLeader(t *testing.T) {
	pki := certstest.New(t, "cluster")
	mut := peerTLS(t, pki, false)
	c := startCluster(t, 3, mut)
	n2, n3 := c.nodes[1], c.nodes[2]
	c.writeEverywhere(c.nodes, true, "three")
	if c.leader() == n3 {
		if _, err := n3.node.raft.TransferLeadership(t.Context(), "n1"); err != nil {
			t.Fatal(err)
		}
	}
	c.stop(n3)
	n4 := c.addNode("n4", mut)
	lead := c.leader()
	var tr map[string]any
	c.mustJSON(lead, http.MethodPost, "/admin/cluster/transfer-leadership?to=n4", nil, http.StatusOK, &tr)
	eventually(t, "n4 leads", func() error {
		if c.leader() != n4 {
			return fmt.Errorf("leader %s", c.leader().id)
		}
		return nil
	})
	c.mustJSON(n4, http.MethodDelete, "/admin/cluster/members/n1", nil, http.StatusOK, nil)
	c.writeEverywhere([]*tnode{n2, n4}, false, "after-n3-stopped")

	back := c.restart(n3)
	c.waitReady(back)
	eventually(t, "n3 caught up", func() error {
		if m := back.node.FSM().Maintenance(); m.Reason != "after-n3-stopped" {
			return fmt.Errorf("maintenance %+v", m)
		}
		return nil
	})
	if _, lid := back.node.raft.Raft().LeaderWithID(); lid != "n4" {
		t.Fatalf("n3 follows %q, want n4", lid)
	}
	// The removed n1 is refused by the others' raft ports from now on.
	if !back.node.FSM().MemberRemoved("n1") || !n4.node.FSM().MemberRemoved("n1") {
		t.Fatal("n1 not recorded as removed")
	}
}

// Turning TLS on by rolling restarts: plaintext → TLS with plaintext
// accepted → TLS only, one node at a time, writes succeeding at every step.
func TestPeerTLSRollingSwitchFromPlaintext(t *testing.T) {
	pki := certstest.New(t, "cluster")
	c := startCluster(t, 3, nil)
	live := append([]*tnode(nil), c.nodes...)
	c.writeEverywhere(live, true, "plaintext")
	for phase, acceptPlain := range []bool{true, false} {
		for i := range live {
			c.stop(live[i])
			live[i] = c.restartWith(live[i], peerTLS(t, pki, acceptPlain))
			c.waitReady(live[i])
			// Let it lead, so its own dialing is exercised too (TLS
			// falling back to plaintext to a plaintext peer in phase 1).
			c.mustJSON(c.leader(), http.MethodPost, "/admin/cluster/transfer-leadership?to="+live[i].id, nil, http.StatusOK, nil)
			eventually(t, live[i].id+" leads", func() error {
				if l := c.leader(); l != live[i] {
					return fmt.Errorf("leader %s", l.id)
				}
				return nil
			})
			reason := fmt.Sprintf("phase%d-%s", phase+1, live[i].id)
			c.writeEverywhere(live, i%2 == 0, reason)
		}
	}
	// TLS only everywhere: a plaintext raft client is refused.
	for _, tn := range live {
		if !plaintextAppendRefused(t, tn) {
			t.Fatalf("%s answered a plaintext AppendEntries after the switch", tn.id)
		}
	}
	c.writeEverywhere(live, true, "tls-only")
}
