package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/metasrv/metasrv/balancer"
	"github.com/metasrv/metasrv/failover"
	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/auth"
	"github.com/metasrv/metasrv/server/certs"
	"github.com/metasrv/metasrv/server/httpapi"
	"github.com/metasrv/metasrv/server/leader"
	"github.com/metasrv/metasrv/server/raftnode"
)

// Node is one running metasrv node.
type Node struct {
	cfg  Config
	raft *raftnode.Node
	lead *leader.Leader
	api  *httpapi.Server

	// sources are the certificate files this node reads, by use; reloaded
	// together on SIGHUP and when their content changes.
	sources   map[string]*certs.Source
	tokens    *auth.Tokens
	stopWatch context.CancelFunc

	closeOnce sync.Once
	closeErr  error
}

// New opens the node's stores, starts raft and binds the HTTP listener.
// Call Serve to start answering requests.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := privateDataDir(cfg); err != nil {
		return nil, err
	}
	if cfg.MaxConnections < datanodeConnBudget {
		cfg.Logger.Warn("--max-connections is below what a cluster of 10 000 datanodes needs (one connection each, plus 1 024 for operators and members)",
			"max_connections", cfg.MaxConnections, "suggested", datanodeConnBudget)
	}
	// The API listens first, so that with port 0 the address every member
	// records is the one the kernel chose.
	ln, err := httpapi.Listen(cfg.RPCAddr)
	if err != nil {
		return nil, err
	}
	if cfg.AdvertiseRPCAddr == cfg.RPCAddr && strings.HasSuffix(cfg.RPCAddr, ":0") {
		cfg.AdvertiseRPCAddr = ln.Addr().String()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sources, nodeTLS, err := tlsSources(cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	reg.MustRegister(certs.ExpiryCollector{Sources: sources})
	tokens, err := auth.LoadTokens(auth.Files{Admin: cfg.AdminTokenFile, Read: cfg.ReadTokenFile,
		Datanode: cfg.DatanodeTokenFile, Legacy: cfg.AdminToken})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("token files: %w", err)
	}
	if cfg.AdminToken != "" {
		cfg.Logger.Warn("--admin-token (or METASRV_ADMIN_TOKEN) is readable by every local user in the process list or environment; prefer --admin-token-file")
	}
	for _, w := range tokens.Warnings() {
		cfg.Logger.Warn("weak secret", "detail", w)
	}
	peers := make([]raftnode.Peer, len(cfg.Peers))
	for i, p := range cfg.Peers {
		peers[i] = raftnode.Peer(p)
	}
	rn, err := raftnode.Open(raftnode.Config{
		NodeID: cfg.NodeID, RaftAddr: cfg.RaftAddr, AdvertiseRaftAddr: cfg.AdvertiseRaftAddr,
		AdvertiseRPCAddr: cfg.AdvertiseRPCAddr, DataDir: cfg.DataDir,
		Peers: peers, InitialClusterState: cfg.InitialClusterState, Join: cfg.Join, BootstrapWait: cfg.BootstrapWait,
		HeartbeatTimeout: cfg.HeartbeatTimeout, ElectionTimeout: cfg.ElectionTimeout, LeaderLeaseTimeout: cfg.LeaderLeaseTimeout,
		LeaderWait: cfg.LeaderWait, ApplyTimeout: cfg.ApplyTimeout,
		SnapshotThreshold: cfg.SnapshotThreshold, SnapshotInterval: cfg.SnapshotInterval, SnapshotRetain: cfg.SnapshotRetain,
		Version: cfg.Version, Logger: cfg.Logger, Now: cfg.Now, OnFatal: cfg.OnFatal, Registry: reg,
		Protocol: cfg.Protocol, PeerTLS: cfg.PeerTLS, PeerAcceptPlaintext: cfg.PeerAcceptPlaintext,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	cfg.AdvertiseRaftAddr = rn.AdvertiseRaftAddr()
	lead := leader.New(leader.Config{
		NodeID: cfg.NodeID, HeartbeatInterval: cfg.HeartbeatInterval, RegionLease: cfg.RegionLease,
		LeaseMargin: leaseMargin(cfg),
		Detector: failover.DetectorConfig{Threshold: cfg.FailureThreshold, MinStdDeviation: cfg.MinStdDeviation,
			AcceptableHeartbeatPause: cfg.AcceptableHeartbeatPause, FirstHeartbeatEstimate: cfg.FirstHeartbeatEstimate,
			MaxSamples: 1000},
		FailoverTick: cfg.FailoverTick, FailoverMaxRegions: cfg.FailoverMaxRegions,
		BalancerInterval: cfg.BalancerInterval, BalancerCooldown: cfg.BalancerCooldown,
		Balancer: balancer.Config{Tolerance: cfg.BalancerTolerance, MaxMoves: cfg.BalancerMaxMoves,
			MaxPerNode: cfg.BalancerMaxMovesPerNode},
		MaxDatanodes: cfg.MaxDatanodes, RegisterRate: cfg.DatanodeRegisterRate, RegisterBurst: cfg.DatanodeRegisterBurst,
		Approval: cfg.DatanodeApproval, ConfirmIncarnation: incarnationProber(nodeTLS),
		Now: cfg.Now, Logger: cfg.Logger, Registry: reg,
	}, rn)
	api := httpapi.New(httpapi.Config{
		NodeID: cfg.NodeID, Version: cfg.Version, Commit: cfg.Commit, Branch: cfg.Branch,
		AdminToken: cfg.AdminToken, LeaderWait: cfg.LeaderWait, ApplyTimeout: cfg.ApplyTimeout,
		Now: cfg.Now, Logger: cfg.Logger, Registry: reg,
		TLS: cfg.ServerTLS, NodeTLS: nodeTLS, ClientCertAuth: cfg.ClientCertAuth,
		MaxConnections: cfg.MaxConnections, RequestTimeout: cfg.RequestTimeout,
		Tokens: tokens, MetricsPublic: cfg.MetricsPublic,
		MaintenanceWarnAfter: cfg.MaintenanceWarnAfter, CertSources: sources,
	}, rn, lead)
	api.Attach(ln)
	if cfg.HTTPAddr != "" {
		gln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			ln.Close()
			_ = rn.Close(context.Background())
			return nil, fmt.Errorf("listen on --http-addr %s: %w", cfg.HTTPAddr, err)
		}
		api.AttachGreptime(gln, cfg.HTTPGreptimeCompat)
	}
	return &Node{cfg: cfg, raft: rn, lead: lead, api: api, sources: sources, tokens: tokens}, nil
}

// privateDataDir makes the data dir readable by this user only. A
// directory that cannot be changed (the root of a volume owned by someone
// else) is warned about, not refused.
func privateDataDir(cfg Config) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	st, err := os.Stat(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
			cfg.Logger.Warn("the data dir is readable by other users and cannot be made private", "dir", cfg.DataDir,
				"mode", st.Mode().Perm().String(), "error", err)
		}
	}
	return nil
}

