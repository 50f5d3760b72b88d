package server

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/certs"
	"github.com/metasrv/metasrv/server/certs/certstest"
	"github.com/metasrv/metasrv/server/raftnode"
	"github.com/metasrv/metasrv/server/wire"
)

// Membership changes that cannot strand the cluster: a join is refused
// unless the new member answers on its raft address as itself, and a change
// that would leave fewer reachable voters than a quorum is refused unless
// forced.

// keepDataDirs makes t's temporary directories (the nodes' data dirs)
// outlive the cluster started after it: t.TempDir registers their removal
// on first use, and cleanups run last registered first, so otherwise they
// are removed while the nodes still write to them.
func keepDataDirs(t *testing.T) {
	t.Helper()
	_ = t.TempDir()
}

// deadAddr is a loopback address nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// answerer listens on loopback until the test ends; serve handles each
// connection (which is closed afterwards, or at the end of the test).
func answerer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var open []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			go func() { serve(c); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range open {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// listening is the address of a loopback listener that accepts and closes
// every connection: enough for a plaintext join's probe.
func listening(t *testing.T) string { return answerer(t, func(net.Conn) {}) }

// silent accepts and never says anything.
func silent(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// notTLS answers anything with an HTTP error, as a web server would.
func notTLS(c net.Conn) {
	_, _ = c.Read(make([]byte, 512))
	_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"))
}

// tlsServer completes a TLS handshake presenting f's certificate, then
// waits for the peer to close.
func tlsServer(t *testing.T, f certs.Files) func(net.Conn) {
	cfg := certstest.Source(t, f).ServerConfig(tls.VersionTLS13, false, nil)
	return func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if tc.Handshake() == nil {
			_, _ = tc.Read(make([]byte, 1))
		}
	}
}

type ghost struct {
	name string
	addr func(t *testing.T) string
	// why is a piece of the refusal's message.
	why string
}

// refuseGhosts joins n4 at each ghost's raft address, through a follower
// (forwarded) and the leader, and wants 409 join_unreachable naming the
// address, the configuration unchanged and the leader in place.
func refuseGhosts(t *testing.T, c *tcluster, ghosts []ghost) {
	t.Helper()
	lead := c.leader()
	term := lead.node.raft.Status().Term
	for _, g := range ghosts {
		t.Run(g.name, func(t *testing.T) {
			addr := g.addr(t)
			for _, via := range []*tnode{c.follower(), lead} {
				body := wire.JoinRequest{ID: "n4", RaftAddr: addr, RPCAddr: "127.0.0.1:2", Protocol: fsm.Protocol}
				start := time.Now()
				r := c.do(via, http.MethodPost, "/admin/cluster/join", body)
				took := time.Since(start)
				var e map[string]string
				if err := json.Unmarshal(r.body, &e); err != nil || r.status != http.StatusConflict || e["code"] != "join_unreachable" {
					t.Fatalf("join of a ghost at %s through %s: %s, want 409 join_unreachable", addr, via.id, r)
				}
				if !strings.Contains(e["error"], addr) || !strings.Contains(e["error"], g.why) {
					t.Fatalf("message %q should name %s and say %q", e["error"], addr, g.why)
				}
				t.Logf("refusal: %s", e["error"])
				if limit := raftnode.ProbeTimeout + 3*time.Second; took > limit {
					t.Fatalf("the refusal took %s, more than %s", took, limit)
				}
			}
			if ids := memberIDs(c.clusterView(lead)); fmt.Sprint(ids) != "[n1/voter n2/voter n3/voter]" {
				t.Fatalf("members after a refused join: %v", ids)
			}
			if l := c.leader(); l != lead || l.node.raft.Status().Term != term {
				t.Fatalf("leader %s term %d, want %s still leading in term %d", l.id, l.node.raft.Status().Term, lead.id, term)
			}
		})
	}
	c.mustJSON(lead, http.MethodPost, "/admin/maintenance?enable=true&reason=after-ghosts", nil, http.StatusOK, nil)
}

// wantFourVoters waits until the leader's configuration has n1..n4 voting.
func wantFourVoters(t *testing.T, c *tcluster) {
	t.Helper()
	eventually(t, "n4 is a voter", func() error {
		if ids := memberIDs(c.clusterView(c.leader())); fmt.Sprint(ids) != "[n1/voter n2/voter n3/voter n4/voter]" {
			return fmt.Errorf("members %v", ids)
		}
		return nil
	})
}

func TestJoinRefusesGhostPlaintext(t *testing.T) {
	keepDataDirs(t)
	c := startCluster(t, 3, nil)
	refuseGhosts(t, c, []ghost{
		{"nobody listens", deadAddr, "TCP connection to raft address"},
	})
	// A real node still joins through --join (its raft listener is up
	// before it asks), and an answered manual join still works.
	c.addNode("n4", nil)
	wantFourVoters(t, c)
}

func TestJoinRefusesGhostPeerTLS(t *testing.T) {
	pki := certstest.New(t, "cluster")
	other := certstest.New(t, "another-cluster")
	mut := peerTLS(t, pki, false)
	c := startCluster(t, 3, mut)
	refuseGhosts(t, c, []ghost{
		{"nobody listens", deadAddr, "connection refused"},
		{"a listener that does not speak TLS", func(t *testing.T) string { return answerer(t, notTLS) }, "mutual TLS handshake"},
		{"a listener that says nothing", func(t *testing.T) string { return answerer(t, silent) }, "mutual TLS handshake"},
		{"another member's certificate", func(t *testing.T) string { return answerer(t, tlsServer(t, pki.Node("n9"))) }, "certificate names n9"},
		{"the right name from another CA", func(t *testing.T) string { return answerer(t, tlsServer(t, other.Node("n4"))) }, "mutual TLS handshake"},
		{"a datanode's certificate", func(t *testing.T) string { return answerer(t, tlsServer(t, pki.Datanode(4))) }, "is not metasrv-node"},
	})
	c.addNode("n4", mut)
	wantFourVoters(t, c)
}

// stopFollower stops one follower of a 3-node cluster; it returns the
// leader, the stopped node and the follower still running.
func stopFollower(t *testing.T, c *tcluster) (lead, stopped, live *tnode) {
	t.Helper()
	lead = c.leader()
	for _, tn := range c.nodes {
		switch {
		case tn == lead:
		case stopped == nil:
			stopped = tn
		default:
			live = tn
		}
	}
	c.stop(stopped)
	return lead, stopped, live
}

func TestRemovalThatWouldLoseQuorumIsRefused(t *testing.T) {
	keepDataDirs(t)
	c := startCluster(t, 3, nil)
	lead, stopped, live := stopFollower(t, c)
	refused := func(t *testing.T, r reply, why string) {
		t.Helper()
		var e map[string]string
		_ = json.Unmarshal(r.body, &e)
		t.Logf("refusal: %s", e["error"])
		for _, want := range []string{"removing member " + live.id, "leave 2 voters, 1 of them reachable (" + lead.id + "), and a quorum needs 2", "unreachable: " + stopped.id + " (" + why, "?force=true"} {
			if !strings.Contains(e["error"], want) {
				t.Fatalf("message %q lacks %q", e["error"], want)
			}
		}
	}
	for _, tc := range []struct {
		name, query string
		via         *tnode
		status      int
		code        string
	}{
		{"through the leader", "", lead, http.StatusConflict, "quorum_at_risk"},
		{"forwarded", "", live, http.StatusConflict, "quorum_at_risk"},
		{"force=false", "?force=false", lead, http.StatusConflict, "quorum_at_risk"},
		{"force not a boolean", "?force=yes-please", lead, http.StatusBadRequest, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Right after the stop raft may not have reported a failed
			// heartbeat yet: the probe of the raft address finds it.
			r := c.do(tc.via, http.MethodDelete, "/admin/cluster/members/"+live.id+tc.query, nil)
			wantError(t, r, tc.status, tc.code)
			if tc.code == "quorum_at_risk" {
				refused(t, r, "raft")
			}
		})
	}
	// Once raft reports the failed heartbeats (the transport retries a
	// refused dial for its 10 s timeout first), the refusal says so.
	eventually(t, "the leader sees "+stopped.id+"'s heartbeats fail", func() error {
		if got := fmt.Sprint(lead.node.raft.Unreachable()); got != "["+stopped.id+"]" {
			return fmt.Errorf("unreachable %s", got)
		}
		return nil
	})
	r := c.do(live, http.MethodDelete, "/admin/cluster/members/"+live.id, nil)
	wantError(t, r, http.StatusConflict, "quorum_at_risk")
	refused(t, r, "raft heartbeats failing")

	if ids := memberIDs(c.clusterView(lead)); fmt.Sprint(ids) != "[n1/voter n2/voter n3/voter]" {
		t.Fatalf("members after refused removals: %v", ids)
	}
	if c.leader() != lead {
		t.Fatalf("leadership moved to %s", c.leader().id)
	}
	// Removing the stopped member leaves 2 voters, both reachable: allowed.
	c.mustJSON(live, http.MethodDelete, "/admin/cluster/members/"+stopped.id, nil, http.StatusOK, nil)
	c.writeEverywhere([]*tnode{lead, live}, true, "two-left")
}

// ?force=true skips the quorum check: the removal goes ahead, the leader
// cannot commit it (its new configuration needs the stopped node) and steps
// down, and the cluster of the two remaining voters comes back once the
// stopped node does.
func TestForcedRemovalSkipsQuorumCheck(t *testing.T) {
	keepDataDirs(t)
	c := startCluster(t, 3, nil)
	lead, stopped, live := stopFollower(t, c)
	r := c.do(lead, http.MethodDelete, "/admin/cluster/members/"+live.id+"?force=true", nil)
	if r.code() == "quorum_at_risk" || r.status == http.StatusBadRequest || r.status == http.StatusNotFound {
		t.Fatalf("forced removal: %s", r)
	}
	eventually(t, "the leader's configuration lacks "+live.id, func() error {
		servers, err := lead.node.raft.Servers()
		if err != nil || len(servers) != 2 || servers[0].ID == live.id || servers[1].ID == live.id {
			return fmt.Errorf("servers %+v (%v)", servers, err)
		}
		return nil
	})
	back := c.restart(stopped)
	c.waitReady(back)
	eventually(t, "the two remaining voters lead again", func() error {
		if l := c.leader(); l != lead && l != back {
			return fmt.Errorf("leader %s", l.id)
		}
		servers, err := back.node.raft.Servers()
		if err != nil || len(servers) != 2 || servers[0].ID == live.id || servers[1].ID == live.id {
			return fmt.Errorf("servers %+v (%v)", servers, err)
		}
		return nil
	})
	// The member table still lists it (the request's outcome was unknown):
	// a retry completes the removal, with nothing left to check.
	c.mustJSON(back, http.MethodDelete, "/admin/cluster/members/"+live.id, nil, http.StatusOK, nil)
	c.writeEverywhere([]*tnode{lead, back}, true, "after-force")
}
