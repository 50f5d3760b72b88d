package raftnode

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/metasrv/metasrv/fsm"
)

// Propose appends one command on this node, which must be the leader, and
// waits (bounded by ctx and the apply timeout) for the FSM's verdict.
// ErrNotLeader means nothing was appended; ErrOutcomeUnknown means the entry
// may still commit. A command above the cluster's protocol level is refused
// with ErrUpgradeInProgress before it reaches the log.
func (n *Node) Propose(ctx context.Context, typ string, payload any) (fsm.Result, error) {
	// Every member speaks the base protocol, so only newer types pay for
	// the configuration lookup.
	if need := fsm.ProtocolOf(typ); need > 1 {
		if have := n.ClusterProtocol(); need > have {
			return fsm.Result{}, Errorf(ErrUpgradeInProgress,
				"%s needs command protocol %d but a member speaks only %d: finish upgrading every member first", typ, need, have)
		}
	}
	data, err := fsm.Encode(typ, payload)
	if err != nil {
		return fsm.Result{}, err
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return fsm.Result{}, ErrNotLeader
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	f := n.raft.Apply(data, timeout)
	err = waitFuture(ctx, f)
	switch {
	case err == nil:
		n.health.committed(n.cfg.Now(), time.Since(start))
		res, ok := f.Response().(fsm.Result)
		if !ok {
			return fsm.Result{}, fmt.Errorf("apply %s: unexpected response %T", typ, f.Response())
		}
		return res, nil
	case refusedBeforeLog(err):
		return fsm.Result{}, ErrNotLeader
	default:
		n.metrics.outcomeUnknown.Inc()
		n.log.Warn("write outcome unknown", "command", typ, "error", err)
		return fsm.Result{}, OutcomeUnknown(err)
	}
}

// refusedBeforeLog reports whether raft refused a change before it reached
// the log: nothing was applied.
func refusedBeforeLog(err error) bool {
	return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress) ||
		errors.Is(err, raft.ErrEnqueueTimeout)
}

// NoteOutcomeUnknown counts a write answered outcome unknown elsewhere (a
// forward whose answer was lost).
func (n *Node) NoteOutcomeUnknown() { n.metrics.outcomeUnknown.Inc() }

// ClusterProtocol is the lowest command protocol among the voters, as the
// replicated directory records them (a member not recorded yet, or recorded
// before protocols existed, counts as 1), and never above this node's own.
func (n *Node) ClusterProtocol() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 1
	}
	lowest := n.cfg.Protocol
	for _, s := range f.Configuration().Servers {
		p := 1
		if m, ok := n.fsm.Member(string(s.ID)); ok && m.Protocol > 0 {
			p = m.Protocol
		}
		lowest = min(lowest, p)
	}
	return lowest
}

// Commit is Propose for callers that treat a refusal as an error: an FSM
// rejection comes back as a *Rejection, with the result alongside it.
func (n *Node) Commit(ctx context.Context, typ string, payload any) (fsm.Result, error) {
	res, err := n.Propose(ctx, typ, payload)
	if err == nil {
		err = Rejected(res)
	}
	return res, err
}
