package server

import (
	"context"
	"net/http"
	"time"

	"github.com/hashicorp/raft"
)

// readIndex makes a linearizable read safe on this node, which must be the
// leader: it takes the commit index, confirms leadership with a quorum
// (VerifyLeader), and waits until the FSM has applied that index.
func (n *Node) readIndex(ctx context.Context) error {
	if !n.isReadyLeader() {
		return errRetryElsewhere
	}
	idx := n.raft.CommitIndex()
	if err := waitFuture(ctx, n.raft.VerifyLeader()); err != nil {
		if ctx.Err() != nil {
			return errorf(http.StatusServiceUnavailable, codeTimeout, "confirming leadership timed out")
		}
		return errRetryElsewhere
	}
	if !n.isReadyLeader() {
		return errRetryElsewhere // the term changed under us: idx may be from another term
	}
	// Entries up to the barrier that are not commands (the term's no-op and
	// the barrier itself) never reach the FSM.
	if idx <= n.readFloor.Load() {
		return nil
	}
	return n.waitApplied(ctx, idx)
}

// waitApplied waits until the local FSM has applied index.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	for {
		ch := n.fsm.Changed()
		if n.fsm.AppliedIndex() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return errorf(http.StatusServiceUnavailable, codeTimeout,
				"timed out waiting for this node to apply index %d (applied %d)", index, n.fsm.AppliedIndex())
		}
	}
}

// waitLeaderReady waits until this node, as leader, has completed its
// leadership barrier. It returns false if it stops being leader or ctx ends.
func (n *Node) waitLeaderReady(ctx context.Context) bool {
	for {
		if n.isReadyLeader() {
			return true
		}
		if n.raft.State() != raft.Leader {
			return false
		}
		if !sleepCtx(ctx, 5*time.Millisecond) {
			return false
		}
	}
}

// isReadyLeader is true while this node leads and has completed its
// leadership barrier in the current term.
func (n *Node) isReadyLeader() bool {
	return n.leaderReady.Load() && n.raft.State() == raft.Leader && n.readyTerm.Load() == n.raft.CurrentTerm()
}
