package main

// Helpers for the end-to-end tests: they start real metasrv processes
// (built once in TestMain) on random loopback addresses through
// deploy/localcluster, and talk to them over HTTP like curl would.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
	"github.com/metasrv/metasrv/server/wire"
)

// metasrvBin is the binary under test, built once by TestMain.
var metasrvBin string

// TestMain builds the metasrv binary once, under -short too (the API tests
// run there). METASRV_E2E_BIN runs the tests against a prebuilt binary
// instead, e.g. one built with -race:
//
//	go build -race -o /tmp/metasrv-race ./cmd/metasrv
//	METASRV_E2E_BIN=/tmp/metasrv-race go test ./cmd/metasrv
func TestMain(m *testing.M) {
	if bin := os.Getenv("METASRV_E2E_BIN"); bin != "" {
		metasrvBin = bin
		os.Exit(m.Run())
	}
	localcluster.RunTestsEvenShort(m, []string{"./cmd/metasrv"}, &metasrvBin)
}

// Generous bounds: the tests run on a busy 2-core machine.
const (
	waitLong    = 30 * time.Second // leader election, convergence, catch-up
	stopTimeout = 5 * time.Second  // SIGTERM → exit 0 ("within a few seconds")
	logTail     = 12 << 10         // bytes of each node's log printed on failure
)

// tcluster is a localcluster.Cluster bound to one test.
type tcluster struct {
	*localcluster.TestCluster
}

// startCluster starts three metasrv processes with extra flags args and
// waits until they agree on a leader and every node is ready. Every process
// is killed when the test ends, and the logs are printed if it failed.
func startCluster(t *testing.T, args ...string) *tcluster {
	t.Helper()
	tc := &tcluster{localcluster.StartTest(t, localcluster.TestOptions{
		Options: localcluster.Options{Bin: metasrvBin, Args: args},
		LogTail: logTail, Wait: waitLong, Timeout: 20 * time.Second})}
	tc.waitReady(tc.Nodes()...)
	return tc
}

// waitReady waits until the given nodes agree on a leader, each answers
// /admin/ready with 200, and each knows the leader's RPC address. It
// returns the leader.
func (c *tcluster) waitReady(nodes ...*localcluster.Node) *localcluster.Node {
	c.T.Helper()
	leader, err := c.WaitLeader(waitLong, nodes...)
	if err != nil {
		c.T.Fatalf("wait leader: %v", err)
	}
	err = localcluster.Eventually(waitLong, func() error {
		leader, err = c.WaitLeader(5*time.Second, nodes...)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			r, err := c.get(n.URL("/admin/ready"), 3*time.Second)
			if err != nil {
				return fmt.Errorf("%s ready: %v", n.ID, err)
			}
			if r.Code != http.StatusOK {
				return fmt.Errorf("%s ready: %d %s", n.ID, r.Code, r.Body)
			}
			r, err = c.get(n.URL("/admin/leader"), 3*time.Second)
			if err != nil {
				return fmt.Errorf("%s leader: %v", n.ID, err)
			}
			if got := strings.TrimSpace(string(r.Body)); r.Code != http.StatusOK || got != leader.RPCAddr {
				return fmt.Errorf("%s /admin/leader: %d %q, want %q", n.ID, r.Code, got, leader.RPCAddr)
			}
		}
		return nil
	})
	if err != nil {
		c.T.Fatalf("cluster not ready: %v", err)
	}
	return leader
}

// errorBodyOf decodes the JSON error every 4xx/5xx answer carries.
func errorBodyOf(r localcluster.Reply) (wire.Error, error) {
	var e wire.Error
	if err := json.Unmarshal(r.Body, &e); err != nil {
		return e, fmt.Errorf("error body %q is not JSON: %v", r.Body, err)
	}
	if e.Error == "" {
		return e, fmt.Errorf("error body %q has no \"error\" field", r.Body)
	}
	return e, nil
}

func (c *tcluster) get(url string, timeout time.Duration) (localcluster.Reply, error) {
	return c.Request(timeout, http.MethodGet, url, nil)
}

