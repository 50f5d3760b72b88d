package server

import (
	"net/http"
	"testing"
	"time"
)

// A member removed from the cluster answers 410 removed once its own
// configuration lacks it; until it learns of the removal it has no leader
// and answers 503 no_leader, never 410.
func TestRemovedNodeAnswersGone(t *testing.T) {
	c := startCluster(t, 3, func(cfg *Config) { cfg.LeaderWait = 500 * time.Millisecond })
	lead := c.leader()
	victim := c.follower()
	c.mustJSON(lead, http.MethodDelete, "/admin/cluster/members/"+victim.id, nil, http.StatusOK, nil)
	eventually(t, victim.id+" answers for its removal", func() error {
		r := c.do(victim, http.MethodPost, "/admin/maintenance?enable=true", nil)
		switch {
		case victim.node.raft.Removed() && r.status == http.StatusGone && r.code() == "removed":
			return nil
		case !victim.node.raft.Removed() && r.status == http.StatusGone:
			t.Fatalf("410 from a node whose configuration still lists it: %s", r)
		case r.status == http.StatusOK:
			t.Fatalf("a removed node applied a write: %s", r)
		}
		return errorf("removed=%t, answer %s", victim.node.raft.Removed(), r)
	})
	r := c.do(victim, http.MethodGet, "/admin/leader", nil)
	if r.status != http.StatusGone || r.code() != "removed" {
		t.Fatalf("/admin/leader on a removed node: %s", r)
	}
}
