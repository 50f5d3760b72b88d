package raftnode

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
)

func nodeConfig(t *testing.T, id string) Config {
	return Config{NodeID: id, RaftAddr: "127.0.0.1:0", AdvertiseRaftAddr: "127.0.0.1:0",
		AdvertiseRPCAddr: "127.0.0.1:1", DataDir: t.TempDir(),
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
		LeaderLeaseTimeout: 300 * time.Millisecond, LeaderWait: 2 * time.Second, ApplyTimeout: 5 * time.Second,
		SnapshotThreshold: 8192, SnapshotInterval: time.Minute, SnapshotRetain: 1,
		OnFatal: func(err error) { t.Errorf("fatal: %v", err) }}
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTest)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, waitTest)
}

// A single bootstrapped node leads, runs the term hook, fixes a cluster id,
// records itself, and answers proposals and reads.
func TestSingleNodeLifecycle(t *testing.T) {
	cfg := nodeConfig(t, "n1")
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(n.AdvertiseRaftAddr(), ":0") {
		t.Fatalf("advertised raft addr %s", n.AdvertiseRaftAddr())
	}
	var terms, workers atomic.Int32
	n.Start(func(ctx context.Context) []Worker {
		terms.Add(1)
		return []Worker{func(ctx context.Context) { workers.Add(1); <-ctx.Done() }}
	}, nil)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTest)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := n.Close(ctx); err != nil {
			t.Errorf("second close: %v", err)
		}
	}()
	waitFor(t, "ready leader", n.IsReadyLeader)
	if !n.IsLeader() || !n.BarrierDone() || !n.KnowsLeader() || n.ID() != "n1" || n.Raft() == nil {
		t.Fatalf("leader state: leader=%t barrier=%t knows=%t", n.IsLeader(), n.BarrierDone(), n.KnowsLeader())
	}
	waitFor(t, "term hook and worker", func() bool { return terms.Load() == 1 && workers.Load() == 1 })
	waitFor(t, "cluster id and own member entry", func() bool {
		m, ok := n.FSM().Member("n1")
		return n.FSM().ClusterID() != "" && ok && m.RPCAddr == "127.0.0.1:1"
	})
	waitFor(t, "directory file follows the member table", func() bool {
		return n.DirectoryRPCAddr("n1") == "127.0.0.1:1" && n.dir.clusterID() == n.FSM().ClusterID()
	})
	if id, addr := n.Leader(); id != "n1" || addr != "127.0.0.1:1" {
		t.Fatalf("Leader() = %q %q", id, addr)
	}
	st := n.Status()
	if st.NodeID != "n1" || st.State != "leader" || st.LeaderID != "n1" || st.Term == 0 {
		t.Fatalf("status %+v", st)
	}
	servers, err := n.Servers()
	if err != nil || len(servers) != 1 || servers[0].ID != "n1" || !servers[0].Voter || servers[0].Suffrage != "voter" {
		t.Fatalf("servers %+v %v", servers, err)
	}
	if p := n.ClusterProtocol(); p != fsm.Protocol {
		t.Fatalf("cluster protocol %d, want %d", p, fsm.Protocol)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitTest)
	defer cancel()
	res, err := n.Propose(ctx, fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: true, By: "test", Time: time.Now().UTC()})
	if err != nil || Rejected(res) != nil || !res.Maintenance.Enabled {
		t.Fatalf("propose: %+v %v", res, err)
	}
	if err := n.ReadIndex(ctx); err != nil {
		t.Fatalf("read index: %v", err)
	}
	if !n.FSM().Maintenance().Enabled {
		t.Fatal("maintenance not applied after read index")
	}
	if err := n.WaitApplied(ctx, res.Index); err != nil {
		t.Fatal(err)
	}
	short, scancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err = n.WaitApplied(short, res.Index+1000)
	scancel()
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("WaitApplied beyond the log: %v, want ErrTimeout", err)
	}
	// A mismatched epoch is a rejection, not an error.
	bad := uint64(99)
	res, err = n.Propose(ctx, fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: false, IfEpoch: &bad, Time: time.Now().UTC()})
	var rej *Rejection
	if err != nil || !errors.As(Rejected(res), &rej) || rej.Result.Code != fsm.RejectEpochMismatch {
		t.Fatalf("if_epoch mismatch: %+v %v", res, err)
	}
	// An expired context proposes nothing.
	done, dcancel := context.WithCancel(ctx)
	dcancel()
	if _, err := n.Propose(done, fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: false}); !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("propose with a cancelled context: %v", err)
	}

	// Transfers: to itself is a no-op, to a stranger is not found, to
	// anyone fails alone.
	if lid, err := n.TransferLeadership(ctx, "n1"); err != nil || lid != "n1" {
		t.Fatalf("transfer to self: %q %v", lid, err)
	}
	if _, err := n.TransferLeadership(ctx, "n9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("transfer to a stranger: %v", err)
	}
	if _, err := n.TransferLeadership(ctx, ""); !errors.Is(err, ErrTransferFailed) {
		t.Fatalf("transfer with no other voter: %v", err)
	}
	if err := n.RemoveServer(ctx, "n9"); err != nil {
		t.Logf("removing a stranger: %v", err)
	}
	n.NoteOutcomeUnknown()
	n.StepDownForShutdown(ctx) // alone: nothing to hand over
	if !n.IsLeader() {
		t.Fatal("stepped down with no other voter")
	}
}

