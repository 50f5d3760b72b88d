package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
)

// tlsOpts bounds the tls section: pairs of cells (a plaintext cluster,
// then a TLS cluster, each fresh), each with a write cell on the leader, a
// write cell through a follower and a few leader kills.
type tlsOpts struct {
	runs       int // pairs of cells
	conc       int
	duration   time.Duration
	warmup     time.Duration
	maxOps     int64
	reqTimeout time.Duration
	trials     int           // leader kills per cell
	budget     time.Duration // no new pair starts after this much time
	failover   failoverOpts
}

// Modes of a tls cell.
const (
	modePlain = "plaintext"
	modeTLS   = "TLS"
)

// Phases of a cell in which the client's dials are counted: the write
// cells by their target, their warm-ups by warmupOf.
var tlsPhases = []string{"setup", warmupOf(targetLeader), targetLeader, warmupOf(targetFollower), targetFollower, "failover"}

func warmupOf(target string) string { return target + " warm-up" }

// phaseTitle is the column heading of a phase.
func phaseTitle(phase string) string {
	switch phase {
	case targetLeader, targetFollower:
		return phase + " measured"
	}
	return phase
}

// tlsCell is one fresh cluster, plaintext or TLS.
type tlsCell struct {
	run    int
	mode   string
	writes map[string]loadResult // target → cell
	fo     failoverResult
	// dials is how many connections the benchmark's client opened in
	// each phase (TLS cells: each one a full TLS handshake).
	dials map[string]int64
	// member holds the /metrics samples of every node that look like
	// member-to-member connection or handshake counters, summed over the
	// nodes, read after the write cells (before any kill).
	member map[string]float64
	// scraped is how many of the asked nodes answered /metrics.
	scraped, asked int
	// raft is what a TLS handshake to the raft port found (TLS cells).
	raft string
	// steps splits each acknowledged kill (same order as fo.times) by the
	// nodes' logs; ok is false where a log line was not found.
	steps []foSteps
}

// foSteps is one leader kill on the nodes' log timeline: kill → a survivor
// times out on the leader's heartbeat (detect) → a new leader (elect) →
// the write acknowledged (fo.times).
type foSteps struct {
	detect, elect time.Duration
	ok            bool
}

// Log lines (hashicorp raft's, at info and warn) that mark failover steps.
const (
	markDetect = "heartbeat timeout reached, starting election"
	markLeader = "entering leader state"
)

type tlsResult struct {
	opts  tlsOpts
	cells []*tlsCell
	notes []string
}

// dialCounter counts the connections a transport opens.
type dialCounter struct{ n atomic.Int64 }

type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

func (d *dialCounter) wrap(f dialFunc) dialFunc {
	if f == nil {
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := f(ctx, network, addr)
		if err == nil {
			d.n.Add(1)
		}
		return conn, err
	}
}

// newClusterClient is the benchmark's client for cluster c: the cluster's
// own transport (under TLS: its operator certificate and CA, HTTPS), with
// the keep-alive pool of newClient, and every connection it opens counted
// (under TLS through DialTLSContext: one handshake per connection).
func newClusterClient(c *localcluster.Cluster, maxConc int, dials *dialCounter) *http.Client {
	var tr *http.Transport
	if ct, ok := c.Client.Transport.(*http.Transport); ok && ct != nil {
		tr = ct.Clone()
	} else {
		tr = newClient(maxConc).Transport.(*http.Transport).Clone()
	}
	tr.MaxIdleConns = 4 * max(maxConc, 16)
	tr.MaxIdleConnsPerHost = 2 * max(maxConc, 16)
	tr.IdleConnTimeout = 90 * time.Second
	if tr.DialTLSContext != nil {
		tr.DialTLSContext = dials.wrap(tr.DialTLSContext)
	} else {
		tr.DialContext = dials.wrap(tr.DialContext)
	}
	return &http.Client{Transport: tr}
}

func runTLS(e *env, o tlsOpts) (*tlsResult, error) {
	res := &tlsResult{opts: o}
	start := time.Now()
	for run := 1; run <= o.runs; run++ {
		if run > 1 && time.Since(start) > o.budget {
			res.notes = append(res.notes, fmt.Sprintf("stopped after %d of %d pairs: the -tls-budget of %s was spent", run-1, o.runs, o.budget))
			break
		}
		for _, mode := range []string{modePlain, modeTLS} {
			cell, err := runTLSCell(e, o, run, mode)
			if err != nil {
				return nil, fmt.Errorf("tls run %d %s: %w", run, mode, err)
			}
			res.cells = append(res.cells, cell)
		}
	}
	return res, nil
}

