package raftnode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/metasrv/metasrv/fsm"
)

// leadershipLoop follows raft's leadership signal. LeaderCh keeps only the
// latest value and never blocks raft; a true while already leading means
// leadership was lost and regained in between, so the old term's work is
// stopped before the new term's starts.
func (n *Node) leadershipLoop() {
	ch := n.raft.LeaderCh()
	var stop func()
	for {
		select {
		case <-n.ctx.Done():
			if stop != nil {
				stop()
			}
			return
		case isLeader := <-ch:
			if stop != nil {
				stop()
				stop = nil
				n.log.Info("leadership lost; leader-only work stopped")
			}
			if isLeader {
				stop = n.startTerm()
			}
		}
	}
}

// startTerm runs this term's establish step and workers; the returned func
// cancels them and waits until every one has returned.
func (n *Node) startTerm() (stop func()) {
	ctx, cancel := context.WithCancel(n.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.establish(ctx, &wg)
	}()
	return func() {
		cancel()
		wg.Wait()
		// Cleared only after every worker stopped, so a late establish
		// cannot leave it set.
		n.leaderReady.Store(false)
		n.metrics.isLeader.Set(0)
	}
}

func (n *Node) establish(ctx context.Context, wg *sync.WaitGroup) {
	start := time.Now()
	term := n.raft.CurrentTerm()
	// The barrier makes the local FSM hold every committed entry: without
	// it a new leader could read a stale maintenance=false.
	for {
		err := waitFuture(ctx, n.raft.Barrier(n.cfg.ApplyTimeout))
		if err == nil {
			break
		}
		if ctx.Err() != nil || n.raft.State() != raft.Leader {
			return
		}
		n.log.Warn("leadership barrier failed; retrying", "error", err)
		if !SleepCtx(ctx, 50*time.Millisecond) {
			return
		}
	}
	// A barrier that completed in an earlier term proves nothing about this
	// one (leadership lost and regained before this loop noticed).
	if n.raft.CurrentTerm() != term || n.raft.State() != raft.Leader {
		return
	}
	// Nothing else is appended before leaderReady is set (requests wait on
	// it), so every entry up to LastIndex is now in the FSM or is a
	// no-op/barrier; later entries all reach the FSM.
	n.readFloor.Store(n.raft.LastIndex())
	n.readyTerm.Store(term)
	workers := []Worker{n.housekeeping}
	if n.hook != nil {
		workers = append(workers, n.hook(ctx)...) // heartbeats are taken from now on
	}
	n.leaderReady.Store(true)
	n.metrics.isLeader.Set(1)
	n.log.Info("leadership established", "term", term, "barrier", time.Since(start))
	for _, w := range workers {
		wg.Add(1)
		go func(w Worker) {
			defer wg.Done()
			w(ctx)
		}(w)
	}
}

// housekeeping fixes the cluster id once and records the leader's own
// addresses in the replicated directory.
func (n *Node) housekeeping(ctx context.Context) {
	if n.fsm.ClusterID() == "" {
		n.proposeUntilDone(ctx, fsm.CmdInitCluster, fsm.InitCluster{ClusterID: newClusterID(), Time: n.cfg.Now().UTC()})
	}
	n.proposeUntilDone(ctx, fsm.CmdSetMember, fsm.SetMember{Member: n.selfMember(), Time: n.cfg.Now().UTC()})
}

func (n *Node) selfMember() fsm.Member {
	return fsm.Member{ID: n.cfg.NodeID, RaftAddr: n.cfg.AdvertiseRaftAddr,
		RPCAddr: n.cfg.AdvertiseRPCAddr, Version: n.cfg.Version, Protocol: n.cfg.Protocol}
}

// proposeUntilDone proposes a leader housekeeping command, retrying while
// this node leads. Every such command is idempotent.
func (n *Node) proposeUntilDone(ctx context.Context, typ string, payload any) {
	for ctx.Err() == nil {
		_, err := n.Propose(ctx, typ, payload)
		if err == nil {
			return
		}
		n.log.Warn("leader housekeeping write failed; retrying", "command", typ, "error", err)
		if !SleepCtx(ctx, 200*time.Millisecond) {
			return
		}
	}
}

func newClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