func TestOpenRefusesPeersThatMisnameThisNode(t *testing.T) {
	cfg := nodeConfig(t, "n1")
	cfg.Peers = []Peer{{ID: "n1", RaftAddr: "127.0.0.1:1"}, {ID: "n2", RaftAddr: "127.0.0.1:2"}}
	n, err := Open(cfg)
	if err == nil {
		n.Close(context.Background())
		t.Fatal("Open accepted --peers naming another raft address for this node")
	}
	if !strings.Contains(err.Error(), "--peers gives n1=127.0.0.1:1") {
		t.Fatalf("error %v", err)
	}
}

func TestOpenWithoutStateWaitsToJoinOrBeAdded(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(*Config)
	}{
		{"join", func(c *Config) { c.Join = []string{"127.0.0.1:1"} }},
		{"existing", func(c *Config) { c.InitialClusterState = ClusterStateExisting }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := nodeConfig(t, "n2")
			tc.mut(&cfg)
			n, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close(context.Background())
			if tc.name == "join" != n.needJoin.Load() {
				t.Fatalf("needJoin = %t", n.needJoin.Load())
			}
			if servers, err := n.Servers(); err != nil || len(servers) != 0 {
				t.Fatalf("a node that did not bootstrap has servers %+v %v", servers, err)
			}
			if err := n.ReadIndex(context.Background()); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("read index off the leader: %v", err)
			}
			if n.WaitLeaderReady(context.Background()) {
				t.Fatal("WaitLeaderReady on a follower")
			}
			if id, addr := n.Leader(); id != "" || addr != "" {
				t.Fatalf("Leader() = %q %q", id, addr)
			}
			if p := n.ClusterProtocol(); p != fsm.Protocol {
				t.Logf("protocol of an empty configuration: %d", p)
			}
			if err := n.joinOnce(); err == nil {
				t.Fatal("joinOnce without peers succeeded")
			}
			if err := n.registerSelf(); err == nil {
				t.Fatal("registerSelf without peers succeeded")
			}
		})
	}
}

func TestSleepCtxAndWaitFuture(t *testing.T) {
	if !SleepCtx(context.Background(), time.Millisecond) {
		t.Fatal("SleepCtx did not sleep")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if SleepCtx(ctx, time.Hour) {
		t.Fatal("SleepCtx ignored a cancelled context")
	}
}