func runTLSCell(e *env, o tlsOpts, run int, mode string) (*tlsCell, error) {
	cell := &tlsCell{run: run, mode: mode, writes: map[string]loadResult{}, dials: map[string]int64{},
		fo: failoverResult{set: timeoutSet{Name: "default"}}}
	dials := &dialCounter{}
	var client *http.Client
	name := fmt.Sprintf("tls-r%d-%s", run, strings.ToLower(mode))
	c, err := e.startClusterWith(name, localcluster.Options{TLS: mode == modeTLS}, func(c *localcluster.Cluster) *http.Client {
		client = newClusterClient(c, o.conc, dials)
		return client
	})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	last := int64(0)
	phase := func(p string) {
		now := dials.n.Load()
		cell.dials[p] += now - last
		last = now
	}
	phase("setup")
	leader, follower, err := leaderAndFollower(c)
	if err != nil {
		return nil, err
	}
	targets := []string{targetLeader, targetFollower}
	if run%2 == 0 {
		targets[0], targets[1] = targets[1], targets[0]
	}
	for _, t := range targets {
		node := leader
		if t == targetFollower {
			node = follower
		}
		if o.warmup > 0 {
			runLoad(client, node.URL(""), o.conc, o.warmup, 0, o.reqTimeout)
		}
		phase(warmupOf(t))
		before := sampleCPU(c)
		mb0, mt0 := machineCPU()
		r := runLoad(client, node.URL(""), o.conc, o.duration, o.maxOps, o.reqTimeout)
		r.CPU = rolesCPU(sampleCPU(c).sub(before), leader.ID, follower.ID)
		if mb1, mt1 := machineCPU(); mt1 > mt0 {
			r.MachineBusy = float64(mb1-mb0) / float64(mt1-mt0) * float64(runtime.NumCPU())
		}
		cell.writes[t] = r
		phase(t)
		e.logf("tls run %d/%d %-9s c=%d %-20s %6.0f ops/s  p50 %-8s p99 %-8s errors %d  CPU/write %.0f µs  connections opened: warm-up %d, measured %d %s",
			run, o.runs, mode, o.conc, t, r.OpsPerSec(), fmtDur(r.P(50)), fmtDur(r.P(99)), r.Errors,
			us(cpuPerWrite(r)), cell.dials[warmupOf(t)], cell.dials[t], r.FirstErr)
	}
	if l, err := c.WaitLeader(5 * time.Second); err != nil || l.ID != leader.ID {
		cell.fo.notes = append(cell.fo.notes, fmt.Sprintf("the leader changed during the write cells (was %s)", leader.ID))
	}
	running := c.Running()
	cell.member, cell.scraped = memberConnMetrics(client, running)
	cell.asked = len(running)
	if mode == modeTLS {
		cell.raft = probeRaftTLS(c, follower)
		e.logf("tls run %d %s: raft port of %s: %s", run, mode, follower.ID, cell.raft)
	}
	if err := failoverTrials(e, c, fmt.Sprintf("tls-r%d-%s", run, mode), o.failover, &cell.fo); err != nil {
		return nil, err
	}
	phase("failover")
	cell.steps = failoverSteps(c, cell.fo)
	return cell, nil
}

// failoverSteps reads every node's log once and splits each acknowledged
// kill of fo into its steps.
func failoverSteps(c *localcluster.Cluster, fo failoverResult) []foSteps {
	var detects, leaders []time.Time
	for _, n := range c.Nodes() {
		f, err := os.Open(n.LogPath)
		if err != nil {
			continue
		}
		d, l := markTimes(f, markDetect, markLeader)
		f.Close()
		detects, leaders = append(detects, d...), append(leaders, l...)
	}
	out := make([]foSteps, len(fo.times))
	for i := range fo.times {
		if i >= len(fo.killedAt) {
			break
		}
		from, to := fo.killedAt[i], fo.killedAt[i].Add(fo.times[i])
		d, okD := firstIn(detects, from, to)
		l, okL := firstIn(leaders, from, to)
		out[i] = foSteps{detect: d.Sub(from), elect: l.Sub(from), ok: okD && okL}
	}
	return out
}

