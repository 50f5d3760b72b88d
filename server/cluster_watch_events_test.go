package server

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/wire"
)

// watchEvents lists the events of the given types on tn, oldest first.
func (c *tcluster) watchEvents(tn *tnode, types ...string) []wire.Event {
	c.t.Helper()
	var page wire.EventsPage
	c.mustJSON(tn, http.MethodGet, "/admin/events?limit=1000&watch=true", nil, http.StatusOK, &page)
	var out []wire.Event
	for _, e := range page.Events {
		for _, typ := range types {
			if e.Type == typ {
				out = append(out, e)
			}
		}
	}
	return out
}

// A new leader records its election; a datanode that goes silent is
// recorded suspect then failed (once each), and recovered when it comes
// back. Every member shows the same events.
func TestWatchEvents(t *testing.T) {
	c := startCluster(t, 3, func(cfg *Config) { cfg.HeartbeatInterval = 200 * time.Millisecond })
	l := c.leader()
	eventually(t, "the first leader's election recorded", func() error {
		if evs := c.watchEvents(l, fsm.EventLeaderElected); len(evs) == 0 || evs[len(evs)-1].Fields["node"] != l.id {
			return fmt.Errorf("%+v", evs)
		}
		return nil
	})
	to := c.follower()
	c.mustJSON(l, http.MethodPost, "/admin/cluster/transfer-leadership?to="+to.id, nil, http.StatusOK, nil)
	eventually(t, to.id+"'s election recorded on every member", func() error {
		for _, tn := range c.nodes {
			evs := c.watchEvents(tn, fsm.EventLeaderElected)
			if len(evs) == 0 || evs[len(evs)-1].Fields["node"] != to.id {
				return fmt.Errorf("%s: %+v", tn.id, evs)
			}
		}
		return nil
	})

	// Datanode 4 heartbeats, goes silent, then comes back.
	l = c.leader()
	start := time.Now().UnixMilli()
	seq := uint64(0)
	beat := func() {
		seq++
		_, _ = regPostHB(c, c.leader(), wire.Heartbeat{ID: 4, Addr: "127.0.0.1:4004", StartTimeMs: start, Seq: seq})
	}
	for range 10 {
		beat()
		time.Sleep(100 * time.Millisecond) // the heartbeat rhythm the detector learns
	}
	eventually(t, "datanode 4 suspect, then failed", func() error {
		if evs := c.watchEvents(l, fsm.EventDatanodeSuspect, fsm.EventDatanodeFailed); len(evs) < 2 ||
			evs[0].Type != fsm.EventDatanodeSuspect || evs[len(evs)-1].Type != fsm.EventDatanodeFailed || evs[0].Fields["datanode"] != "4" {
			return fmt.Errorf("%+v", evs)
		}
		return nil
	})
	eventually(t, "datanode 4 recovered", func() error {
		beat()
		if evs := c.watchEvents(l, fsm.EventDatanodeRecovered); len(evs) != 1 || evs[0].Fields["addr"] != "127.0.0.1:4004" {
			return fmt.Errorf("%+v", evs)
		}
		return nil
	})
	if evs := c.watchEvents(l, fsm.EventDatanodeSuspect, fsm.EventDatanodeFailed); len(evs) != 2 {
		t.Fatalf("one suspect and one failed within the window, got %+v", evs)
	}
}

// While a member speaks an older protocol, no watch event is proposed:
// it would stop that member.
func TestWatchEventsWaitForTheUpgrade(t *testing.T) {
	c := startCluster(t, 3, func(cfg *Config) {
		if cfg.NodeID == "n1" {
			cfg.Protocol = fsm.WatchProtocol - 1
		}
	})
	c.procWaitProtocols(c.leader(), map[string]int{"n1": fsm.WatchProtocol - 1, "n2": fsm.Protocol, "n3": fsm.Protocol})
	c.mustJSON(c.leader(), http.MethodPost, "/admin/cluster/transfer-leadership", nil, http.StatusOK, nil)
	c.regMaintenance(c.leader(), true) // a write after the new term's start
	for _, tn := range c.nodes {
		if evs := c.watchEvents(tn, fsm.EventLeaderElected); len(evs) != 0 {
			t.Fatalf("%s: watch events before the upgrade: %+v", tn.id, evs)
		}
	}
}
