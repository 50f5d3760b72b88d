package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/metasrv/metasrv/server/wire"
)

// node is one container of the cluster and its published port.
type node struct {
	Service string // compose service: metasrv1, datanode2, ...
	ID      string // metasrv node id (n1) or datanode id (2)
	Port    int    // published on 127.0.0.1
}

// Cluster is the chaos suite's view of the Compose cluster: its nodes, which
// of them are meant to be running, and HTTP access through published ports
// (HTTPS with the operator's client certificate once useTLS is called).
type Cluster struct {
	compose   *Compose
	metas     []node
	datanodes []node
	logf      func(format string, args ...any)

	// client talks to published ports. No keep-alive: a pooled connection
	// to a node that was killed meanwhile would turn a write that was never
	// sent into one with an unknown outcome.
	client *http.Client

	mu   sync.Mutex
	down map[string]string // service -> why it is not serving (killed, stopped, paused, partitioned)
	tls  *tls.Config       // the operator's certificate and the cluster's CA (useTLS)
}

func newCluster(c *Compose, metas, datanodes []node, logf func(string, ...any)) *Cluster {
	tr := &http.Transport{
		DialContext:       (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		DisableKeepAlives: true,
	}
	return &Cluster{compose: c, metas: metas, datanodes: datanodes, logf: logf,
		client: &http.Client{Transport: tr}, down: map[string]string{}}
}

func (cl *Cluster) setDown(service, why string) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if why == "" {
		delete(cl.down, service)
	} else {
		cl.down[service] = why
	}
}

func (cl *Cluster) isDown(service string) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.down[service] != ""
}

// upMetas returns the metasrv nodes meant to be serving now.
func (cl *Cluster) upMetas() []node {
	var out []node
	for _, n := range cl.metas {
		if !cl.isDown(n.Service) {
			out = append(out, n)
		}
	}
	return out
}

func (cl *Cluster) upDatanodes() []node {
	var out []node
	for _, n := range cl.datanodes {
		if !cl.isDown(n.Service) {
			out = append(out, n)
		}
	}
	return out
}

func (cl *Cluster) metaByID(id string) (node, bool) {
	for _, n := range cl.metas {
		if n.ID == id {
			return n, true
		}
	}
	return node{}, false
}

// httpResult is one HTTP exchange.
type httpResult struct {
	Status int
	Body   []byte
	Err    error
}

func (h httpResult) ok() bool { return h.Err == nil && h.Status/100 == 2 }

func (h httpResult) String() string {
	if h.Err != nil {
		return h.Err.Error()
	}
	return fmt.Sprintf("%d %s", h.Status, bytes.TrimSpace(h.Body))
}

// code returns the "code" field of a JSON error body.
func (h httpResult) code() string { return wire.ParseError(h.Body).Code }

