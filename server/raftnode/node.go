package raftnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metasrv/metasrv/fsm"
)

// maxPool is how many idle connections raft keeps per peer.
const maxPool = 3

// Node is one member's raft and replicated state.
type Node struct {
	cfg Config
	log hclog.Logger

	fsm       *fsm.FSM
	raft      *raft.Raft
	store     *raftboltdb.BoltStore
	transport *peerTransport
	stream    *streamLayer
	hb        heartbeats // the leader's view of failed heartbeats (reachability.go)
	dir       *directory
	metrics   *metrics
	peers     Peers
	hook      TermHook
	health    healthLog // leader changes and commit latencies (health.go)

	needJoin atomic.Bool
	// leaderReady is true while this node is leader and its leadership
	// barrier has completed: only then may it serve linearizable reads.
	leaderReady atomic.Bool
	// readFloor is the last log index when leadership was established in
	// readyTerm; both count only while readyTerm is the current term.
	readFloor atomic.Uint64
	readyTerm atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	fatalOnce sync.Once
	closeOnce sync.Once
	closeErr  error
}

// Open opens the node's stores, starts raft and bootstraps or prepares to
// join as the configuration says. Start runs the node's loops.
func Open(cfg Config) (*Node, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Protocol <= 0 || cfg.Protocol > fsm.Protocol {
		cfg.Protocol = fsm.Protocol
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	n := &Node{cfg: cfg, log: cfg.Logger}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if n.cfg.OnFatal == nil {
		n.cfg.OnFatal = func(err error) {
			n.log.Error("stopping: this node cannot continue safely", "error", err)
			os.Exit(70)
		}
	}
	n.fsm = fsm.New(fsm.Config{Protocol: cfg.Protocol, OnUnknown: func(index uint64, typ string, v int) {
		n.metrics.unknownCommands.Inc()
		n.fatal(fmt.Errorf("raft entry %d has command %q v%d that this binary (version %s) does not know; upgrade this node", index, typ, v, cfg.Version))
		// Block the apply loop: applying anything after an entry we could
		// not apply would silently diverge from the other replicas.
		select {}
	}})
	n.metrics = newMetrics(n, cfg.Registry)

	var err error
	n.dir, err = openDirectory(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if n.dir.corrupt != nil {
		n.log.Warn("ignoring unreadable member directory file; it is rebuilt from the raft log", "error", n.dir.corrupt)
	}
	if err := n.openRaft(); err != nil {
		n.closeStores()
		return nil, err
	}
	return n, nil
}

func (n *Node) fatal(err error) {
	n.fatalOnce.Do(func() { go n.cfg.OnFatal(err) })
}

func (n *Node) openRaft() error {
	c := n.cfg
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.ShutdownOnRemove = false
	rc.BatchApplyCh = true // group commit: one fsync for many concurrent writes
	rc.Logger = n.log.Named("raft")

	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(c.DataDir, "raft.db")})
	if err != nil {
		return fmt.Errorf("open raft log %s: %w", c.DataDir, err)
	}
	n.store = store
	logs, err := raft.NewLogCache(512, store)
	if err != nil {
		return err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(c.DataDir, c.SnapshotRetain, n.log.Named("snapshot"))
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	stream, err := newStreamLayer(c.RaftAddr, c.AdvertiseRaftAddr)
	if err != nil {
		return fmt.Errorf("listen on --raft-addr %s: %w", c.RaftAddr, err)
	}
	n.cfg.AdvertiseRaftAddr = stream.Addr().String()
	if c.PeerTLS != nil {
		stream.secure(secureOpts{src: c.PeerTLS, acceptPlain: c.PeerAcceptPlaintext, removed: n.fsm.MemberRemoved,
			refused: n.metrics.connRefused, log: n.log.Named("transport"), maxPerPeer: 2 * (maxPool + 2)})
	}
	n.stream = stream
	n.transport = newPeerTransport(stream, maxPool, 10*time.Second, n.log.Named("transport"))

	hasState, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state: %w", err)
	}
	// Snapshots use format 2 once every voter reads it; opened orders the
	// assignment of n.raft before its use on raft's snapshot goroutine.
	var opened atomic.Bool
	compact := func() bool { return opened.Load() && n.ClusterProtocol() >= fsm.CompactSnapshotProtocol }
	n.raft, err = raft.NewRaft(rc, raftFSM{f: n.fsm, compact: compact}, logs, store, snaps, n.transport)
	if err != nil {
		n.transport.Close()
		return fmt.Errorf("start raft: %w", err)
	}
	opened.Store(true)
	n.watchHeartbeats()
	if err := n.bootstrap(hasState); err != nil {
		// Raft is running already: stop it before its stores close.
		_ = n.raft.Shutdown().Error()
		return err
	}
	return nil
}

// Start runs the leadership-term loop (hook is called at each new term),
// the member directory, self-registration and join through peers, and the
// leader-change observer, until Close.
func (n *Node) Start(hook TermHook, peers Peers) {
	n.hook, n.peers = hook, peers
	n.wg.Add(3)
	go func() { defer n.wg.Done(); n.leadershipLoop() }()
	go func() { defer n.wg.Done(); n.directoryLoop() }()
	go func() { defer n.wg.Done(); n.registerLoop() }()
	n.startObservers()
}

// FSM is the replicated state machine.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// Raft is the raft instance, for metrics and tests.
func (n *Node) Raft() *raft.Raft { return n.raft }

// ID is this member's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// StepDownForShutdown hands leadership over if this node leads and another
// voter exists, so the cluster does not wait an election timeout.
func (n *Node) StepDownForShutdown(ctx context.Context) {
	if n.raft.State() == raft.Leader && n.hasOtherVoters() {
		n.log.Info("transferring leadership before shutdown")
		if err := waitFuture(ctx, n.raft.LeadershipTransfer()); err != nil {
			n.log.Warn("leadership transfer failed; shutting down anyway", "error", err)
		}
	}
}

// Close stops the loops, then raft, then its stores.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() { n.closeErr = n.close(ctx) })
	return n.closeErr
}

func (n *Node) close(ctx context.Context) error {
	n.cancel()
	n.transport.stopRetries() // raft's Shutdown waits for replication goroutines
	if err := waitFuture(ctx, n.raft.Shutdown()); err != nil {
		// Raft is still running: closing its stores under it could corrupt
		// them. Leave them to the process exit.
		n.log.Error("raft did not shut down in time; leaving its stores open", "error", err)
		return fmt.Errorf("raft shutdown: %w", err)
	}
	n.wg.Wait()
	return n.closeStores()
}

func (n *Node) closeStores() error {
	var errs []error
	if n.transport != nil {
		if err := n.transport.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close transport: %w", err))
		}
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft log: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (n *Node) hasOtherVoters() bool {
	servers, err := n.Servers()
	if err != nil {
		return false
	}
	for _, s := range servers {
		if s.Voter && s.ID != n.cfg.NodeID {
			return true
		}
	}
	return false
}

// waitFuture waits for a raft future, bounded by ctx.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SleepCtx sleeps for d or until ctx ends; it reports whether d passed.
func SleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
