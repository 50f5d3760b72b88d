package raftnode

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// ReadIndex makes a linearizable read safe on this node, which must be the
// leader: it takes the commit index, confirms leadership with a quorum
// (VerifyLeader), and waits until the FSM has applied that index.
func (n *Node) ReadIndex(ctx context.Context) error {
	if !n.IsReadyLeader() {
		return ErrNotLeader
	}
	idx := n.raft.CommitIndex()
	if err := waitFuture(ctx, n.raft.VerifyLeader()); err != nil {
		if ctx.Err() != nil {
			return Errorf(ErrTimeout, "confirming leadership timed out")
		}
		return ErrNotLeader
	}
	if !n.IsReadyLeader() {
		return ErrNotLeader // the term changed under us: idx may be from another term
	}
	// Entries up to the barrier that are not commands (the term's no-op and
	// the barrier itself) never reach the FSM.
	if idx <= n.readFloor.Load() {
		return nil
	}
	return n.WaitApplied(ctx, idx)
}

// WaitApplied waits until the local FSM has applied index.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	for {
		ch := n.fsm.Changed()
		if n.fsm.AppliedIndex() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Errorf(ErrTimeout, "timed out waiting for this node to apply index %d (applied %d)", index, n.fsm.AppliedIndex())
		}
	}
}

// WaitLeaderReady waits until this node, as leader, has completed its
// leadership barrier. It returns false if it stops being leader or ctx ends.
func (n *Node) WaitLeaderReady(ctx context.Context) bool {
	for {
		if n.IsReadyLeader() {
			return true
		}
		if n.raft.State() != raft.Leader {
			return false
		}
		if !SleepCtx(ctx, 5*time.Millisecond) {
			return false
		}
	}
}

// IsReadyLeader is true while this node leads and has completed its
// leadership barrier in the current term.
func (n *Node) IsReadyLeader() bool {
	return n.leaderReady.Load() && n.raft.State() == raft.Leader && n.readyTerm.Load() == n.raft.CurrentTerm()
}

// BarrierDone is true once this node's leadership barrier completed in a
// term it still leads or led last (GET /admin/ready on the leader).
func (n *Node) BarrierDone() bool { return n.leaderReady.Load() }

// IsLeader is raft's own view: this node is in the leader state (its
// barrier may not have completed yet).
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }
