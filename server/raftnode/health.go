package raftnode

import (
	"slices"
	"sync"
	"time"
)

// What the health report reads from raft: when this node saw leaders
// change, and how long its recent writes took to commit and apply (which
// includes the log's fsync on a quorum).

const (
	leaderChangesKept = 64  // enough to tell "flapping" over any window
	commitsKept       = 128 // the recent commits the latency is read from
)

type healthLog struct {
	mu      sync.Mutex
	changes []time.Time // oldest first, at most leaderChangesKept
	commits []commit    // ring, at most commitsKept
	next    int
}

func (h *healthLog) leaderChanged(at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.changes = append(h.changes, at)
	if len(h.changes) > leaderChangesKept {
		h.changes = h.changes[len(h.changes)-leaderChangesKept:]
	}
}

type commit struct {
	at   time.Time
	took time.Duration
}

// commitsFresh: older commits say nothing about the disk now.
const commitsFresh = 10 * time.Minute

func (h *healthLog) committed(at time.Time, d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := commit{at, d}
	if len(h.commits) < commitsKept {
		h.commits = append(h.commits, c)
		return
	}
	h.commits[h.next] = c
	h.next = (h.next + 1) % commitsKept
}

// LeaderChangesSince counts the leader changes this node observed after t.
func (n *Node) LeaderChangesSince(t time.Time) int {
	h := &n.health
	h.mu.Lock()
	defer h.mu.Unlock()
	c := 0
	for _, at := range h.changes {
		if at.After(t) {
			c++
		}
	}
	return c
}

// CommitLatency is the 99th percentile of this node's commits of the last
// ten minutes (as leader: propose to applied), and how many it was read
// from.
func (n *Node) CommitLatency() (p99 time.Duration, samples int) {
	h := &n.health
	since := n.cfg.Now().Add(-commitsFresh)
	var s []time.Duration
	h.mu.Lock()
	for _, c := range h.commits {
		if c.at.After(since) {
			s = append(s, c.took)
		}
	}
	h.mu.Unlock()
	if len(s) == 0 {
		return 0, 0
	}
	slices.Sort(s)
	return s[(len(s)*99)/100], len(s)
}
