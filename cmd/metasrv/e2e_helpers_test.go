package main

// Helpers for the end-to-end tests: they start real metasrv processes
// (built once in TestMain) on random loopback addresses through
// deploy/localcluster, and talk to them over HTTP like curl would.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
)

// metasrvBin is the binary under test, built once by TestMain.
var metasrvBin string

// TestMain builds the metasrv binary once. METASRV_E2E_BIN runs the tests
// against a prebuilt binary instead, e.g. one built with -race:
//
//	go build -race -o /tmp/metasrv-race ./cmd/metasrv
//	METASRV_E2E_BIN=/tmp/metasrv-race go test ./cmd/metasrv
func TestMain(m *testing.M) {
	flag.Parse()
	if bin := os.Getenv("METASRV_E2E_BIN"); bin != "" {
		metasrvBin = bin
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "metasrv-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins, err := localcluster.Build(dir, "./cmd/metasrv")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	metasrvBin = bins[0]
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Generous bounds: the tests run on a busy 2-core machine.
const (
	waitLong    = 30 * time.Second // leader election, convergence, catch-up
	stopTimeout = 5 * time.Second  // SIGTERM → exit 0 ("within a few seconds")
	logTail     = 12 << 10         // bytes of each node's log printed on failure
)

// skipIfShort skips a slow (fault-injecting) test under -short.
func skipIfShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("slow end-to-end test; skipped with -short")
	}
}

// tcluster is a localcluster.Cluster bound to one test.
type tcluster struct {
	*localcluster.Cluster
	t      *testing.T
	client *http.Client
}

// startCluster starts three metasrv processes with extra flags args and
// waits until they agree on a leader and every node is ready. Every process
// is killed when the test ends, and the logs are printed if it failed.
func startCluster(t *testing.T, args ...string) *tcluster {
	t.Helper()
	c, err := localcluster.Start(localcluster.Options{Bin: metasrvBin, Dir: t.TempDir(), Args: args})
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	tc := &tcluster{Cluster: c, t: t, client: &http.Client{Timeout: 20 * time.Second}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node logs (last %d bytes each):\n%s", logTail, c.Logs(logTail))
		}
		c.Close()
	})
	tc.waitReady(c.Nodes()...)
	return tc
}

// waitReady waits until the given nodes agree on a leader, each answers
// /admin/ready with 200, and each knows the leader's RPC address. It
// returns the leader.
func (c *tcluster) waitReady(nodes ...*localcluster.Node) *localcluster.Node {
	c.t.Helper()
	leader, err := c.WaitLeader(waitLong, nodes...)
	if err != nil {
		c.t.Fatalf("wait leader: %v", err)
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
			if r.code != http.StatusOK {
				return fmt.Errorf("%s ready: %d %s", n.ID, r.code, r.body)
			}
			r, err = c.get(n.URL("/admin/leader"), 3*time.Second)
			if err != nil {
				return fmt.Errorf("%s leader: %v", n.ID, err)
			}
			if got := strings.TrimSpace(string(r.body)); r.code != http.StatusOK || got != leader.RPCAddr {
				return fmt.Errorf("%s /admin/leader: %d %q, want %q", n.ID, r.code, got, leader.RPCAddr)
			}
		}
		return nil
	})
	if err != nil {
		c.t.Fatalf("cluster not ready: %v", err)
	}
	return leader
}

// followers returns the given nodes except the leader.
func followers(leader *localcluster.Node, nodes []*localcluster.Node) []*localcluster.Node {
	var out []*localcluster.Node
	for _, n := range nodes {
		if n.ID != leader.ID {
			out = append(out, n)
		}
	}
	return out
}

// reply is one HTTP answer.
type reply struct {
	code int
	hdr  http.Header
	body []byte
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.code, bytes.TrimSpace(r.body)) }

// errorBody is the JSON error every 4xx/5xx answer carries.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func (r reply) errorBody() (errorBody, error) {
	var e errorBody
	if err := json.Unmarshal(r.body, &e); err != nil {
		return e, fmt.Errorf("error body %q is not JSON: %v", r.body, err)
	}
	if e.Error == "" {
		return e, fmt.Errorf("error body %q has no \"error\" field", r.body)
	}
	return e, nil
}

