package raftnode

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/certs"
	"github.com/metasrv/metasrv/server/certs/certstest"
)

// tlsStream is a stream layer under peer TLS with files' certificate.
func tlsStream(t *testing.T, files certs.Files, acceptPlain bool, removed func(string) bool) (*streamLayer, *prometheus.CounterVec) {
	t.Helper()
	sl, err := newStreamLayer("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sl.Close() })
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "refused"}, []string{"reason"})
	sl.secure(secureOpts{src: certstest.Source(t, files), acceptPlain: acceptPlain, removed: removed,
		refused: refused, maxPerPeer: 2 * (maxPool + 2)})
	return sl, refused
}

func plainStream(t *testing.T) *streamLayer {
	t.Helper()
	sl, err := newStreamLayer("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sl.Close() })
	return sl
}

// clientTransport is an attacker's (or a plain peer's) NetworkTransport
// over sl, without our wrapper: it dials the targets it is given.
func clientTransport(t *testing.T, sl *streamLayer) *raft.NetworkTransport {
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: sl, MaxPool: 1, Timeout: 2 * time.Second})
	t.Cleanup(func() { tr.Close() })
	return tr
}

// tlsNode starts a single bootstrapped node n1 under peer TLS from pki.
func tlsNode(t *testing.T, pki *certstest.PKI) *Node {
	t.Helper()
	cfg := nodeConfig(t, "n1")
	cfg.PeerTLS = certstest.Source(t, pki.Node("n1"))
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Start(func(ctx context.Context) []Worker { return nil }, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTest)
		defer cancel()
		n.Close(ctx)
	})
	waitFor(t, "ready leader", n.IsReadyLeader)
	// Let its own first writes (cluster id, member entry) settle.
	waitFor(t, "a quiet log", func() bool {
		last := n.raft.LastIndex()
		time.Sleep(300 * time.Millisecond)
		_, ok := n.FSM().Member("n1")
		return ok && n.raft.LastIndex() == last
	})
	return n
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

func refusedCount(n *Node, reason string) float64 {
	return counterValue(n.metrics.connRefused.WithLabelValues(reason))
}

// A plaintext raft client cannot append to a TLS node.
func TestPeerTLSRefusesPlaintextAppend(t *testing.T) {
	pki := certstest.New(t, "cluster")
	n := tlsNode(t, pki)
	last := n.raft.LastIndex()
	term := n.raft.CurrentTerm()

	tr := clientTransport(t, plainStream(t))
	cmd, err := fsm.Encode(fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: true, By: "attacker", Time: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	req := raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("n2"), Addr: []byte("127.0.0.1:1")},
		Term: term + 5, PrevLogEntry: last, PrevLogTerm: term, LeaderCommitIndex: last + 1,
		Entries: []*raft.Log{{Index: last + 1, Term: term + 5, Type: raft.LogCommand, Data: cmd}}}
	var resp raft.AppendEntriesResponse
	if err := tr.AppendEntries("n1", raft.ServerAddress(n.AdvertiseRaftAddr()), &req, &resp); err == nil {
		t.Fatalf("plaintext AppendEntries to a TLS node answered %+v", resp)
	}
	time.Sleep(100 * time.Millisecond)
	if got := n.raft.LastIndex(); got != last {
		t.Fatalf("last index moved %d → %d", last, got)
	}
	if n.raft.CurrentTerm() != term || n.FSM().Maintenance().Enabled {
		t.Fatalf("term %d → %d, maintenance %t", term, n.raft.CurrentTerm(), n.FSM().Maintenance().Enabled)
	}
	waitFor(t, "refusal counted", func() bool { return refusedCount(n, "plaintext") >= 1 })
}

