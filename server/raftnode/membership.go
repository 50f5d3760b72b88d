package raftnode

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/metasrv/metasrv/server/wire"
)

// Server is one entry of the raft configuration.
type Server struct {
	ID       string
	RaftAddr string
	Voter    bool
	Suffrage string // voter, nonvoter, staging (lower case)
}

// Servers is the current raft configuration. An error is ErrNotLeader when
// raft refused, else ErrOutcomeUnknown.
func (n *Node) Servers() ([]Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, configChangeErr(err)
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter,
			Suffrage: strings.ToLower(s.Suffrage.String())})
	}
	return out, nil
}

// configChangeErr maps a raft membership-change error.
func configChangeErr(err error) error {
	if refusedBeforeLog(err) {
		return ErrNotLeader
	}
	return OutcomeUnknown(err)
}

// AddVoter adds (or, with a known id and a new address, moves) a voter.
func (n *Node) AddVoter(ctx context.Context, id, raftAddr string) error {
	if err := waitFuture(ctx, n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, n.cfg.ApplyTimeout)); err != nil {
		return configChangeErr(err)
	}
	return nil
}

// RemoveServer removes a member from the raft configuration.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if err := waitFuture(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout)); err != nil {
		return configChangeErr(err)
	}
	return nil
}

// TransferLeadership hands leadership to the voter to, or to any voter when
// to is "", and returns the new leader's id once this node has heard of it
// (bounded; "" if it has not yet).
func (n *Node) TransferLeadership(ctx context.Context, to string) (string, error) {
	var f raft.Future
	if to == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		if to == n.cfg.NodeID {
			return to, nil
		}
		servers, err := n.Servers()
		if err != nil {
			return "", err
		}
		var target *Server
		for i := range servers {
			if servers[i].ID == to && servers[i].Voter {
				target = &servers[i]
			}
		}
		if target == nil {
			return "", Errorf(ErrNotFound, "no voting member %s", to)
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(target.ID), raft.ServerAddress(target.RaftAddr))
	}
	if err := waitFuture(ctx, f); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return "", ErrNotLeader
		}
		return "", Errorf(ErrTransferFailed, "leadership transfer failed: %v", err)
	}
	// The old leader learns the new one from its first heartbeat: wait for
	// it briefly so the answer can name it.
	var lid raft.ServerID
	for i := 0; i < 100 && ctx.Err() == nil; i++ {
		if _, lid = n.raft.LeaderWithID(); lid != "" && string(lid) != n.cfg.NodeID {
			break
		}
		SleepCtx(ctx, 20*time.Millisecond)
	}
	return string(lid), nil
}

// Leader returns the leader's id and API address: from the replicated
// member table, else from the directory file (which does not wait on the
// log). Both are "" when no leader is known; addr alone is "" when its
// address is not known yet.
func (n *Node) Leader() (id, rpcAddr string) {
	_, lid := n.raft.LeaderWithID()
	id = string(lid)
	switch {
	case id == "":
		return "", ""
	case id == n.cfg.NodeID:
		return id, n.cfg.AdvertiseRPCAddr
	}
	if m, ok := n.fsm.Member(id); ok && m.RPCAddr != "" {
		return id, m.RPCAddr
	}
	return id, n.dir.rpcAddr(id)
}

// KnowsLeader reports whether raft knows a leader.
func (n *Node) KnowsLeader() bool {
	_, id := n.raft.LeaderWithID()
	return id != ""
}

// DirectoryRPCAddr is member id's API address as the directory file has it.
func (n *Node) DirectoryRPCAddr(id string) string { return n.dir.rpcAddr(id) }

// Status is this node's raft status.
func (n *Node) Status() wire.RaftStatus {
	_, lid := n.raft.LeaderWithID()
	return wire.RaftStatus{NodeID: n.cfg.NodeID, State: strings.ToLower(n.raft.State().String()), Term: n.raft.CurrentTerm(),
		LeaderID: string(lid), CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.fsm.AppliedIndex(),
		RaftAppliedIndex: n.raft.AppliedIndex(), LastIndex: n.raft.LastIndex()}
}

// AdvertiseRaftAddr is the raft address other members dial (with port 0,
// the one the kernel chose).
func (n *Node) AdvertiseRaftAddr() string { return n.cfg.AdvertiseRaftAddr }

// Removed reports whether this node's latest raft configuration lists
// other members but not itself: it was removed and knows it. A node that
// never learned of its removal, or has no configuration yet (waiting to be
// added), is not "removed".
func (n *Node) Removed() bool {
	servers, err := n.Servers()
	if err != nil || len(servers) == 0 {
		return false
	}
	for _, s := range servers {
		if s.ID == n.cfg.NodeID {
			return false
		}
	}
	return true
}
