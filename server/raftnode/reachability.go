package raftnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Membership safety: a voter is added only once it has proven it is there
// (ProbePeer), and a configuration change that would leave fewer reachable
// voters than a quorum is refused (CheckQuorum). Without these a join that
// names a raft address nobody listens on turns 3 voters into 4 that need
// 3, and one more failure leaves the cluster leaderless for good.

var (
	// ErrPeerUnreachable is a joining member that did not answer on its raft
	// address as the member it claims to be: it is not added.
	ErrPeerUnreachable = errors.New("joining member unreachable")
	// ErrQuorumAtRisk is a configuration change that would leave fewer
	// reachable voters than a quorum needs.
	ErrQuorumAtRisk = errors.New("quorum at risk")
)

// ProbeTimeout bounds ProbePeer.
const ProbeTimeout = 3 * time.Second

// ProbePeer checks that member id answers on raftAddr the way raft will
// reach it, by dialling it through the stream layer exactly as replication
// does. With peer TLS that is a TLS 1.3 handshake whose server chain must
// verify against the peer CA with role metasrv-node and CN == id; without
// it a TCP connect. (In the accept-both phase of turning TLS on, a peer
// that evidently does not speak TLS is reached in plaintext, as raft would
// reach it, so a TCP answer passes.) It is bounded by ProbeTimeout; an
// error errors.Is ErrPeerUnreachable and names the address and what failed.
// A success clears any failed heartbeat recorded for id (a member moved to
// a new address starts afresh).
func (n *Node) ProbePeer(ctx context.Context, id, raftAddr string) error {
	what := fmt.Sprintf("a TCP connection to raft address %s", raftAddr)
	if n.stream.sec != nil {
		what = fmt.Sprintf("a mutual TLS handshake with raft address %s (a certificate of role metasrv-node for member %s)", raftAddr, id)
	}
	if err := n.dialPeer(ctx, id, raftAddr); err != nil {
		return Errorf(ErrPeerUnreachable, "member %s was not added: %s failed: %v; start the node (its raft listener must be up and reachable from the leader) and join again", id, what, err)
	}
	n.hb.proven(id)
	return nil
}

// dialPeer dials member id at raftAddr as raft does and closes the
// connection, bounded by ProbeTimeout.
func (n *Node) dialPeer(ctx context.Context, id, raftAddr string) error {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	type dialed struct {
		c   net.Conn
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		c, err := n.stream.Dial(peerTarget(raft.ServerID(id), raft.ServerAddress(raftAddr)), ProbeTimeout)
		ch <- dialed{c, err}
	}()
	select {
	case d := <-ch:
		if d.err != nil {
			return d.err
		}
		return d.c.Close()
	case <-ctx.Done():
		go func() {
			if d := <-ch; d.c != nil {
				_ = d.c.Close()
			}
		}()
		return fmt.Errorf("no answer within %s", ProbeTimeout)
	}
}

// CheckQuorum refuses (ErrQuorumAtRisk) a configuration change that would
// leave fewer reachable voters than a quorum. servers is the configuration
// now; add is a voter being added or moved (counted reachable: it was just
// probed, see ProbePeer), remove a member being removed; either may be "".
// change describes the change for the message.
//
// Reachable is this node, and every other voter that raft has seen no
// failed heartbeat from since its last resumed one (in this leadership
// term) and that answers a probe of its raft address now (dialPeer, all in
// parallel, each bounded by ProbeTimeout). The probe is there because
// raft's report lags: the transport retries a refused dial for its whole
// timeout (10 s) before the heartbeat counts as failed, so a node that
// died a moment ago still has no failure recorded. The heartbeats are
// there because a probe only proves that the listener answers, not that
// raft behind it does. Only the leader tracks heartbeats: on another node
// it is ErrNotLeader.
func (n *Node) CheckQuorum(ctx context.Context, change string, servers []Server, add, remove string) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	failed := n.hb.failures()
	type voter struct {
		id, why string
	}
	var voters []*voter
	var wg sync.WaitGroup
	now := time.Now()
	for _, s := range servers {
		if !s.Voter || s.ID == remove || s.ID == add {
			continue
		}
		v := &voter{id: s.ID}
		voters = append(voters, v)
		if s.ID == n.cfg.NodeID {
			continue
		}
		if last, ok := failed[s.ID]; ok {
			v.why = fmt.Sprintf("raft heartbeats failing, last contact %s ago", now.Sub(last).Round(time.Second))
			continue
		}
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			if err := n.dialPeer(ctx, v.id, addr); err != nil {
				v.why = fmt.Sprintf("raft address %s does not answer: %v", addr, err)
			}
		}(s.RaftAddr)
	}
	if add != "" && add != remove {
		voters = append(voters, &voter{id: add})
	}
	wg.Wait()
	var reachable, unreachable []string
	for _, v := range voters {
		if v.why == "" {
			reachable = append(reachable, v.id)
		} else {
			unreachable = append(unreachable, v.id+" ("+v.why+")")
		}
	}
	quorum := len(voters)/2 + 1
	if len(reachable) >= quorum {
		return nil
	}
	sort.Strings(reachable)
	sort.Strings(unreachable)
	return Errorf(ErrQuorumAtRisk, "%s would leave %d voters, %d of them reachable (%s), and a quorum needs %d; unreachable: %s. "+
		"The new configuration would have no quorum until they answer: the change could not commit and the leader would step down. "+
		"Bring them back (or remove them first), or repeat with ?force=true to do it anyway",
		change, len(voters), len(reachable), strings.Join(reachable, ", "), quorum, strings.Join(unreachable, "; "))
}