// TLS clients with the wrong CA, role or a removed id are refused before
// raft reads a byte: a RequestVote changes no term. A member id the node
// has never heard of is accepted (a lagging follower must accept a newer
// leader).
func TestPeerTLSRefusesWrongIdentities(t *testing.T) {
	pki := certstest.New(t, "cluster")
	other := certstest.New(t, "other")
	n := tlsNode(t, pki)
	ctx, cancel := context.WithTimeout(context.Background(), waitTest)
	defer cancel()
	if _, err := n.Propose(ctx, fsm.CmdRemoveMember, fsm.RemoveMember{ID: "n9", By: "test", Time: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if !n.FSM().MemberRemoved("n9") {
		t.Fatal("n9 not recorded as removed")
	}
	// Each attacker trusts the real CA (so it would accept the server).
	trustReal := func(f certs.Files) certs.Files { f.CA = []string{pki.CAFile}; return f }
	for _, tc := range []struct {
		name   string
		files  certs.Files
		reason string // "" = accepted
	}{
		{"other CA", trustReal(other.Node("n2")), "certificate"},
		{"client role", trustReal(pki.Client("n2")), "role"},
		{"datanode role", trustReal(pki.Datanode(2)), "role"},
		{"removed member", pki.Node("n9"), "removed"},
		{"unknown member id", pki.Node("n7"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sl, _ := tlsStream(t, tc.files, false, nil)
			tr := clientTransport(t, sl)
			term := n.raft.CurrentTerm()
			before := refusedCount(n, tc.reason)
			req := raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("n2"), Addr: []byte("127.0.0.1:1")},
				Term: term + 10, LastLogIndex: 1 << 40, LastLogTerm: term + 10}
			var resp raft.RequestVoteResponse
			err := tr.RequestVote("n1", peerTarget("n1", raft.ServerAddress(n.AdvertiseRaftAddr())), &req, &resp)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("a member certificate of an unknown id was refused: %v", err)
				}
				return // the vote itself may move the term: that is raft's business
			}
			if err == nil {
				t.Fatalf("RequestVote answered %+v", resp)
			}
			if got := n.raft.CurrentTerm(); got != term {
				t.Fatalf("term moved %d → %d", term, got)
			}
			waitFor(t, "refusal counted as "+tc.reason, func() bool { return refusedCount(n, tc.reason) > before })
		})
	}
}

// serveEcho accepts on sl and echoes each connection until it closes.
func serveEcho(t *testing.T, sl *streamLayer) {
	go func() {
		for {
			c, err := sl.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
}

// servePlainRaftLike is a plaintext peer that, like raft's
// NetworkTransport, closes a connection whose first byte is no rpc type.
func servePlainRaftLike(t *testing.T, sl *streamLayer) {
	go func() {
		for {
			c, err := sl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var b [1]byte
				if _, err := io.ReadFull(c, b[:]); err != nil || b[0] > maxRPCType {
					return
				}
				c.Write(b[:])
				io.Copy(c, c)
			}()
		}
	}()
}

func echoes(c net.Conn) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{1, 2, 3}); err != nil {
		return err
	}
	var b [3]byte
	_, err := io.ReadFull(c, b[:])
	return err
}

// Dialing checks the id meant against the server certificate's CN; a
// dial without an id is refused; plaintext is used only with accept-both
// and only for a peer that does not speak TLS.
func TestPeerTLSDialByID(t *testing.T) {
	pki := certstest.New(t, "cluster")
	tlsSrv, _ := tlsStream(t, pki.Node("n3"), false, nil)
	serveEcho(t, tlsSrv)
	plainSrv := plainStream(t)
	servePlainRaftLike(t, plainSrv)
	bothSrv, _ := tlsStream(t, pki.Node("n4"), true, nil)
	serveEcho(t, bothSrv)

	client, _ := tlsStream(t, pki.Node("n1"), false, nil)
	clientBoth, _ := tlsStream(t, pki.Node("n1"), true, nil)
	addr := func(sl *streamLayer) raft.ServerAddress { return sl.Addr().(advertisedAddr).ra() }
	for _, tc := range []struct {
		name      string
		client    *streamLayer
		target    raft.ServerAddress
		ok, isTLS bool
	}{
		{"right id", client, peerTarget("n3", addr(tlsSrv)), true, true},
		{"certificate names another id", client, peerTarget("n2", addr(tlsSrv)), false, false},
		{"no id", client, addr(tlsSrv), false, false},
		{"another id, accept-both: no fallback", clientBoth, peerTarget("n2", addr(tlsSrv)), false, false},
		{"plaintext peer, TLS only", client, peerTarget("n5", addr(plainSrv)), false, false},
		{"plaintext peer, accept-both: fallback", clientBoth, peerTarget("n5", addr(plainSrv)), true, false},
		{"accept-both peer, TLS preferred", clientBoth, peerTarget("n4", addr(bothSrv)), true, true},
		{"accept-both peer, wrong id", clientBoth, peerTarget("n3", addr(bothSrv)), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.client.Dial(tc.target, 2*time.Second)
			if err == nil {
				defer c.Close()
				err = echoes(c)
			}
			if (err == nil) != tc.ok {
				t.Fatalf("dial %s: %v, want ok=%t", tc.target, err, tc.ok)
			}
			if tc.name == "no id" && !errors.Is(err, ErrDialWithoutID) {
				t.Fatalf("dial without id: %v", err)
			}
			if tc.ok {
				_, isTLS := c.(*peerConn)
				if isTLS != tc.isTLS {
					t.Fatalf("TLS = %t, want %t", isTLS, tc.isTLS)
				}
			}
		})
	}
	// A plaintext client reaches the accept-both listener.
	c, err := plainStream(t).Dial(addr(bothSrv), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := echoes(c); err != nil {
		t.Fatalf("plaintext to an accept-both listener: %v", err)
	}
}

