package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/metasrv/metasrv/fsm"
)

// Node is one running metasrv node.
type Node struct {
	cfg Config
	log hclog.Logger

	fsm       *fsm.FSM
	raft      *raft.Raft
	store     *raftboltdb.BoltStore
	transport *raft.NetworkTransport
	dir       *directory
	metrics   *metrics
	client    *http.Client

	httpSrv *http.Server
	httpLn  net.Listener
	// newConns are accepted connections that have not sent a request yet;
	// Shutdown would wait up to 5 s for them, so close closes them itself.
	connMu   sync.Mutex
	newConns map[net.Conn]bool

	// leaderReady is true while this node is leader and its leadership
	// barrier has completed: only then may it serve linearizable reads.
	needJoin    atomic.Bool
	leaderReady atomic.Bool
	// readFloor is the last log index when leadership was established in
	// readyTerm; both count only while readyTerm is the current term.
	readFloor  atomic.Uint64
	readyTerm  atomic.Uint64
	leaderDone chan struct{} // closed when the leadership loop exits
	// term is the leader-only state of the current leadership term.
	term atomic.Pointer[leaderTerm]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	fatalOnce sync.Once
	closeOnce sync.Once
	closeErr  error
}

// New opens the node's stores, starts raft and binds the HTTP listener.
// Call Serve to start answering requests.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, leaderDone: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if n.cfg.OnFatal == nil {
		n.cfg.OnFatal = func(err error) {
			n.log.Error("stopping: this node cannot continue safely", "error", err)
			os.Exit(70)
		}
	}
	n.client = newHTTPClient()
	n.fsm = fsm.New(fsm.Config{OnUnknown: func(index uint64, typ string, v int) {
		n.metrics.unknownCommands.Inc()
		n.fatal(fmt.Errorf("raft entry %d has command %q v%d that this binary (version %s) does not know; upgrade this node", index, typ, v, cfg.Version))
		// Block the apply loop: applying anything after an entry we could
		// not apply would silently diverge from the other replicas.
		select {}
	}})
	n.metrics = newMetrics(n)

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
	n.httpLn, err = net.Listen("tcp", cfg.RPCAddr)
	if err != nil {
		n.raft.Shutdown().Error()
		n.closeStores()
		return nil, fmt.Errorf("listen on --rpc-addr %s: %w", cfg.RPCAddr, err)
	}
	n.httpSrv = &http.Server{
		Handler:           n.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          n.log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		ConnState:         n.trackConn,
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
	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: n.log.Named("transport"),
	})

	hasState, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state: %w", err)
	}
	// Snapshots use format 2 once every voter reads it; opened orders the
	// assignment of n.raft before its use on raft's snapshot goroutine.
	var opened atomic.Bool
	compact := func() bool { return opened.Load() && n.clusterProtocol() >= fsm.CompactSnapshotProtocol }
	n.raft, err = raft.NewRaft(rc, raftFSM{f: n.fsm, compact: compact}, logs, store, snaps, n.transport)
	if err != nil {
		n.transport.Close()
		return fmt.Errorf("start raft: %w", err)
	}
	opened.Store(true)
	return n.bootstrap(hasState)
}

// Serve answers HTTP requests and runs the background loops until Close.
// It returns once the listener is closed.
func (n *Node) Serve() error {
	n.wg.Add(3)
	go func() { defer n.wg.Done(); n.leadershipLoop() }()
	go func() { defer n.wg.Done(); n.directoryLoop() }()
	go func() { defer n.wg.Done(); n.registerLoop() }()
	n.startObservers()
	n.log.Info("serving", "node_id", n.cfg.NodeID, "rpc_addr", n.cfg.AdvertiseRPCAddr,
		"raft_addr", n.cfg.AdvertiseRaftAddr, "version", n.cfg.Version)
	err := n.httpSrv.Serve(n.httpLn)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Addr returns the bound HTTP address.
func (n *Node) Addr() string { return n.httpLn.Addr().String() }

// FSM exposes the replicated state to leader workers and tests.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// Raft exposes the raft instance to leader workers.
func (n *Node) Raft() *raft.Raft { return n.raft }

// Close shuts the node down gracefully: a leader hands leadership over
// first so the cluster does not wait an election timeout, then HTTP stops,
// then raft and its stores close.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() { n.closeErr = n.close(ctx) })
	return n.closeErr
}

func (n *Node) close(ctx context.Context) error {
	if n.raft.State() == raft.Leader && n.hasOtherVoters() {
		n.log.Info("transferring leadership before shutdown")
		if err := waitFuture(ctx, n.raft.LeadershipTransfer()); err != nil {
			n.log.Warn("leadership transfer failed; shutting down anyway", "error", err)
		}
	}
	n.closeNewConns()
	hctx, hcancel := context.WithTimeout(ctx, 3*time.Second)
	if err := n.httpSrv.Shutdown(hctx); err != nil {
		n.httpSrv.Close()
	}
	hcancel()
	n.cancel()
	var errs []error
	if err := waitFuture(ctx, n.raft.Shutdown()); err != nil {
		// Raft is still running: closing its stores under it could corrupt
		// them. Leave them to the process exit.
		n.log.Error("raft did not shut down in time; leaving its stores open", "error", err)
		return fmt.Errorf("raft shutdown: %w", err)
	}
	n.wg.Wait()
	if err := n.closeStores(); err != nil {
		errs = append(errs, err)
	}
	n.log.Info("stopped")
	return errors.Join(errs...)
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
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != n.cfg.NodeID {
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

func (n *Node) trackConn(c net.Conn, st http.ConnState) {
	n.connMu.Lock()
	defer n.connMu.Unlock()
	if n.newConns == nil {
		n.newConns = map[net.Conn]bool{}
	}
	if st == http.StateNew {
		n.newConns[c] = true
	} else {
		delete(n.newConns, c)
	}
}

func (n *Node) closeNewConns() {
	n.connMu.Lock()
	defer n.connMu.Unlock()
	for c := range n.newConns {
		c.Close()
	}
}