// must sends a request (bounded by the client's 20 s) and fails the test
// on a transport error.
func (c *tcluster) must(method, url string, body []byte, hdrs ...string) localcluster.Reply {
	c.T.Helper()
	r, err := c.Request(0, method, url, body, hdrs...)
	if err != nil {
		c.T.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// mustOK sends a request and fails the test unless it answers 200.
func (c *tcluster) mustOK(method, url string, body []byte, hdrs ...string) localcluster.Reply {
	c.T.Helper()
	r := c.must(method, url, body, hdrs...)
	if r.Code != http.StatusOK {
		c.T.Fatalf("%s %s: %s", method, url, r)
	}
	return r
}

// wantEnabled checks a GreptimeDB-compatible answer byte for byte (a
// trailing newline is fine) and its content type.
func wantEnabled(t testing.TB, what string, r localcluster.Reply, enabled bool) {
	t.Helper()
	want := fmt.Sprintf(`{"enabled":%t}`, enabled)
	if r.Code != http.StatusOK || strings.TrimSuffix(string(r.Body), "\n") != want {
		t.Fatalf("%s: got %s, want 200 %s", what, r, want)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q, want application/json", what, ct)
	}
}

// verbose reads the maintenance state through node n (consistent read
// unless extra says ?stale).
func (c *tcluster) verbose(n *localcluster.Node, extra ...string) wire.Maintenance {
	c.T.Helper()
	q := "/admin/maintenance?verbose=true"
	for _, e := range extra {
		q += "&" + e
	}
	r := c.mustOK(http.MethodGet, n.URL(q), nil)
	var m wire.Maintenance
	if err := json.Unmarshal(r.Body, &m); err != nil {
		c.T.Fatalf("%s verbose: %v: %s", n.ID, err, r.Body)
	}
	return m
}

// events reads the event log through node n (consistent read).
func (c *tcluster) events(n *localcluster.Node, query string) wire.EventsPage {
	c.T.Helper()
	r := c.mustOK(http.MethodGet, n.URL("/admin/events"+query), nil)
	var p wire.EventsPage
	if err := json.Unmarshal(r.Body, &p); err != nil {
		c.T.Fatalf("%s events: %v: %s", n.ID, err, r.Body)
	}
	return p
}

// clusterView reads GET /admin/cluster: node n's view.
func (c *tcluster) clusterView(n *localcluster.Node) (wire.Cluster, error) {
	var v wire.Cluster
	r, err := c.get(n.URL("/admin/cluster"), 5*time.Second)
	if err != nil {
		return v, err
	}
	if r.Code != http.StatusOK {
		return v, fmt.Errorf("%s /admin/cluster: %s", n.ID, r)
	}
	return v, json.Unmarshal(r.Body, &v)
}

// everywhereEnabled waits until every given node answers the flag with a
// consistent read and (eventually) with a stale read.
func (c *tcluster) everywhereEnabled(enabled bool, nodes ...*localcluster.Node) {
	c.T.Helper()
	for _, n := range nodes {
		// Consistent reads are linearizable: right after an acknowledged
		// write, every node must already answer the new value.
		wantEnabled(c.T, n.ID+" consistent GET", c.must(http.MethodGet, n.URL("/admin/maintenance"), nil), enabled)
	}
	want := fmt.Sprintf(`{"enabled":%t}`, enabled)
	for _, n := range nodes {
		c.Eventually(n.ID+" stale read", func() error {
			r, err := c.get(n.URL("/admin/maintenance?stale"), 5*time.Second)
			if err != nil {
				return err
			}
			if got := strings.TrimSpace(string(r.Body)); r.Code != http.StatusOK || got != want {
				return fmt.Errorf("%s ?stale: %s, want %s", n.ID, r, want)
			}
			return nil
		})
	}
}

// stopTimed sends SIGTERM and checks the node exits 0 within stopTimeout.
func stopTimed(t *testing.T, n *localcluster.Node) time.Duration {
	t.Helper()
	start := time.Now()
	if err := n.Stop(2 * stopTimeout); err != nil {
		t.Fatalf("SIGTERM %s: %v", n.ID, err)
	}
	took := time.Since(start)
	if took > stopTimeout {
		t.Fatalf("SIGTERM %s: exited 0 but took %s (want < %s)", n.ID, took, stopTimeout)
	}
	return took
}