func (a advertisedAddr) ra() raft.ServerAddress { return raft.ServerAddress(a) }

// One client that never speaks does not block another's handshake, and
// the inbound connections per id are capped.
func TestPeerTLSConcurrentHandshakesAndCap(t *testing.T) {
	pki := certstest.New(t, "cluster")
	srv, refused := tlsStream(t, pki.Node("n1"), false, nil)
	serveEcho(t, srv)
	silent, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	client, _ := tlsStream(t, pki.Node("n2"), false, nil)
	limit := 2 * (maxPool + 2)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	for i := 0; i < limit; i++ {
		c, err := client.Dial(peerTarget("n1", raft.ServerAddress(srv.Addr().String())), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := echoes(c); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("handshakes took %s behind a silent client", d)
	}
	c, err := client.Dial(peerTarget("n1", raft.ServerAddress(srv.Addr().String())), 2*time.Second)
	if err == nil {
		err = echoes(c)
		c.Close()
	}
	if err == nil {
		t.Fatalf("connection %d beyond the cap of %d was served", limit+1, limit)
	}
	waitFor(t, "limit counted", func() bool { return counterValue(refused.WithLabelValues("limit")) == 1 })
	// Closing one makes room again.
	conns[0].Close()
	waitFor(t, "room after a close", func() bool {
		c, err := client.Dial(peerTarget("n1", raft.ServerAddress(srv.Addr().String())), 2*time.Second)
		if err != nil {
			return false
		}
		conns = append(conns, c)
		return echoes(c) == nil
	})
}

// Reloading a CA bundle that drops the old CA closes the connections of
// peers whose certificates it no longer trusts, in both directions.
func TestPeerTLSRotationClosesUntrusted(t *testing.T) {
	old := certstest.New(t, "old")
	next := certstest.New(t, "new")
	bundle := func(t *testing.T, name string, cas ...*certstest.PKI) string {
		p := filepath.Join(t.TempDir(), name)
		var b []byte
		for _, ca := range cas {
			b = append(b, ca.CA.CertPEM()...)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srvFiles := old.Node("n1")
	srvCA := bundle(t, "srv-ca.pem", old, next)
	srvFiles.CA = []string{srvCA}
	srv, refused := tlsStream(t, srvFiles, false, nil)
	serveEcho(t, srv)

	// n2 still has an old certificate; n3 already a new one.
	stale, _ := tlsStream(t, certs.Files{Cert: old.Node("n2").Cert, Key: old.Node("n2").Key, CA: []string{srvCA}}, false, nil)
	fresh, _ := tlsStream(t, certs.Files{Cert: next.Node("n3").Cert, Key: next.Node("n3").Key, CA: []string{srvCA}}, false, nil)
	target := peerTarget("n1", raft.ServerAddress(srv.Addr().String()))
	cs, err := stale.Dial(target, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	cf, err := fresh.Dial(target, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	for _, c := range []net.Conn{cs, cf} {
		if err := echoes(c); err != nil {
			t.Fatal(err)
		}
	}
	if in, _ := srv.openConns(); in != 2 {
		t.Fatalf("%d inbound connections, want 2", in)
	}
	// The server drops the old CA.
	if err := os.WriteFile(srvCA, next.CA.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, err := srv.sec.src.Reload(); err != nil || !changed {
		t.Fatalf("reload: %t %v", changed, err)
	}
	if err := echoes(cs); err == nil {
		t.Fatal("the connection of a peer the new bundle does not trust still works")
	}
	if err := echoes(cf); err != nil {
		t.Fatalf("the connection of a trusted peer: %v", err)
	}
	if got := counterValue(refused.WithLabelValues("untrusted")); got != 1 {
		t.Fatalf("untrusted closes %v, want 1", got)
	}
	// Outbound: fresh reads the same bundle, which no longer trusts the
	// server's (old CA) certificate: its connection to it is closed.
	if changed, err := fresh.sec.src.Reload(); err != nil || !changed {
		t.Fatalf("reload: %t %v", changed, err)
	}
	if _, out := fresh.openConns(); out != 0 {
		t.Fatalf("fresh keeps %d outbound connections to an untrusted server", out)
	}
	if err := echoes(cf); err == nil {
		t.Fatal("an outbound connection to an untrusted server still works")
	}
}

// freeAddr is a loopback address nothing listens on (for now).
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// lateListener starts a raft peer at addr after delay that answers
// AppendEntries and InstallSnapshot; the test's cleanup waits for it and
// stops it.
func lateListener(t *testing.T, addr string, delay time.Duration) {
	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-time.After(delay):
		case <-stop:
			return
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return
		}
		sl := &streamLayer{Listener: ln, advertise: advertisedAddr(addr), acceptCh: make(chan net.Conn), done: make(chan struct{})}
		peer := raft.NewNetworkTransport(sl, 1, 2*time.Second, io.Discard)
		defer peer.Close()
		for {
			select {
			case <-stop:
				return
			case rpc := <-peer.Consumer():
				switch rpc.Command.(type) {
				case *raft.AppendEntriesRequest:
					rpc.Respond(&raft.AppendEntriesResponse{Term: 1}, nil)
				case *raft.InstallSnapshotRequest:
					rpc.Respond(&raft.InstallSnapshotResponse{Term: 1}, nil)
				default:
					rpc.Respond(nil, errors.New("no"))
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// AppendEntries and InstallSnapshot to a peer that refuses connections
// retry the dial until it listens; votes and TimeoutNow fail at once; Close
// ends a retry at once.
func TestPeerTransportRetriesRefusedDials(t *testing.T) {
	newTransport := func(t *testing.T) *peerTransport {
		tr := newPeerTransport(plainStream(t), maxPool, 10*time.Second, nil)
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	for _, tc := range []struct {
		name  string
		call  func(tr *peerTransport, addr raft.ServerAddress) error
		retry bool
	}{
		{"AppendEntries", func(tr *peerTransport, a raft.ServerAddress) error {
			return tr.AppendEntries("n2", a, &raft.AppendEntriesRequest{Term: 1}, &raft.AppendEntriesResponse{})
		}, true},
		{"InstallSnapshot", func(tr *peerTransport, a raft.ServerAddress) error {
			return tr.InstallSnapshot("n2", a, &raft.InstallSnapshotRequest{Term: 1}, &raft.InstallSnapshotResponse{}, bytes.NewReader(nil))
		}, true},
		{"RequestVote", func(tr *peerTransport, a raft.ServerAddress) error {
			return tr.RequestVote("n2", a, &raft.RequestVoteRequest{Term: 1}, &raft.RequestVoteResponse{})
		}, false},
		{"RequestPreVote", func(tr *peerTransport, a raft.ServerAddress) error {
			return tr.RequestPreVote("n2", a, &raft.RequestPreVoteRequest{Term: 1}, &raft.RequestPreVoteResponse{})
		}, false},
		{"TimeoutNow", func(tr *peerTransport, a raft.ServerAddress) error {
			return tr.TimeoutNow("n2", a, &raft.TimeoutNowRequest{}, &raft.TimeoutNowResponse{})
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTransport(t)
			addr := freeAddr(t)
			// The peer starts listening 300 ms later; it answers every rpc.
			lateListener(t, addr, 300*time.Millisecond)
			start := time.Now()
			err := tc.call(tr, raft.ServerAddress(addr))
			took := time.Since(start)
			if tc.retry {
				if err != nil {
					t.Fatalf("%s to a peer that came up after %s: %v", tc.name, took, err)
				}
				if took < 250*time.Millisecond {
					t.Fatalf("answered in %s, before the peer listened", took)
				}
				return
			}
			if err == nil || took > 250*time.Millisecond {
				t.Fatalf("%s retried: %v after %s", tc.name, err, took)
			}
		})
	}
	t.Run("Close ends a retry", func(t *testing.T) {
		tr := newTransport(t)
		addr := raft.ServerAddress(freeAddr(t))
		done := make(chan error, 1)
		go func() {
			done <- tr.AppendEntries("n2", addr, &raft.AppendEntriesRequest{Term: 1}, &raft.AppendEntriesResponse{})
		}()
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		tr.Close()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("no error from a peer that never listened")
			}
			t.Logf("retry ended %s after Close", time.Since(start))
		case <-time.After(time.Second):
			t.Fatal("retry still running a second after Close")
		}
	})
}

// The RPC header carries this node's plain address, and the provider gives
// the NetworkTransport the id-qualified target it recorded.
func TestPeerTransportAddressBook(t *testing.T) {
	tr := newPeerTransport(plainStream(t), maxPool, time.Second, nil)
	defer tr.Close()
	if got := string(tr.EncodePeer("n1", "host:1")); got != "host:1" {
		t.Fatalf("EncodePeer = %q", got)
	}
	if _, err := tr.book.ServerAddr("n2"); err == nil {
		t.Fatal("an id never seen has an address")
	}
	tr.book.record("n2", "host:2")
	if got, err := tr.book.ServerAddr("n2"); err != nil || got != "n2@host:2" {
		t.Fatalf("ServerAddr = %q %v", got, err)
	}
	for target, want := range map[string][2]string{
		"n2@host:2": {"n2", "host:2"}, "host:2": {"", "host:2"}, "a@b@[::1]:3": {"a@b", "[::1]:3"},
	} {
		if id, hp := splitTarget(target); id != want[0] || hp != want[1] {
			t.Errorf("splitTarget(%q) = %q %q", target, id, hp)
		}
	}
}