// markTimes returns the timestamps of the log lines (hashicorp's format:
// an RFC 3339 time, then the level and the message) that contain a and b.
func markTimes(r io.Reader, a, b string) (as, bs []time.Time) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		hitA, hitB := strings.Contains(line, a), strings.Contains(line, b)
		if !hitA && !hitB {
			continue
		}
		ts, _, _ := strings.Cut(line, " ")
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		if hitA {
			as = append(as, t)
		}
		if hitB {
			bs = append(bs, t)
		}
	}
	return as, bs
}

// firstIn is the earliest of ts in [from - 1 ms, to] (log times are cut to
// the millisecond), or false.
func firstIn(ts []time.Time, from, to time.Time) (time.Time, bool) {
	var best time.Time
	found := false
	for _, t := range ts {
		if t.Before(from.Add(-time.Millisecond)) || t.After(to) {
			continue
		}
		if !found || t.Before(best) {
			best, found = t, true
		}
	}
	return best, found
}

// cpuPerWrite is the CPU time of the three nodes and the client per
// acknowledged write.
func cpuPerWrite(r loadResult) time.Duration {
	var t time.Duration
	for _, role := range roles {
		t += r.cpuPerOp(role)
	}
	return t
}

// memberMetricWords pick the /metrics samples that count member-to-member
// connections or handshakes (raft or HTTPS between members).
var memberMetricWords = []string{"handshake", "raft_conn", "peer_conn", "member_conn"}

// memberConnMetrics sums, over nodes, the samples of /metrics whose name
// contains one of memberMetricWords, and says how many nodes answered
// (200); the others are skipped.
func memberConnMetrics(client *http.Client, nodes []*localcluster.Node) (map[string]float64, int) {
	out := map[string]float64{}
	answered := 0
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL("/metrics"), nil)
		resp, err := client.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				answered++
				for k, v := range matchSamples(b, memberMetricWords) {
					out[k] += v
				}
			}
		}
		cancel()
	}
	return out, answered
}

// matchSamples returns the samples of Prometheus text whose metric name
// contains one of words, keyed by name and labels as written.
func matchSamples(text []byte, words []string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, val := line, ""
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			key, val = strings.TrimSpace(line[:i]), line[i+1:]
		}
		name := key
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		hit := false
		for _, w := range words {
			hit = hit || strings.Contains(name, w)
		}
		if !hit {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			out[key] += v
		}
	}
	return out
}

// probeRaftTLS opens one TLS connection to n's raft port with the
// operator certificate and the cluster's CA, and says what it found: a
// completed handshake with a verified member certificate is mutual TLS on
// the raft port (the member then refuses the operator's role, which is
// why the probe runs after the measurements); a connection closed before
// any TLS record is a plaintext raft port.
func probeRaftTLS(c *localcluster.Cluster, n *localcluster.Node) string {
	if c.PKI == nil {
		return "plaintext (no PKI)"
	}
	pair, err := tls.LoadX509KeyPair(c.PKI.Client.Cert, c.PKI.Client.Key)
	if err != nil {
		return "unknown: " + err.Error()
	}
	caPEM, err := os.ReadFile(c.PKI.CAFile)
	if err != nil {
		return "unknown: " + err.Error()
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	raw, err := net.DialTimeout("tcp", n.RaftAddr, 2*time.Second)
	if err != nil {
		return "unknown: " + err.Error()
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(3 * time.Second))
	asked := false // the member asked for a client certificate: mutual TLS
	tc := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: n.Host, MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked = true
			return &pair, nil
		}})
	err = tc.Handshake()
	var rh tls.RecordHeaderError
	switch {
	case err == nil:
		st := tc.ConnectionState()
		cn := ""
		if len(st.PeerCertificates) > 0 {
			cn = st.PeerCertificates[0].Subject.CommonName
		}
		kind, req := "TLS", "did not ask for a client certificate"
		if asked {
			kind, req = "mutual TLS", "asked for a client certificate"
		}
		who := fmt.Sprintf("a certificate for %q", cn)
		if cn == n.ID {
			who = "its own member certificate"
		}
		return fmt.Sprintf("%s (%s; the node presented %s, verified against the cluster CA, and %s)", kind, tls.VersionName(st.Version), who, req)
	case errors.As(err, &rh):
		return "plaintext (answered with a non-TLS record)"
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), strings.Contains(err.Error(), "connection reset"):
		return "plaintext (closed the connection at the TLS ClientHello)"
	default:
		var ae tls.AlertError
		if errors.As(err, &ae) || strings.Contains(err.Error(), "remote error") {
			return "TLS (the handshake was refused with an alert: " + err.Error() + ")"
		}
		return "unknown: " + err.Error()
	}
}