// tlsSources lists the node's certificate sources by use and makes the one
// it calls other members' APIs with: its member certificate, trusting the
// API's CAs (which include the peer CA).
func tlsSources(cfg Config) (map[string]*certs.Source, *certs.Source, error) {
	sources := map[string]*certs.Source{}
	if cfg.PeerTLS != nil {
		sources["peer"] = cfg.PeerTLS
	}
	if cfg.ServerTLS == nil {
		return sources, nil, nil
	}
	sources["server"] = cfg.ServerTLS
	files := certs.Files{CA: cfg.ServerTLS.Files().CA}
	if cfg.PeerTLS != nil {
		pf := cfg.PeerTLS.Files()
		files.Cert, files.Key = pf.Cert, pf.Key
	}
	nodeTLS, err := certs.Load(files)
	if err != nil {
		return nil, nil, fmt.Errorf("member client certificate: %w", err)
	}
	sources["member-client"] = nodeTLS
	return sources, nodeTLS, nil
}

// Reload re-reads the certificate and token files (SIGHUP). A file that
// cannot be read leaves what it held as it was; the errors are returned.
func (n *Node) Reload() error {
	var errs []error
	if err := n.tokens.Reload(); err != nil {
		n.cfg.Logger.Error("token files reload failed; keeping the previous tokens", "error", err)
		errs = append(errs, fmt.Errorf("tokens: %w", err))
	} else {
		for _, w := range n.tokens.Warnings() {
			n.cfg.Logger.Warn("weak secret", "detail", w)
		}
	}
	return errors.Join(append(errs, n.ReloadCertificates())...)
}

