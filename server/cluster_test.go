package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// In-process clusters: real raft over loopback TCP, real HTTP, several
// nodes in one test process. Node 1 bootstraps alone; the others join
// through it, as an operator's --join would.

// waitLong bounds every wait on a condition (a busy 2-core machine running
// the race detector).
const waitLong = 20 * time.Second

type tnode struct {
	id   string
	node *Node
	cfg  Config
	url  string
	done chan error
}

type tcluster struct {
	t      *testing.T
	client *http.Client // nil: http.DefaultClient
	nodes  []*tnode
	mu     sync.Mutex
	fatal  []error
}

// testConfig is a node's configuration in an in-process cluster; mutate
// adjusts it (timeouts, tokens, leader workers).
func testConfig(t *testing.T, id string, mutate func(*Config)) Config {
	cfg := Config{
		NodeID: id, RPCAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", DataDir: t.TempDir(),
		LeaderWait: 5 * time.Second, ApplyTimeout: 5 * time.Second,
		HeartbeatInterval: 500 * time.Millisecond, FailoverTick: 100 * time.Millisecond,
		Logger: hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Warn, Output: io.Discard}),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	return cfg
}

// startCluster starts n nodes and waits until every one is ready.
func startCluster(t *testing.T, n int, mutate func(*Config)) *tcluster {
	t.Helper()
	return startClusterWith(t, n, nil, mutate)
}

// startClusterWith is startCluster whose requests use client (HTTPS).
func startClusterWith(t *testing.T, n int, client *http.Client, mutate func(*Config)) *tcluster {
	t.Helper()
	if testing.Short() && n > 3 {
		t.Skip("larger clusters only without -short")
	}
	c := &tcluster{t: t, client: client}
	// The first TempDir registers the removal of every data dir; made
	// before c.close is registered, it runs after the nodes stopped
	// (cleanups run last-in first-out).
	_ = t.TempDir()
	t.Cleanup(c.close)
	first := c.start(testConfig(t, "n1", mutate))
	for i := 2; i <= n; i++ {
		cfg := testConfig(t, fmt.Sprintf("n%d", i), mutate)
		cfg.Join = []string{first.cfg.AdvertiseRPCAddr}
		c.start(cfg)
	}
	for _, tn := range c.nodes {
		c.waitReady(tn)
	}
	return c
}

func (c *tcluster) start(cfg Config) *tnode {
	c.t.Helper()
	cfg.OnFatal = func(err error) {
		c.mu.Lock()
		c.fatal = append(c.fatal, fmt.Errorf("%s: %w", cfg.NodeID, err))
		c.mu.Unlock()
	}
	node, err := New(cfg)
	if err != nil {
		c.t.Fatalf("start %s: %v", cfg.NodeID, err)
	}
	scheme := "http://"
	if cfg.ServerTLS != nil {
		scheme = "https://"
	}
	tn := &tnode{id: cfg.NodeID, node: node, cfg: node.cfg, url: scheme + node.Addr(), done: make(chan error, 1)}
	go func() { tn.done <- node.Serve() }()
	c.nodes = append(c.nodes, tn)
	return tn
}

func (c *tcluster) close() {
	for _, tn := range c.nodes {
		c.stop(tn)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, err := range c.fatal {
		c.t.Errorf("fatal: %v", err)
	}
}

// stop closes one node gracefully (idempotent).
func (c *tcluster) stop(tn *tnode) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := tn.node.Close(ctx); err != nil {
		c.t.Errorf("close %s: %v", tn.id, err)
	}
}

// eventually retries f until it returns nil or waitLong passes.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, waitLong, err)
}

func (c *tcluster) waitReady(tn *tnode) {
	c.t.Helper()
	eventually(c.t, tn.id+" ready", func() error {
		r := c.do(tn, http.MethodGet, "/admin/ready", nil)
		if r.status != http.StatusOK {
			return fmt.Errorf("%d %s", r.status, r.body)
		}
		return nil
	})
}

// leader waits for a node that is the ready leader and returns it.
func (c *tcluster) leader() *tnode {
	c.t.Helper()
	var found *tnode
	eventually(c.t, "a ready leader", func() error {
		for _, tn := range c.nodes {
			if tn.node.raft.IsReadyLeader() {
				found = tn
				return nil
			}
		}
		return fmt.Errorf("none of %d nodes leads", len(c.nodes))
	})
	return found
}

// follower returns a node other than the current leader.
func (c *tcluster) follower() *tnode {
	c.t.Helper()
	l := c.leader()
	for _, tn := range c.nodes {
		if tn != l {
			return tn
		}
	}
	c.t.Fatal("no follower")
	return nil
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body)) }

// code is the error code of a JSON error body.
func (r reply) code() string {
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Code
}

func (c *tcluster) do(tn *tnode, method, path string, body any, hdr ...string) reply {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, tn.url+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json") // hdr may override
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := c.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return reply{status: 0, body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// mustJSON sends a request, wants want, and decodes the answer into v.
func (c *tcluster) mustJSON(tn *tnode, method, path string, body any, want int, v any, hdr ...string) reply {
	c.t.Helper()
	r := c.do(tn, method, path, body, hdr...)
	if r.status != want {
		c.t.Fatalf("%s %s on %s: %s, want %d", method, path, tn.id, r, want)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, r.body, err)
		}
	}
	return r
}

func TestInProcessClusterMaintenanceThroughEveryNode(t *testing.T) {
	c := startCluster(t, 3, nil)
	for i, tn := range c.nodes {
		enable := i%2 == 0
		var got struct {
			Enabled bool `json:"enabled"`
		}
		c.mustJSON(tn, http.MethodPost, fmt.Sprintf("/admin/maintenance?enable=%t", enable), nil, http.StatusOK, &got)
		if got.Enabled != enable {
			t.Fatalf("set through %s: %+v", tn.id, got)
		}
		for _, reader := range c.nodes {
			c.mustJSON(reader, http.MethodGet, "/admin/maintenance", nil, http.StatusOK, &got)
			if got.Enabled != enable {
				t.Fatalf("read through %s after a write through %s: %+v, want %t", reader.id, tn.id, got, enable)
			}
		}
	}
}
