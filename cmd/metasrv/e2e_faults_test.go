package main

// End-to-end tests under faults: follower writes, kill -9 and SIGSTOP of
// the leader, a full-cluster restart, and a maintenance TTL that ends
// across a leader change. Assertions are about invariants (no acknowledged
// write lost, reads linearizable through every node), not about elections.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
	"github.com/metasrv/metasrv/server/wire"
)

// TestFollowerWriteVisibleEverywhere writes through each follower and reads
// through every node: consistently at once, and with ?stale eventually.
func TestFollowerWriteVisibleEverywhere(t *testing.T) {
	c := startCluster(t)
	nodes := c.Nodes()
	leader := c.waitReady(nodes...)
	for _, f := range localcluster.Followers(leader, nodes) {
		for _, v := range []bool{true, false, true} {
			wantEnabled(t, f.ID+" write", c.must(http.MethodPost, f.URL(fmt.Sprintf("/admin/maintenance?enable=%t&reason=via-%s", v, f.ID)), nil), v)
			c.everywhereEnabled(v, nodes...)
		}
	}
	// Every replica converges on the same full state.
	want := c.verbose(leader)
	for _, n := range nodes {
		c.Eventually(n.ID+" stale verbose", func() error {
			r, err := c.get(n.URL("/admin/maintenance?verbose=true&stale=true"), 5*time.Second)
			if err != nil {
				return err
			}
			var m wire.Maintenance
			if err := json.Unmarshal(r.Body, &m); err != nil {
				return err
			}
			if !sameMaintenance(m, want) {
				return fmt.Errorf("%s stale state %+v, want %+v", n.ID, m, want)
			}
			return nil
		})
	}
}

// writer keeps writing maintenance through one node with a unique reason
// per write and records how each write was answered.
type writer struct {
	c    *tcluster
	via  *localcluster.Node
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	acked   []string // reasons answered 200
	unknown []string // 504 outcome_unknown or a client timeout
	refused int      // 503: nothing applied
	bad     []string // any other answer: a bug
}

func startWriter(c *tcluster, via *localcluster.Node, prefix string) *writer {
	w := &writer{c: c, via: via, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			reason := fmt.Sprintf("%s-%d", prefix, i)
			r, err := c.Request(20*time.Second, http.MethodPost, via.URL("/admin/maintenance?enable=true&by=writer&reason="+url.QueryEscape(reason)), nil)
			w.mu.Lock()
			switch {
			case err != nil:
				w.unknown = append(w.unknown, reason)
			case r.Code == http.StatusOK && strings.TrimSpace(string(r.Body)) == `{"enabled":true}`:
				w.acked = append(w.acked, reason)
			case r.Code == http.StatusServiceUnavailable && retryable(r):
				w.refused++
			case r.Code == http.StatusGatewayTimeout && errCode(r) == "outcome_unknown":
				w.unknown = append(w.unknown, reason)
			default:
				w.bad = append(w.bad, fmt.Sprintf("%s: %s", reason, r))
			}
			w.mu.Unlock()
			// Pacing only (not for correctness): a few dozen writes a second.
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return w
}

func errCode(r localcluster.Reply) string {
	e, _ := errorBodyOf(r)
	return e.Code
}

// retryable: a 503 saying nothing was applied, with Retry-After.
func retryable(r localcluster.Reply) bool {
	switch errCode(r) {
	case "no_leader", "not_leader", "timeout":
		return r.Header.Get("Retry-After") != ""
	}
	return false
}

func (w *writer) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitAcked waits until the writer has n more acknowledged writes.
func (w *writer) waitAcked(what string, more int) {
	w.c.T.Helper()
	target := w.ackedCount() + more
	w.c.Eventually(what, func() error {
		if got := w.ackedCount(); got < target {
			return fmt.Errorf("writer through %s: %d acknowledged writes, want %d", w.via.ID, got, target)
		}
		return nil
	})
}

func (w *writer) halt() {
	close(w.stop)
	<-w.done
}

// check verifies that every acknowledged write is in the replicated event
// log read through each node, and that no write got an answer outside the
// protocol (200, 503 nothing-applied, 504 outcome-unknown).
func (w *writer) check(nodes ...*localcluster.Node) {
	t := w.c.T
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("writer through %s: %d acknowledged, %d refused (503), %d unknown outcome (504/timeout)",
		w.via.ID, len(w.acked), w.refused, len(w.unknown))
	if len(w.bad) > 0 {
		t.Fatalf("writes answered outside the protocol: %q", w.bad)
	}
	for _, n := range nodes {
		seen := map[string]bool{}
		for _, e := range w.c.allEvents(n) {
			if e.By == "writer" {
				seen[e.Reason] = true
			}
		}
		for _, reason := range w.acked {
			if !seen[reason] {
				t.Fatalf("acknowledged write %q is missing from the event log read through %s", reason, n.ID)
			}
		}
	}
}

// allEvents reads the whole event log through n, page by page.
func (c *tcluster) allEvents(n *localcluster.Node) []localcluster.Event {
	c.T.Helper()
	var out []localcluster.Event
	since := uint64(0)
	for {
		p := c.events(n, fmt.Sprintf("?since=%d&limit=10000", since))
		if len(p.Events) == 0 {
			return out
		}
		out = append(out, p.Events...)
		since = p.Events[len(p.Events)-1].Index
	}
}

// TestKillLeader kills the leader with SIGKILL while a client keeps writing
// through a follower: a new leader accepts writes, the flag and every
// acknowledged write are intact on the survivors, and the old leader
// catches up when it comes back.
func TestKillLeader(t *testing.T) {
	localcluster.SkipIfShort(t)
	c := startCluster(t)
	nodes := c.Nodes()
	old := c.waitReady(nodes...)
	survivors := localcluster.Followers(old, nodes)
	wantEnabled(t, "enable before the kill", c.must(http.MethodPost, old.URL("/admin/maintenance?enable=true&reason=before-kill&by=test"), nil), true)

	w := startWriter(c, survivors[0], "k")
	w.waitAcked("writes before the kill", 5)
	old.Kill()
	killedAt := w.ackedCount()
	leader := c.waitReady(survivors...)
	if leader.ID == old.ID {
		t.Fatalf("the killed node %s is still the leader", old.ID)
	}
	w.waitAcked("writes after the kill", 5)
	w.halt()
	if w.ackedCount() <= killedAt {
		t.Fatalf("no write acknowledged after the kill")
	}
	w.check(survivors...)

	// The flag is intact on both survivors and they agree on the state.
	want := c.verbose(leader)
	if !want.Enabled || want.By != "writer" {
		t.Fatalf("state after the kill: %+v", want)
	}
	for _, n := range survivors {
		if got := c.verbose(n); !sameMaintenance(got, want) {
			t.Fatalf("%s: %+v, leader %s: %+v", n.ID, got, leader.ID, want)
		}
	}
	c.everywhereEnabled(true, survivors...)

	// The new leader accepts writes, directly and through the other survivor.
	for _, n := range survivors {
		wantEnabled(t, n.ID+" disable", c.must(http.MethodPost, n.URL("/admin/maintenance?enable=false"), nil), false)
		c.everywhereEnabled(false, survivors...)
		wantEnabled(t, n.ID+" enable", c.must(http.MethodPost, n.URL("/admin/maintenance?enable=true&reason=after-kill"), nil), true)
		c.everywhereEnabled(true, survivors...)
	}

	// The old leader comes back as a follower with everything.
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	c.waitReady(nodes...)
	c.everywhereEnabled(true, nodes...)
	w.check(old)
}

// TestPauseLeader freezes the leader with SIGSTOP: the others elect a
// leader and accept writes; after SIGCONT the old leader never answers a
// consistent read from its stale state, follows the new leader, and
// forwards writes to it.
func TestPauseLeader(t *testing.T) {
	localcluster.SkipIfShort(t)
	c := startCluster(t)
	nodes := c.Nodes()
	old := c.waitReady(nodes...)
	others := localcluster.Followers(old, nodes)
	wantEnabled(t, "enable before the pause", c.must(http.MethodPost, old.URL("/admin/maintenance?enable=true&reason=before-pause"), nil), true)

	// A client keeps writing through one of the others, and another keeps
	// reading through both. Reads are side-effect free, so a read that
	// was forwarded to the frozen leader is retried on the new one: every
	// read must succeed within --leader-wait (5 s) and return true.
	w := startWriter(c, others[0], "p")
	rd := startReader(c, true, others...)
	w.waitAcked("writes before the pause", 5)
	rd.waitReads("reads before the pause", 5, others...)
	if err := old.Pause(); err != nil {
		t.Fatal(err)
	}
	leader := c.waitReady(others...)
	if leader.ID == old.ID {
		t.Fatalf("the paused node %s is still the leader", old.ID)
	}
	w.waitAcked("writes during the pause", 5)
	rd.waitReads("reads during the pause", 5, others...)
	w.halt()
	rd.halt()
	w.check(others...)
	t.Logf("reads through %s and %s: %v ok, slowest %s", others[0].ID, others[1].ID, rd.ok, rd.maxLatency)
	if len(rd.wrong) > 0 {
		t.Fatalf("reads answered a wrong value: %q", rd.wrong)
	}
	if len(rd.failed) > 0 {
		t.Fatalf("%d reads failed while the leader was frozen: %q", len(rd.failed), rd.failed)
	}

	// Change the flag while the old leader is frozen: its own state is now
	// stale (enabled=true).
	wantEnabled(t, "disable during the pause", c.must(http.MethodPost, others[1].URL("/admin/maintenance?enable=false&reason=during-pause"), nil), false)
	c.everywhereEnabled(false, others...)
	want := c.verbose(leader)

	if err := old.Resume(); err != nil {
		t.Fatal(err)
	}
	// Right after SIGCONT the old node may still believe it leads; a
	// consistent read through it must nevertheless be linearizable.
	r := c.must(http.MethodGet, old.URL("/admin/maintenance?verbose=true"), nil)
	var m wire.Maintenance
	if r.Code != http.StatusOK || json.Unmarshal(r.Body, &m) != nil {
		t.Fatalf("consistent read through the resumed old leader: %s", r)
	}
	if !sameMaintenance(m, want) {
		t.Fatalf("the resumed old leader answered a stale state %+v; current is %+v", m, want)
	}
	wantEnabled(t, "consistent read through the resumed old leader", c.must(http.MethodGet, old.URL("/admin/maintenance"), nil), false)

	// It follows.
	c.Eventually(old.ID+" follows", func() error {
		st, err := c.Status(old)
		if err != nil {
			return err
		}
		if st.State != "follower" || st.LeaderID == "" || st.LeaderID == old.ID {
			return fmt.Errorf("%s: state %s, leader %q", old.ID, st.State, st.LeaderID)
		}
		return nil
	})
	leader = c.waitReady(nodes...)
	if leader.ID == old.ID {
		// Possible only after another election; the forwarding check below
		// needs a follower.
		t.Logf("note: %s became leader again after catching up", old.ID)
	}

	// A write sent to it succeeds and is visible everywhere.
	fwdBefore := forwardedOK(t, c, old)
	wantEnabled(t, "write through the old leader", c.must(http.MethodPost, old.URL("/admin/maintenance?enable=true&reason=via-old-leader"), nil), true)
	c.everywhereEnabled(true, nodes...)
	if leader.ID != old.ID {
		if got := forwardedOK(t, c, old); got <= fwdBefore {
			t.Fatalf("%s answered the write but did not forward it (forwarded ok %v → %v)", old.ID, fwdBefore, got)
		}
	}
	if m := c.verbose(old, "stale"); m.Reason != "via-old-leader" {
		// everywhereEnabled waited for the stale flag; the whole state follows.
		t.Fatalf("%s stale state after catching up: %+v", old.ID, m)
	}
	w.check(nodes...)
}

// forwardedOK reads metasrv_forwarded_requests_total{outcome="ok"} from n.
func forwardedOK(t *testing.T, c *tcluster, n *localcluster.Node) float64 {
	t.Helper()
	r := c.mustOK(http.MethodGet, n.URL("/metrics"), nil)
	for _, line := range strings.Split(string(r.Body), "\n") {
		if rest, ok := strings.CutPrefix(line, `metasrv_forwarded_requests_total{outcome="ok"} `); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

// TestFullRestart stops all three nodes at once with SIGTERM (each must
// exit 0 within a few seconds) and restarts them: the flag, the whole
// maintenance state and the event log survive. It runs once with the log
// only and once with snapshots taken (restore + log tail).
func TestFullRestart(t *testing.T) {
	localcluster.SkipIfShort(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"log", nil},
		{"snapshot", []string{"--snapshot-threshold", "4", "--snapshot-interval", "100ms", "--snapshot-retain", "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, tc.args...)
			nodes := c.Nodes()
			leader := c.waitReady(nodes...)
			f := localcluster.Followers(leader, nodes)[0]
			for i := 0; i < 6; i++ {
				wantEnabled(t, "write", c.must(http.MethodPost, f.URL(fmt.Sprintf("/admin/maintenance?enable=%t&reason=r%d&by=ops", i%2 == 0, i)), nil), i%2 == 0)
			}
			wantEnabled(t, "final write", c.must(http.MethodPost, leader.URL("/admin/maintenance?enable=true&reason=survive&by=ops&ttl=24h"), nil), true)
			wantState := c.verbose(f)
			wantEvents := c.allEvents(leader)
			if len(tc.args) > 0 {
				// Let a snapshot be taken so the restart restores from it.
				c.Eventually("snapshot taken", func() error {
					for _, n := range nodes {
						if !hasSnapshot(n) {
							return fmt.Errorf("%s has no snapshot yet", n.ID)
						}
					}
					return nil
				})
			}

			var wg sync.WaitGroup
			errs := make([]error, len(nodes))
			took := make([]time.Duration, len(nodes))
			for i, n := range nodes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					start := time.Now()
					errs[i] = n.Stop(2 * stopTimeout)
					took[i] = time.Since(start)
				}()
			}
			wg.Wait()
			for i, n := range nodes {
				if errs[i] != nil {
					t.Fatalf("SIGTERM %s: %v", n.ID, errs[i])
				}
				if took[i] > stopTimeout {
					t.Fatalf("SIGTERM %s: took %s to exit (want < %s)", n.ID, took[i], stopTimeout)
				}
			}
			t.Logf("all three exited 0 after SIGTERM in %v", took)

			for _, n := range nodes {
				if err := n.Start(); err != nil {
					t.Fatal(err)
				}
			}
			c.waitReady(nodes...)
			for _, n := range nodes {
				if got := c.verbose(n); !sameMaintenance(got, wantState) {
					t.Fatalf("%s after the restart: %+v, want %+v", n.ID, got, wantState)
				}
				got := c.allEvents(n)
				if len(got) < len(wantEvents) {
					t.Fatalf("%s lost events across the restart: %d → %d", n.ID, len(wantEvents), len(got))
				}
				for i, e := range wantEvents {
					a, _ := json.Marshal(e)
					b, _ := json.Marshal(got[i])
					if string(a) != string(b) {
						t.Fatalf("%s event %d changed across the restart:\n%s\n%s", n.ID, i, a, b)
					}
				}
			}
			c.everywhereEnabled(true, nodes...)
			f = localcluster.Followers(c.waitReady(nodes...), nodes)[0]
			wantEnabled(t, "write after the restart", c.must(http.MethodPost, f.URL("/admin/maintenance?enable=false"), nil), false)
			c.everywhereEnabled(false, nodes...)
		})
	}
}

// TestTTLExpiresAcrossLeaderChange enables maintenance with ttl=3s and
// kills the leader at once: the new leader still ends the window. Before
// expires_at every read says enabled; afterwards the flag is false
// everywhere with exactly one maintenance_expired event.
func TestTTLExpiresAcrossLeaderChange(t *testing.T) {
	localcluster.SkipIfShort(t)
	c := startCluster(t)
	nodes := c.Nodes()
	old := c.waitReady(nodes...)
	survivors := localcluster.Followers(old, nodes)
	wantEnabled(t, "enable with ttl", c.must(http.MethodPost, survivors[0].URL("/admin/maintenance?enable=true&ttl=3s&reason=short-window"), nil), true)
	m := c.verbose(survivors[1])
	if m.ExpiresAt == nil || m.Since == nil || m.ExpiresAt.Sub(*m.Since) != 3*time.Second {
		t.Fatalf("window after enable ttl=3s: %+v", m)
	}
	old.Kill()

	// Poll through both survivors until the window has ended everywhere.
	// The expiry is proposed only at expires_at (the same host clock), so
	// a read answered before then must say enabled.
	ended := map[string]bool{}
	c.Eventually("window ends on every survivor", func() error {
		for _, n := range survivors {
			r, err := c.get(n.URL("/admin/maintenance"), 10*time.Second)
			answered := time.Now()
			if err != nil {
				return err
			}
			body := strings.TrimSpace(string(r.Body))
			switch {
			case r.Code != http.StatusOK:
				return fmt.Errorf("%s: %s", n.ID, r)
			case body == `{"enabled":true}`:
				if ended[n.ID] {
					t.Fatalf("%s said enabled again after the window ended", n.ID)
				}
			case body == `{"enabled":false}`:
				if answered.Before(*m.ExpiresAt) {
					t.Fatalf("%s ended the window at %s, before expires_at %s", n.ID, answered.Format(time.RFC3339Nano), m.ExpiresAt.Format(time.RFC3339Nano))
				}
				ended[n.ID] = true
			default:
				t.Fatalf("%s: unexpected body %s", n.ID, r)
			}
		}
		for _, n := range survivors {
			if !ended[n.ID] {
				return fmt.Errorf("%s still in maintenance", n.ID)
			}
		}
		return nil
	})
	for _, n := range survivors {
		got := c.verbose(n)
		if got.Enabled || got.Epoch != m.Epoch+1 || got.By != "ttl" || got.ExpiresAt != nil {
			t.Fatalf("%s after expiry: %+v (window epoch %d)", n.ID, got, m.Epoch)
		}
		var expired []localcluster.Event
		for _, e := range c.allEvents(n) {
			if e.Type == "maintenance_expired" {
				expired = append(expired, e)
			}
		}
		if len(expired) != 1 || expired[0].Fields["expired_epoch"] != fmt.Sprint(m.Epoch) || expired[0].Epoch != m.Epoch+1 {
			t.Fatalf("%s maintenance_expired events: %+v, want one for epoch %d", n.ID, expired, m.Epoch)
		}
	}
	c.everywhereEnabled(false, survivors...)

	// The old leader comes back and agrees.
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	c.waitReady(nodes...)
	c.everywhereEnabled(false, nodes...)
}

// hasSnapshot reports whether n's data dir holds a complete raft snapshot.
func hasSnapshot(n *localcluster.Node) bool {
	metas, _ := filepath.Glob(filepath.Join(n.DataDir, "snapshots", "*", "meta.json"))
	return len(metas) > 0
}

// reader keeps reading the flag with consistent reads (no ?stale) through
// each of its nodes, one goroutine per node, and records every answer.
// A node can be taken out of the rotation with setUp(id, false): the call
// returns only when no read to that node is in flight.
type reader struct {
	c    *tcluster
	want string // the only correct body (the flag does not change meanwhile)
	stop chan struct{}
	wg   sync.WaitGroup

	gate sync.RWMutex // held for reading during each request
	up   map[string]bool

	mu         sync.Mutex
	ok         map[string]int
	failed     []string // errors and non-200 answers
	wrong      []string // 200 with another value: a linearizability violation
	maxLatency time.Duration
}

func startReader(c *tcluster, enabled bool, nodes ...*localcluster.Node) *reader {
	rd := &reader{c: c, want: fmt.Sprintf(`{"enabled":%t}`, enabled), stop: make(chan struct{}),
		up: map[string]bool{}, ok: map[string]int{}}
	for _, n := range nodes {
		rd.up[n.ID] = true
	}
	for _, n := range nodes {
		rd.wg.Add(1)
		go func() {
			defer rd.wg.Done()
			for {
				select {
				case <-rd.stop:
					return
				default:
				}
				rd.gate.RLock()
				if !rd.up[n.ID] {
					rd.gate.RUnlock()
					time.Sleep(10 * time.Millisecond)
					continue
				}
				start := time.Now()
				r, err := c.get(n.URL("/admin/maintenance"), 20*time.Second)
				took := time.Since(start)
				rd.gate.RUnlock()
				rd.mu.Lock()
				rd.maxLatency = max(rd.maxLatency, took)
				at := time.Now().Format("15:04:05.000")
				switch {
				case err != nil:
					rd.failed = append(rd.failed, fmt.Sprintf("%s %s after %s: %v", at, n.ID, took, err))
				case r.Code != http.StatusOK:
					rd.failed = append(rd.failed, fmt.Sprintf("%s %s after %s: %s", at, n.ID, took, r))
				case strings.TrimSpace(string(r.Body)) != rd.want:
					rd.wrong = append(rd.wrong, fmt.Sprintf("%s %s: %s", at, n.ID, r))
				default:
					rd.ok[n.ID]++
				}
				rd.mu.Unlock()
				// Pacing only: each node is read a few dozen times a second.
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	return rd
}

// setUp adds or removes a node from the rotation; when it returns, no read
// to that node is in flight.
func (rd *reader) setUp(id string, up bool) {
	rd.gate.Lock()
	rd.up[id] = up
	rd.gate.Unlock()
}

func (rd *reader) okCount(id string) int {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.ok[id]
}

// waitReads waits until each node has answered more successful reads.
func (rd *reader) waitReads(what string, more int, nodes ...*localcluster.Node) {
	rd.c.T.Helper()
	target := map[string]int{}
	for _, n := range nodes {
		target[n.ID] = rd.okCount(n.ID) + more
	}
	rd.c.Eventually(what, func() error {
		for _, n := range nodes {
			if got := rd.okCount(n.ID); got < target[n.ID] {
				return fmt.Errorf("reads through %s: %d ok, want %d", n.ID, got, target[n.ID])
			}
		}
		return nil
	})
}

func (rd *reader) halt() {
	close(rd.stop)
	rd.wg.Wait()
}

// TestNoQuorumRefusesSafely kills two of the three nodes. The survivor
// stays alive (health, stale reads) but, knowing no leader, refuses
// consistent reads and writes with 503 no_leader and Retry-After after
// waiting --leader-wait, applies nothing, and says it is not ready; once a
// peer is back the cluster serves again with the state unchanged.
func TestNoQuorumRefusesSafely(t *testing.T) {
	localcluster.SkipIfShort(t)
	const leaderWait = time.Second
	c := startCluster(t, "--leader-wait", leaderWait.String())
	nodes := c.Nodes()
	leader := c.waitReady(nodes...)
	wantEnabled(t, "enable", c.must(http.MethodPost, leader.URL("/admin/maintenance?enable=true&reason=before-quorum-loss"), nil), true)
	// Let every replica apply it, so the survivor's stale state is known.
	c.everywhereEnabled(true, nodes...)
	want := c.verbose(leader)
	s := localcluster.Followers(leader, nodes)[0]
	var dead []*localcluster.Node
	for _, n := range nodes {
		if n.ID != s.ID {
			n.Kill()
			dead = append(dead, n)
		}
	}
	c.Eventually(s.ID+" knows no leader", func() error {
		st, err := c.Status(s)
		if err != nil {
			return err
		}
		if st.LeaderID != "" {
			return fmt.Errorf("%s still sees leader %s", s.ID, st.LeaderID)
		}
		return nil
	})

	for _, req := range []struct{ method, path string }{
		{http.MethodPost, "/admin/maintenance?enable=false"},
		{http.MethodPost, "/admin/maintenance/disable"},
		{http.MethodGet, "/admin/maintenance"},
		{http.MethodGet, "/admin/maintenance/status"},
		{http.MethodGet, "/admin/events"},
		{http.MethodGet, "/admin/leader"},
	} {
		start := time.Now()
		r := c.must(req.method, s.URL(req.path), nil)
		took := time.Since(start)
		if r.Code != http.StatusServiceUnavailable || errCode(r) != "no_leader" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s %s without quorum: %s (Retry-After %q), want 503 no_leader with Retry-After", req.method, req.path, r, r.Header.Get("Retry-After"))
		}
		if took < leaderWait-100*time.Millisecond {
			t.Fatalf("%s %s answered 503 after %s, before --leader-wait %s", req.method, req.path, took, leaderWait)
		}
	}
	if r := c.must(http.MethodGet, s.URL("/admin/health"), nil); r.Code != http.StatusOK || strings.TrimSpace(string(r.Body)) != "OK" {
		t.Fatalf("health without quorum: %s", r)
	}
	if r := c.must(http.MethodGet, s.URL("/admin/ready"), nil); r.Code != http.StatusServiceUnavailable {
		t.Fatalf("ready without quorum: %s, want 503", r)
	}
	wantEnabled(t, "stale read without quorum", c.must(http.MethodGet, s.URL("/admin/maintenance?stale"), nil), true)
	if got := c.verbose(s, "stale"); !sameMaintenance(got, want) {
		t.Fatalf("state without quorum: %+v, want %+v", got, want)
	}
	v, err := c.clusterView(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range v.Members {
		if m.Reachable != (m.ID == s.ID) {
			t.Fatalf("/admin/cluster without quorum: member %+v", m)
		}
	}

	// A peer comes back: the refused writes were never applied.
	if err := dead[0].Start(); err != nil {
		t.Fatal(err)
	}
	back := []*localcluster.Node{s, dead[0]}
	c.waitReady(back...)
	for _, n := range back {
		if got := c.verbose(n); !sameMaintenance(got, want) {
			t.Fatalf("%s after quorum is back: %+v, want %+v (a refused write was applied)", n.ID, got, want)
		}
	}
	wantEnabled(t, "write after quorum is back", c.must(http.MethodPost, s.URL("/admin/maintenance?enable=false"), nil), false)
	c.everywhereEnabled(false, back...)
}
