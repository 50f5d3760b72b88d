package main

// End-to-end tests of node restarts: a node that was down for 15 s serves
// at once when it comes back, and a rolling restart of all three nodes
// keeps the flag readable through every node.

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
)

// TestRestartedNodeServesWithinTwoSeconds kills a follower, keeps writing
// for 15 s (the leader keeps failing to replicate to it and backs off for
// up to ~10 s), restarts it, and measures from process start until a
// consistent read and a write through it have both succeeded. Its FSM lags
// meanwhile; it must forward (finding the leader's address in its member
// directory file) rather than wait for the log.
func TestRestartedNodeServesWithinTwoSeconds(t *testing.T) {
	localcluster.SkipIfShort(t)
	const (
		downFor = 15 * time.Second
		bound   = 2 * time.Second
	)
	c := startCluster(t)
	nodes := c.Nodes()
	leader := c.waitReady(nodes...)
	f := localcluster.Followers(leader, nodes)[0]
	other := localcluster.Followers(leader, nodes)[1]
	wantEnabled(t, "enable", c.must(http.MethodPost, leader.URL("/admin/maintenance?enable=true&reason=before-down"), nil), true)

	f.Kill()
	downAt := time.Now()
	for i := 0; time.Since(downAt) < downFor; i++ {
		via := leader
		if i%2 == 1 {
			via = other
		}
		v := i%2 == 0
		wantEnabled(t, "write while down", c.must(http.MethodPost, via.URL(fmt.Sprintf("/admin/maintenance?enable=%t&reason=down-%d", v, i)), nil), v)
		time.Sleep(100 * time.Millisecond) // pacing: keep the log moving for 15 s
	}
	wantEnabled(t, "last write before restart", c.must(http.MethodPost, other.URL("/admin/maintenance?enable=true&reason=latest&by=ops"), nil), true)
	want := c.verbose(leader)

	start := time.Now()
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	// The first request races the listener; connection refused is retried
	// at once. Every other answer must be right the first time.
	var readAt, writeAt time.Duration
	attempts := 0
	for {
		attempts++
		r, err := c.get(f.URL("/admin/maintenance?verbose=true"), 15*time.Second)
		if err != nil {
			if time.Since(start) > 15*time.Second {
				t.Fatalf("no answer from %s within 15 s: %v", f.ID, err)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if r.Code != http.StatusOK {
			t.Fatalf("consistent read through the restarted %s: %s", f.ID, r)
		}
		readAt = time.Since(start)
		if got := strings.TrimSpace(string(r.Body)); !strings.Contains(got, `"reason":"latest"`) || !strings.Contains(got, fmt.Sprintf(`"epoch":%d,`, want.Epoch)) {
			t.Fatalf("the restarted %s answered a stale state: %s, want epoch %d reason latest", f.ID, got, want.Epoch)
		}
		break
	}
	wantEnabled(t, "write through the restarted node", c.must(http.MethodPost, f.URL("/admin/maintenance?enable=false&reason=via-restarted"), nil), false)
	writeAt = time.Since(start)
	// For the record: how far its own state lagged when it was serving.
	if st, err := c.Status(f); err == nil {
		t.Logf("%s when serving: own applied index %d, commit index %d, leader %q", f.ID, st.AppliedIndex, st.CommitIndex, st.LeaderID)
	}
	t.Logf("restarted %s after %s down: consistent read after %s (%d attempts), forwarded write after %s",
		f.ID, time.Since(downAt)-time.Since(start), readAt.Round(time.Millisecond), attempts, writeAt.Round(time.Millisecond))
	if writeAt > bound {
		t.Fatalf("the restarted node needed %s to serve a consistent read and a write (bound %s)", writeAt, bound)
	}
	c.everywhereEnabled(false, nodes...)
	c.Eventually(f.ID+" ready", func() error {
		r, err := c.get(f.URL("/admin/ready"), 5*time.Second)
		if err != nil {
			return err
		}
		if r.Code != http.StatusOK {
			return fmt.Errorf("%s", r)
		}
		return nil
	})
	t.Logf("%s answered /admin/ready 200 after %s", f.ID, time.Since(start).Round(time.Millisecond))
}

// TestRollingRestart restarts the three nodes one by one (SIGTERM, which
// must exit 0 within a few seconds, a leader handing leadership over
// first; start again; wait for /admin/ready) while a reader keeps reading
// the flag with consistent reads through every node.
//
// Failures allowed: none. A node is taken out of the reader's rotation
// (with no read in flight) before its SIGTERM and put back once it answers
// /admin/ready with 200, so no read is sent to a node that is down. Every
// other read meets at worst a leadership hand-over: a read that finds no
// leader waits for one up to --leader-wait (5 s); one forwarded to a
// leader that is stepping down is answered not_leader and retried on the
// new one; one that cannot reach the leader is retried. A hand-over takes
// milliseconds, far below 5 s, so a brief 503 no_leader/not_leader would
// already mean a bug. Every read that succeeds must return the flag's one
// value, which differs from the default (false), so a node answering from
// an empty or lagging state would show.
func TestRollingRestart(t *testing.T) {
	localcluster.SkipIfShort(t)
	c := startCluster(t)
	nodes := c.Nodes()
	leader := c.waitReady(nodes...)
	wantEnabled(t, "enable", c.must(http.MethodPost, leader.URL("/admin/maintenance?enable=true&reason=rolling-restart"), nil), true)
	want := c.verbose(leader)

	rd := startReader(c, true, nodes...)
	defer func() {
		select {
		case <-rd.stop:
		default:
			rd.halt()
		}
	}()
	rd.waitReads("reads before the restarts", 10, nodes...)
	for _, n := range nodes {
		wasLeader := c.waitReady(nodes...).ID == n.ID
		rd.setUp(n.ID, false)
		logStart := logSize(n)
		took := stopTimed(t, n)
		if wasLeader {
			// SIGTERM on a leader hands leadership over before exiting.
			if l := logSince(n, logStart); !strings.Contains(l, "transferring leadership before shutdown") ||
				strings.Contains(l, "leadership transfer failed") {
				t.Fatalf("leader %s did not hand over leadership on SIGTERM; its log:\n%s", n.ID, l)
			}
		}
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		restarted := time.Now()
		c.Eventually(n.ID+" ready after restart", func() error {
			r, err := c.get(n.URL("/admin/ready"), 5*time.Second)
			if err != nil {
				return err
			}
			if r.Code != http.StatusOK {
				return fmt.Errorf("%s", r)
			}
			return nil
		})
		t.Logf("%s (leader: %t) exited 0 in %s, ready %s after start", n.ID, wasLeader,
			took.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
		rd.setUp(n.ID, true)
		rd.waitReads("reads through every node after restarting "+n.ID, 10, nodes...)
	}
	rd.halt()
	t.Logf("reads: %v ok, %d failed, slowest %s", rd.ok, len(rd.failed), rd.maxLatency)
	if len(rd.wrong) > 0 {
		t.Fatalf("reads answered a wrong value: %q", rd.wrong)
	}
	if len(rd.failed) > 0 {
		t.Fatalf("%d reads failed during the rolling restart: %q", len(rd.failed), rd.failed)
	}
	for _, n := range nodes {
		if got := c.verbose(n); !sameMaintenance(got, want) {
			t.Fatalf("%s after the rolling restart: %+v, want %+v", n.ID, got, want)
		}
	}
}

func logSize(n *localcluster.Node) int64 {
	st, err := os.Stat(n.LogPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// logSince returns what n logged after offset.
func logSince(n *localcluster.Node, offset int64) string {
	b, _ := os.ReadFile(n.LogPath)
	if int64(len(b)) < offset {
		return string(b)
	}
	return string(b[offset:])
}
