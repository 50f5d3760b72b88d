package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"github.com/metasrv/metasrv/fsm"
)

// apply proposes one command on this node, which must be the leader, and
// waits (bounded) for the FSM's result. errRetryElsewhere means nothing was
// appended; an *apiError with code outcome_unknown means the entry may
// still commit.
func (n *Node) apply(ctx context.Context, typ string, payload any) (fsm.Result, error) {
	// Every member speaks the base protocol, so only newer types pay for
	// the configuration lookup.
	if need := fsm.ProtocolOf(typ); need > 1 {
		if have := n.clusterProtocol(); need > have {
			return fsm.Result{}, errorf(http.StatusServiceUnavailable, "upgrade_in_progress",
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
		return fsm.Result{}, errRetryElsewhere
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	f := n.raft.Apply(data, timeout)
	err = waitFuture(ctx, f)
	switch {
	case err == nil:
		res, ok := f.Response().(fsm.Result)
		if !ok {
			return fsm.Result{}, fmt.Errorf("apply %s: unexpected response %T", typ, f.Response())
		}
		return res, nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrEnqueueTimeout):
		// Refused before it reached the log: nothing was applied.
		return fsm.Result{}, errRetryElsewhere
	default:
		n.metrics.outcomeUnknown.Inc()
		n.log.Warn("write outcome unknown", "command", typ, "error", err)
		return fsm.Result{}, outcomeUnknown(err)
	}
}

// clusterProtocol is the lowest command protocol among the voters, as the
// replicated directory records them (a member not recorded yet, or recorded
// before protocols existed, counts as 1).
func (n *Node) clusterProtocol() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 1
	}
	lowest := fsm.Protocol
	for _, s := range f.Configuration().Servers {
		p := 1
		if m, ok := n.fsm.Member(string(s.ID)); ok && m.Protocol > 0 {
			p = m.Protocol
		}
		lowest = min(lowest, p)
	}
	return lowest
}