// Unreachable is the ids of the peers this leader has seen fail a
// heartbeat and not resume since, sorted; nil on a follower.
func (n *Node) Unreachable() []string {
	if n.raft.State() != raft.Leader {
		return nil
	}
	var ids []string
	for id := range n.hb.failures() {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// heartbeats tracks, on the leader, which peers failed their last
// heartbeat, from raft's FailedHeartbeatObservation and
// ResumedHeartbeatObservation. It is fed from the observer's filter, which
// raft calls synchronously where it emits: nothing is dropped (a dropped
// "resumed" would leave a peer unreachable for good) and the order is
// raft's own. The filter only updates a map under a mutex and never
// blocks.
//
// Every raft state change (leadership won or lost) clears it. A heartbeat
// goroutine of an earlier term, or of a peer removed since, may still
// report a failure after that; such a report carries the last contact of
// its own replication, which began before the reset, while a replication
// of this term starts with its last contact at its start. So a failure
// whose LastContact is before the reset of its peer is stale and ignored.
type heartbeats struct {
	mu        sync.Mutex
	termStart time.Time
	resetAt   map[string]time.Time // peer → removed from the configuration (this term)
	failed    map[string]time.Time // peer → raft's last contact when its failures began
}

func (h *heartbeats) reset(leader bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failed, h.resetAt = map[string]time.Time{}, map[string]time.Time{}
	h.termStart = time.Time{}
	if leader {
		h.termStart = time.Now()
	}
}

// observe records one observation; it always reports false (nothing goes
// to the observer's channel).
func (h *heartbeats) observe(o *raft.Observation) bool {
	switch d := o.Data.(type) {
	case raft.RaftState:
		h.reset(d == raft.Leader)
	case raft.FailedHeartbeatObservation:
		id := string(d.PeerID)
		h.mu.Lock()
		defer h.mu.Unlock()
		// termStart is zero unless this node leads.
		if h.termStart.IsZero() || d.LastContact.Before(h.termStart) || d.LastContact.Before(h.resetAt[id]) {
			return false // stale: an earlier term's or an earlier membership's replication
		}
		if _, ok := h.failed[id]; !ok {
			h.failed[id] = d.LastContact
		}
	case raft.ResumedHeartbeatObservation:
		h.proven(string(d.PeerID))
	case raft.PeerObservation:
		if d.Removed {
			id := string(d.Peer.ID)
			h.mu.Lock()
			defer h.mu.Unlock()
			if !h.termStart.IsZero() {
				delete(h.failed, id)
				h.resetAt[id] = time.Now()
			}
		}
	}
	return false
}

// proven clears id's failure: it answered.
func (h *heartbeats) proven(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.failed, id)
}

func (h *heartbeats) failures() map[string]time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]time.Time, len(h.failed))
	for id, t := range h.failed {
		out[id] = t
	}
	return out
}

// watchHeartbeats registers the heartbeat observer. It is called right
// after raft starts, before this node can lead.
func (n *Node) watchHeartbeats() {
	n.raft.RegisterObserver(raft.NewObserver(nil, false, n.hb.observe))
}