// ReloadCertificates re-reads every certificate file. A file that cannot
// be read leaves that source as it was; the errors are returned.
func (n *Node) ReloadCertificates() error {
	var errs []error
	for use, s := range n.sources {
		changed, err := s.Reload()
		switch {
		case err != nil:
			n.cfg.Logger.Error("certificate reload failed; keeping the previous files' content", "use", use, "error", err)
			errs = append(errs, fmt.Errorf("%s: %w", use, err))
		case changed:
			n.cfg.Logger.Info("certificates reloaded", "use", use, "files", fmt.Sprint(s.Files()))
		}
	}
	return errors.Join(errs...)
}

// leaseMargin is how long past a lease's end the leader still assumes the
// datanode may serve. It covers clock-rate differences and a deposed
// leader: a partitioned old leader grants leases until it notices, up to
// 2 × the leader lease timeout after its last quorum contact, while the new
// leader seeds leases no earlier than a heartbeat timeout after that
// contact.
func leaseMargin(c Config) time.Duration {
	return max(c.HeartbeatInterval/2, 2*c.LeaderLeaseTimeout-c.HeartbeatTimeout+250*time.Millisecond)
}

// Serve answers HTTP requests and runs the background loops until Close.
// It returns once the listener is closed.
func (n *Node) Serve() error {
	hook := n.lead.TermStart
	if len(n.cfg.LeaderWorkers) > 0 {
		hook = func(ctx context.Context) []raftnode.Worker {
			return append(n.lead.TermStart(ctx), n.cfg.LeaderWorkers...)
		}
	}
	n.raft.Start(hook, n.api.Peers())
	if len(n.sources) > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		n.stopWatch = cancel
		go n.watchCertificates(ctx)
	}
	n.cfg.Logger.Info("serving", "node_id", n.cfg.NodeID, "rpc_addr", n.cfg.AdvertiseRPCAddr,
		"raft_addr", n.cfg.AdvertiseRaftAddr, "version", n.cfg.Version)
	return n.api.Serve()
}

func (n *Node) watchCertificates(ctx context.Context) {
	t := time.NewTicker(n.cfg.CertPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = n.ReloadCertificates()
		}
	}
}

// Addr returns the bound HTTP address.
func (n *Node) Addr() string { return n.api.Addr() }

// RaftAddr returns the raft address other members dial (with port 0, the
// one the kernel chose).
func (n *Node) RaftAddr() string { return n.cfg.AdvertiseRaftAddr }

// HTTPAddr returns the bound address of the GreptimeDB-style port, or "".
func (n *Node) HTTPAddr() string { return n.api.GreptimeAddr() }

// FSM exposes the replicated state to leader workers and tests.
func (n *Node) FSM() *fsm.FSM { return n.raft.FSM() }

// Raft exposes the raft instance to leader workers.
func (n *Node) Raft() *raft.Raft { return n.raft.Raft() }

// Close shuts the node down gracefully: a leader hands leadership over
// first so the cluster does not wait an election timeout, then HTTP stops,
// then raft and its stores close.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		if n.stopWatch != nil {
			n.stopWatch()
		}
		n.raft.StepDownForShutdown(ctx)
		n.api.Shutdown(ctx)
		n.closeErr = n.raft.Close(ctx)
		if n.closeErr == nil {
			n.cfg.Logger.Info("stopped")
		}
	})
	return n.closeErr
}
