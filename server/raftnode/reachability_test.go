package raftnode

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// The leader's view of failed heartbeats, fed observation by observation.
// A report from an earlier term's (or an earlier membership's) replication
// carries a last contact from before the reset and must not mark the peer:
// no "resumed" would ever clear it.
func TestHeartbeatObservations(t *testing.T) {
	type step struct {
		data any
		// contact is the failure's LastContact relative to the step's
		// time: negative means before the last reset.
		contact time.Duration
	}
	failed := func(id string, contact time.Duration) step {
		return step{raft.FailedHeartbeatObservation{PeerID: raft.ServerID(id)}, contact}
	}
	resumed := func(id string) step { return step{raft.ResumedHeartbeatObservation{PeerID: raft.ServerID(id)}, 0} }
	removed := func(id string) step {
		return step{raft.PeerObservation{Removed: true, Peer: raft.Server{ID: raft.ServerID(id)}}, 0}
	}
	state := func(s raft.RaftState) step { return step{s, 0} }
	for _, tc := range []struct {
		name  string
		steps []step
		want  string
	}{
		{"a failure marks the peer", []step{state(raft.Leader), failed("n2", time.Millisecond)}, "[n2]"},
		{"a resume clears it", []step{state(raft.Leader), failed("n2", time.Millisecond), resumed("n2")}, "[]"},
		{"a follower records nothing", []step{state(raft.Follower), failed("n2", time.Millisecond)}, "[]"},
		{"losing leadership clears", []step{state(raft.Leader), failed("n2", time.Millisecond), state(raft.Follower), state(raft.Candidate), state(raft.Leader)}, "[]"},
		{"an earlier term's late failure is ignored", []step{state(raft.Leader), state(raft.Follower), state(raft.Leader), failed("n2", -time.Second)}, "[]"},
		{"a removed peer's late failure is ignored", []step{state(raft.Leader), removed("n3"), failed("n3", -time.Second)}, "[]"},
		{"removal clears the peer", []step{state(raft.Leader), failed("n3", time.Millisecond), removed("n3")}, "[]"},
		{"a re-added peer's own failure counts", []step{state(raft.Leader), removed("n3"), failed("n3", time.Millisecond)}, "[n3]"},
		{"peers are separate", []step{state(raft.Leader), failed("n2", time.Millisecond), failed("n3", time.Millisecond), resumed("n2")}, "[n3]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h heartbeats
			for _, s := range tc.steps {
				time.Sleep(2 * time.Millisecond) // distinct reset times
				if f, ok := s.data.(raft.FailedHeartbeatObservation); ok {
					f.LastContact = time.Now().Add(s.contact)
					s.data = f
				}
				if h.observe(&raft.Observation{Data: s.data}) {
					t.Fatal("the filter let an observation through to the channel")
				}
			}
			var ids []string
			for id := range h.failures() {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			if got := fmt.Sprint(ids); got != tc.want {
				t.Fatalf("failed peers %s, want %s", got, tc.want)
			}
		})
	}
}
