package raftnode

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/wire"
)

// bootstrap founds the cluster from the initial peers when, and only when,
// this is a new member with an empty data dir (etcd's rules). A node whose
// disk was lost must be started as "existing" (or with Join) so it waits to
// be re-added instead of founding a second cluster.
func (n *Node) bootstrap(hasState bool) error {
	c := n.cfg
	switch {
	case hasState:
		n.log.Info("found raft state in data dir; rejoining with it", "data_dir", c.DataDir)
		return nil
	case len(c.Join) > 0:
		n.needJoin.Store(true)
		n.log.Info("no raft state; will ask to join", "via", c.Join)
		return nil
	case c.InitialClusterState == ClusterStateExisting:
		n.log.Info("no raft state and --initial-cluster-state existing: waiting to be added by the leader")
		return nil
	}
	peers := c.Peers
	if len(peers) == 0 {
		peers = []Peer{{ID: c.NodeID, RaftAddr: c.AdvertiseRaftAddr}}
	}
	var conf raft.Configuration
	for _, p := range peers {
		if p.ID == c.NodeID && p.RaftAddr != c.AdvertiseRaftAddr {
			return fmt.Errorf("--peers gives %s=%s but this node advertises raft address %s", p.ID, p.RaftAddr, c.AdvertiseRaftAddr)
		}
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr)})
	}
	if c.BootstrapWait > 0 {
		// An existing cluster that still lists this node sends it heartbeats:
		// seeing a leader means this node merely lost its disk and must not
		// found a cluster of its own.
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.log.Info("empty data dir: waiting for an existing leader before bootstrapping", "wait", c.BootstrapWait)
			deadline := time.Now().Add(c.BootstrapWait)
			for time.Now().Before(deadline) {
				if n.KnowsLeader() {
					n.log.Info("found an existing cluster; not bootstrapping")
					return
				}
				if !SleepCtx(n.ctx, 50*time.Millisecond) {
					return
				}
			}
			if err := n.bootstrapWith(conf); err != nil {
				n.fatal(err)
			}
		}()
		return nil
	}
	return n.bootstrapWith(conf)
}

func (n *Node) bootstrapWith(conf raft.Configuration) error {
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap: %w", err)
	}
	n.log.Info("bootstrapped a new cluster", "peers", len(conf.Servers))
	return nil
}

// registerLoop joins the cluster through Join when this node is new, and
// afterwards keeps this node's own entry in the replicated directory
// (addresses, version) current, so every node can be found and forwarded to.
func (n *Node) registerLoop() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		var err error
		ch := n.fsm.Changed()
		if n.needJoin.Load() {
			if err = n.joinOnce(); err != nil {
				n.log.Warn("join failed; retrying", "error", err)
			} else {
				n.needJoin.Store(false)
			}
		} else if m, ok := n.fsm.Member(n.cfg.NodeID); n.KnowsLeader() && (!ok || m.RPCAddr != n.cfg.AdvertiseRPCAddr ||
			m.RaftAddr != n.cfg.AdvertiseRaftAddr || m.Version != n.cfg.Version || m.Protocol != n.cfg.Protocol) && n.raft.State() != raft.Leader {
			if err = n.registerSelf(); err != nil {
				n.log.Debug("registering own address failed; retrying", "error", err)
			}
		}
		if err != nil {
			ch = nil // after a failure, retry on the tick only
		}
		select {
		case <-n.ctx.Done():
			return
		case <-ch:
		case <-tick.C:
		}
	}
}

func (n *Node) selfJoinRequest() wire.JoinRequest {
	return wire.JoinRequest{ID: n.cfg.NodeID, RaftAddr: n.cfg.AdvertiseRaftAddr, RPCAddr: n.cfg.AdvertiseRPCAddr,
		Version: n.cfg.Version, Protocol: n.cfg.Protocol, ClusterID: n.dir.clusterID()}
}

func (n *Node) joinOnce() error {
	if n.peers == nil {
		return errors.New("no way to reach other members")
	}
	var errs []error
	for _, addr := range n.cfg.Join {
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.LeaderWait+n.cfg.ApplyTimeout)
		jr, err := n.peers.Join(ctx, addr, n.selfJoinRequest())
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			if errors.Is(err, ErrJoinRefused) {
				n.fatal(fmt.Errorf("join refused by %s: %w", addr, err))
			}
			continue
		}
		members := make([]fsm.Member, 0, len(jr.Members)+1)
		for _, m := range jr.Members {
			members = append(members, fsm.Member(m))
		}
		if err := n.dir.update(jr.ClusterID, append(members, n.selfMember())); err != nil {
			n.log.Warn("cannot persist member directory", "error", err)
		}
		n.log.Info("joined the cluster", "via", addr, "cluster_id", jr.ClusterID, "leader", jr.LeaderID)
		return nil
	}
	return errors.Join(errs...)
}

// registerSelf sends this node's own entry to the leader (a follower's
// entry is written by the leader, which alone may propose).
func (n *Node) registerSelf() error {
	if n.peers == nil {
		return errors.New("no way to reach other members")
	}
	_, addr := n.Leader()
	if addr == "" {
		return errors.New("the leader's address is not known yet")
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.LeaderWait+n.cfg.ApplyTimeout)
	defer cancel()
	return n.peers.Register(ctx, addr, n.selfJoinRequest())
}