// do sends one request to a port on 127.0.0.1, bounded by timeout.
func (cl *Cluster) do(ctx context.Context, client *http.Client, method, host, path string, body []byte, timeout time.Duration) httpResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, cl.scheme()+host+path, rd)
	if err != nil {
		return httpResult{Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return httpResult{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	return httpResult{Status: resp.StatusCode, Body: b, Err: err}
}

func hostPort(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func (cl *Cluster) get(ctx context.Context, n node, path string, timeout time.Duration) httpResult {
	return cl.do(ctx, cl.client, http.MethodGet, hostPort(n.Port), path, nil, timeout)
}

func (cl *Cluster) post(ctx context.Context, n node, path string, body []byte, timeout time.Duration) httpResult {
	return cl.do(ctx, cl.client, http.MethodPost, hostPort(n.Port), path, body, timeout)
}

// getJSON GETs path and decodes a 200 answer into v.
func (cl *Cluster) getJSON(ctx context.Context, n node, path string, v any) error {
	r := cl.get(ctx, n, path, 5*time.Second)
	if !r.ok() {
		return fmt.Errorf("GET %s via %s: %s", path, n.Service, r)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("GET %s via %s: %v", path, n.Service, err)
	}
	return nil
}

// getAny GETs path through the up metasrv nodes in random order until one
// answers 200 (a linearizable read goes through the leader anyway).
func (cl *Cluster) getAny(ctx context.Context, path string, v any) error {
	up := cl.upMetas()
	rand.Shuffle(len(up), func(i, j int) { up[i], up[j] = up[j], up[i] })
	var errs []error
	for _, n := range up {
		err := cl.getJSON(ctx, n, path, v)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return errors.New("no metasrv node is up")
	}
	return errors.Join(errs...)
}

func (cl *Cluster) raft(ctx context.Context, n node) (wire.RaftStatus, error) {
	var st wire.RaftStatus
	err := cl.getJSON(ctx, n, "/admin/raft", &st)
	return st, err
}

func (cl *Cluster) ready(ctx context.Context, n node) bool {
	return cl.get(ctx, n, "/admin/ready", 3*time.Second).ok()
}

// leader returns the up metasrv node that is the ready leader with the
// highest term, if any.
func (cl *Cluster) leader(ctx context.Context) (node, wire.RaftStatus, error) {
	var best node
	var bestSt wire.RaftStatus
	found := false
	for _, n := range cl.upMetas() {
		st, err := cl.raft(ctx, n)
		if err != nil || st.State != "leader" || st.LeaderID != st.NodeID {
			continue
		}
		if !found || st.Term > bestSt.Term {
			best, bestSt, found = n, st, true
		}
	}
	if !found {
		return node{}, wire.RaftStatus{}, errors.New("no up metasrv node says it is the leader")
	}
	if !cl.ready(ctx, best) {
		return node{}, wire.RaftStatus{}, fmt.Errorf("leader %s is not ready", best.ID)
	}
	return best, bestSt, nil
}

// waitLeader waits until a ready leader other than `not` exists among the
// up nodes, and returns it with how long it took.
func (cl *Cluster) waitLeader(ctx context.Context, not string, bound time.Duration) (node, time.Duration, error) {
	start := time.Now()
	var last error
	for time.Since(start) < bound && ctx.Err() == nil {
		n, _, err := cl.leader(ctx)
		if err == nil && n.ID != not {
			return n, time.Since(start), nil
		}
		if err == nil {
			err = fmt.Errorf("%s is still the leader", n.ID)
		}
		last = err
		sleep(ctx, 100*time.Millisecond)
	}
	return node{}, time.Since(start), fmt.Errorf("no new ready leader within %s: %v", bound, last)
}

// waitReady waits until a node answers /admin/ready with 200.
func (cl *Cluster) waitReady(ctx context.Context, n node, bound time.Duration) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < bound && ctx.Err() == nil {
		if cl.ready(ctx, n) {
			return time.Since(start), nil
		}
		sleep(ctx, 100*time.Millisecond)
	}
	r := cl.get(ctx, n, "/admin/ready", 3*time.Second)
	return time.Since(start), fmt.Errorf("%s not ready within %s: %s", n.Service, bound, r)
}

// datanodeViews reads GET /admin/datanodes through an up metasrv node.
func (cl *Cluster) datanodeViews(ctx context.Context) ([]wire.Datanode, error) {
	var out []wire.Datanode
	return out, cl.getAny(ctx, "/admin/datanodes", &out)
}

// regions reads GET /admin/regions through an up metasrv node, sorted by
// region id.
func (cl *Cluster) regions(ctx context.Context) ([]wire.Route, error) {
	var out []wire.Route
	err := cl.getAny(ctx, "/admin/regions", &out)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// routesKey renders routes for comparison (owner and version per region).
func routesKey(rs []wire.Route) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%d@%d/v%d ", r.ID, r.Datanode, r.Version)
	}
	return b.String()
}

// metric reads one unlabelled metric from a node's /metrics.
func (cl *Cluster) metric(ctx context.Context, n node, name string) (float64, error) {
	r := cl.get(ctx, n, "/metrics", 5*time.Second)
	if !r.ok() {
		return 0, fmt.Errorf("GET /metrics via %s: %s", n.Service, r)
	}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found on %s", name, n.Service)
}

// served returns the regions a datanode serves now (GET /regions).
func (cl *Cluster) served(ctx context.Context, n node) ([]uint64, error) {
	var out []uint64
	return out, cl.getJSON(ctx, n, "/regions", &out)
}

// nsClient returns an HTTP client that reaches a container from inside its
// network namespace (for a node cut off from every network).
func (cl *Cluster) nsClient(ctx context.Context, service string) (*http.Client, error) {
	pid, err := cl.compose.Pid(ctx, service)
	if err != nil {
		return nil, err
	}
	cl.mu.Lock()
	tc := cl.tls
	cl.mu.Unlock()
	return &http.Client{Transport: &http.Transport{DialContext: netnsDialer(pid), TLSClientConfig: tc, DisableKeepAlives: true}}, nil
}

func jsonInto(b []byte, v any) error { return json.Unmarshal(b, v) }

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// isDialError reports whether a request failed before anything was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