// do sends one request; timeout bounds it (0: the client's 20 s).
func (c *tcluster) do(method, url string, body []byte, timeout time.Duration, hdrs ...string) (reply, error) {
	if timeout == 0 {
		timeout = c.client.Timeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	for i := 0; i+1 < len(hdrs); i += 2 {
		req.Header.Set(hdrs[i], hdrs[i+1])
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, hdr: resp.Header, body: b}, err
}

func (c *tcluster) get(url string, timeout time.Duration) (reply, error) {
	return c.do(http.MethodGet, url, nil, timeout)
}

// must sends a request and fails the test on a transport error.
func (c *tcluster) must(method, url string, body []byte, hdrs ...string) reply {
	c.t.Helper()
	r, err := c.do(method, url, body, 0, hdrs...)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// mustOK sends a request and fails the test unless it answers 200.
func (c *tcluster) mustOK(method, url string, body []byte, hdrs ...string) reply {
	c.t.Helper()
	r := c.must(method, url, body, hdrs...)
	if r.code != http.StatusOK {
		c.t.Fatalf("%s %s: %s", method, url, r)
	}
	return r
}

// wantEnabled checks a GreptimeDB-compatible answer byte for byte (a
// trailing newline is fine) and its content type.
func wantEnabled(t *testing.T, what string, r reply, enabled bool) {
	t.Helper()
	want := fmt.Sprintf(`{"enabled":%t}`, enabled)
	if r.code != http.StatusOK || strings.TrimSuffix(string(r.body), "\n") != want {
		t.Fatalf("%s: got %s, want 200 %s", what, r, want)
	}
	if ct := r.hdr.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q, want application/json", what, ct)
	}
}

// maintenance is the answer of GET /admin/maintenance?verbose=true.
type maintenance struct {
	Enabled   bool       `json:"enabled"`
	Epoch     uint64     `json:"epoch"`
	Reason    string     `json:"reason"`
	By        string     `json:"by"`
	Since     *time.Time `json:"since"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// verbose reads the maintenance state through node n (consistent read
// unless extra says ?stale).
func (c *tcluster) verbose(n *localcluster.Node, extra ...string) maintenance {
	c.t.Helper()
	q := "/admin/maintenance?verbose=true"
	for _, e := range extra {
		q += "&" + e
	}
	r := c.mustOK(http.MethodGet, n.URL(q), nil)
	var m maintenance
	if err := json.Unmarshal(r.body, &m); err != nil {
		c.t.Fatalf("%s verbose: %v: %s", n.ID, err, r.body)
	}
	return m
}

// event is one entry of GET /admin/events.
type event struct {
	Index  uint64            `json:"index"`
	Time   time.Time         `json:"time"`
	Type   string            `json:"type"`
	By     string            `json:"by"`
	Reason string            `json:"reason"`
	Epoch  uint64            `json:"epoch"`
	Fields map[string]string `json:"fields"`
}

type eventsPage struct {
	FirstIndex uint64  `json:"first_index"`
	Events     []event `json:"events"`
}

// events reads the event log through node n (consistent read).
func (c *tcluster) events(n *localcluster.Node, query string) eventsPage {
	c.t.Helper()
	r := c.mustOK(http.MethodGet, n.URL("/admin/events"+query), nil)
	var p eventsPage
	if err := json.Unmarshal(r.body, &p); err != nil {
		c.t.Fatalf("%s events: %v: %s", n.ID, err, r.body)
	}
	return p
}

// clusterView is the answer of GET /admin/cluster.
type clusterView struct {
	ClusterID     string `json:"cluster_id"`
	NodeID        string `json:"node_id"`
	Version       string `json:"version"`
	LeaderID      string `json:"leader_id"`
	LeaderRPCAddr string `json:"leader_rpc_addr"`
	State         string `json:"state"`
	Term          uint64 `json:"term"`
	CommitIndex   uint64 `json:"commit_index"`
	AppliedIndex  uint64 `json:"applied_index"`
	Members       []struct {
		ID        string `json:"id"`
		RaftAddr  string `json:"raft_addr"`
		RPCAddr   string `json:"rpc_addr"`
		Suffrage  string `json:"suffrage"`
		Version   string `json:"version"`
		Leader    bool   `json:"leader"`
		Reachable bool   `json:"reachable"`
	} `json:"members"`
}

func (c *tcluster) clusterView(n *localcluster.Node) (clusterView, error) {
	var v clusterView
	r, err := c.get(n.URL("/admin/cluster"), 5*time.Second)
	if err != nil {
		return v, err
	}
	if r.code != http.StatusOK {
		return v, fmt.Errorf("%s /admin/cluster: %s", n.ID, r)
	}
	return v, json.Unmarshal(r.body, &v)
}

// eventually waits for cond on observable state and fails the test on
// timeout.
func (c *tcluster) eventually(what string, cond func() error) {
	c.t.Helper()
	if err := localcluster.Eventually(waitLong, cond); err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
}

// everywhereEnabled waits until every given node answers the flag with a
// consistent read and (eventually) with a stale read.
func (c *tcluster) everywhereEnabled(enabled bool, nodes ...*localcluster.Node) {
	c.t.Helper()
	for _, n := range nodes {
		// Consistent reads are linearizable: right after an acknowledged
		// write, every node must already answer the new value.
		wantEnabled(c.t, n.ID+" consistent GET", c.must(http.MethodGet, n.URL("/admin/maintenance"), nil), enabled)
	}
	want := fmt.Sprintf(`{"enabled":%t}`, enabled)
	for _, n := range nodes {
		c.eventually(n.ID+" stale read", func() error {
			r, err := c.get(n.URL("/admin/maintenance?stale"), 5*time.Second)
			if err != nil {
				return err
			}
			if got := strings.TrimSpace(string(r.body)); r.code != http.StatusOK || got != want {
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
