package server

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/wire"
)

func TestEventsLatestAndLongPoll(t *testing.T) {
	c := startCluster(t, 3, nil)
	f := c.follower()
	for i := 0; i < 3; i++ {
		c.mustJSON(f, http.MethodPost, fmt.Sprintf("/admin/maintenance?enable=%t", i%2 == 0), nil, http.StatusOK, nil)
	}
	var all, latest wire.EventsPage
	c.mustJSON(f, http.MethodGet, "/admin/events", nil, http.StatusOK, &all)
	c.mustJSON(f, http.MethodGet, "/admin/events?latest=2", nil, http.StatusOK, &latest)
	if len(latest.Events) != 2 || latest.Events[1].Index != all.Events[len(all.Events)-1].Index {
		t.Fatalf("latest=2: %+v, all ends %+v", latest.Events, all.Events[len(all.Events)-1])
	}
	last := all.Events[len(all.Events)-1].Index

	// A long-poll through a follower answers as soon as the next event
	// is applied.
	type polled struct {
		page wire.EventsPage
		took time.Duration
		r    reply
	}
	done := make(chan polled, 1)
	go func() {
		start := time.Now()
		var p wire.EventsPage
		r := c.mustJSON(f, http.MethodGet, fmt.Sprintf("/admin/events?since=%d&wait=8s", last), nil, http.StatusOK, &p)
		done <- polled{p, time.Since(start), r}
	}()
	time.Sleep(300 * time.Millisecond) // let the poll start waiting; the write below ends it either way
	c.mustJSON(c.nodes[0], http.MethodPost, "/admin/maintenance?enable=false&reason=poll", nil, http.StatusOK, nil)
	select {
	case p := <-done:
		if len(p.page.Events) == 0 || p.page.Events[0].Index <= last || p.page.Events[len(p.page.Events)-1].Type != fsm.EventMaintenanceDisabled && p.page.Events[len(p.page.Events)-1].Type != fsm.EventMaintenanceUpdated {
			t.Fatalf("long-poll answered %+v", p.page)
		}
		t.Logf("long-poll answered after %s", p.took.Round(time.Millisecond))
	case <-time.After(waitLong):
		t.Fatal("the long-poll did not answer after a write")
	}
	// With nothing new it answers an empty page when the wait runs out.
	var p wire.EventsPage
	c.mustJSON(f, http.MethodGet, "/admin/events?latest=1", nil, http.StatusOK, &p)
	start := time.Now()
	var empty wire.EventsPage
	c.mustJSON(f, http.MethodGet, fmt.Sprintf("/admin/events?since=%d&wait=400ms", p.Events[0].Index), nil, http.StatusOK, &empty)
	if len(empty.Events) != 0 || time.Since(start) < 350*time.Millisecond {
		t.Fatalf("an empty long-poll: %+v after %s", empty, time.Since(start))
	}
	for _, q := range []string{"latest=0", "latest=x", "wait=26s", "wait=0s", "wait=soon", "latest=1&since=3", "latest=1&wait=1s"} {
		if r := c.do(f, http.MethodGet, "/admin/events?"+q, nil); r.status != http.StatusBadRequest {
			t.Errorf("?%s: %s, want 400", q, r)
		}
	}
}

// isWatchEvent: the leader's own watch events (a datanode turning suspect,
// failed, recovered) come and go with time, not with the requests a test
// makes.
func isWatchEvent(typ string) bool {
	switch typ {
	case fsm.EventDatanodeSuspect, fsm.EventDatanodeFailed, fsm.EventDatanodeRecovered, fsm.EventLeaderElected:
		return true
	}
	return false
}
