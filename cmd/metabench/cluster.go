package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
	"github.com/metasrv/metasrv/server"
)

// timeoutSet is one choice of raft timeouts. A set without Args runs the
// binary with its own defaults.
type timeoutSet struct {
	Name                string
	Heartbeat, Election time.Duration
	Lease               time.Duration
	Args                []string
}

func (t timeoutSet) String() string {
	return fmt.Sprintf("%s (%s/%s/%s)", t.Name, t.Heartbeat, t.Election, t.Lease)
}

// parseTimeoutSets parses "default,hashicorp=1s/1s/500ms": each item is
// either "default" (the binary's own defaults, no flags) or
// NAME=HEARTBEAT/ELECTION/LEASE.
func parseTimeoutSets(s string) ([]timeoutSet, error) {
	var out []timeoutSet
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if item == "default" {
			out = append(out, timeoutSet{Name: "default", Heartbeat: server.DefaultHeartbeatTimeout,
				Election: server.DefaultElectionTimeout, Lease: server.DefaultLeaderLeaseTimeout})
			continue
		}
		name, spec, ok := strings.Cut(item, "=")
		parts := strings.Split(spec, "/")
		if !ok || name == "" || len(parts) != 3 {
			return nil, fmt.Errorf("timeout set %q: want default or NAME=HEARTBEAT/ELECTION/LEASE", item)
		}
		var ds [3]time.Duration
		for i, p := range parts {
			d, err := time.ParseDuration(p)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("timeout set %q: bad duration %q", item, p)
			}
			ds[i] = d
		}
		out = append(out, timeoutSet{Name: name, Heartbeat: ds[0], Election: ds[1], Lease: ds[2],
			Args: []string{"--raft-heartbeat-timeout", ds[0].String(), "--raft-election-timeout", ds[1].String(),
				"--raft-leader-lease-timeout", ds[2].String()}})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no timeout set in %q", s)
	}
	return out, nil
}

// env is what every section needs: the binary, a scratch directory and
// the clusters started so far (closed on exit, even on Ctrl-C).
type env struct {
	bin    string
	dir    string
	client *http.Client
	logf   func(format string, args ...any)

	etcdBin string // set when a section needs etcd
	dnBin   string // datanode binary, next to metasrv

	mu       sync.Mutex
	seq      int
	clusters []*localcluster.Cluster
	etcds    []*etcdCluster
	// clients are the HTTP clients of clusters that need their own (TLS
	// clusters: the operator certificate and the cluster's CA).
	clients map[*localcluster.Cluster]*http.Client
}

// startCluster starts a 3-node cluster and waits until every node is
// ready (knows the leader and has applied its commit index) and a write
// through every node is acknowledged.
func (e *env) startCluster(name string, args []string) (*localcluster.Cluster, error) {
	return e.startClusterWith(name, localcluster.Options{Args: args}, nil)
}

// startClusterWith is startCluster with more options (opts.Bin and
// opts.Dir are filled in) and, when client is not nil, the HTTP client the
// benchmark speaks to this cluster with (made from the cluster's own
// Client by newClusterClient).
func (e *env) startClusterWith(name string, opts localcluster.Options,
	client func(*localcluster.Cluster) *http.Client) (*localcluster.Cluster, error) {
	e.mu.Lock()
	e.seq++
	dir := filepath.Join(e.dir, fmt.Sprintf("%02d-%s", e.seq, name))
	e.mu.Unlock()
	opts.Bin, opts.Dir = e.bin, dir
	c, err := localcluster.Start(opts)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.clusters = append(e.clusters, c)
	if client != nil {
		if e.clients == nil {
			e.clients = map[*localcluster.Cluster]*http.Client{}
		}
		e.clients[c] = client(c)
	}
	e.mu.Unlock()
	if err := e.waitHealthy(c, 30*time.Second); err != nil {
		c.Close()
		return nil, fmt.Errorf("cluster %s: %w (logs in %s)", name, err, dir)
	}
	return c, nil
}

// waitHealthy waits for one agreed leader, every running node ready, and
// an acknowledged write through every running node.
func (e *env) waitHealthy(c *localcluster.Cluster, timeout time.Duration) error {
	client := e.clientOf(c)
	deadline := time.Now().Add(timeout)
	if _, err := c.WaitLeader(timeout); err != nil {
		return err
	}
	for _, n := range c.Running() {
		err := localcluster.Eventually(time.Until(deadline), func() error {
			if err := ready(client, n); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err := postToggle(ctx, client, n.URL(""), false)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s not healthy: %w", n.ID, err)
		}
	}
	return nil
}

// clientOf is the HTTP client for cluster c: its own if it has one (TLS),
// else the shared one.
func (e *env) clientOf(c *localcluster.Cluster) *http.Client {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cl := e.clients[c]; cl != nil {
		return cl
	}
	return e.client
}

func ready(client *http.Client, n *localcluster.Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL("/admin/ready"), nil)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: /admin/ready %d", n.ID, resp.StatusCode)
	}
	return nil
}

// closeAll kills every cluster's processes.
func (e *env) closeAll() {
	e.mu.Lock()
	cs, es := e.clusters, e.etcds
	e.clusters, e.etcds, e.clients = nil, nil, nil
	e.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
	for _, c := range es {
		c.Close()
	}
}

// leaderAndFollower returns the current leader and one follower.
func leaderAndFollower(c *localcluster.Cluster) (leader, follower *localcluster.Node, err error) {
	leader, err = c.WaitLeader(10 * time.Second)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range c.Running() {
		if n != leader {
			return leader, n, nil
		}
	}
	return nil, nil, fmt.Errorf("no follower running")
}

// leaderChanges reads metasrv_raft_leader_changes_total from a node.
func leaderChanges(ctx context.Context, client *http.Client, n *localcluster.Node) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL("/metrics"), nil)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return 0, err
	}
	return metricValue(buf.Bytes(), "metasrv_raft_leader_changes_total")
}

// metricValue finds an unlabelled sample in Prometheus text format.
func metricValue(text []byte, name string) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || !strings.HasPrefix(rest, " ") {
			continue
		}
		fields := strings.Fields(rest)
		return strconv.ParseFloat(fields[0], 64)
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// binaryVersion asks the binary for its version line.
func binaryVersion(bin string) string {
	out, err := runCmd(bin, "--version")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(out)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
