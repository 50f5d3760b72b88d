package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
)

// Systems, kinds and targets of a side-by-side cell.
const (
	sysOurs = "metasrv"
	sysEtcd = "etcd"

	kindWrite = "write"
	kindLin   = "linearizable read"
	kindStale = "stale read"

	tgtLeader   = "leader"
	tgtFollower = "follower"
)

type compareOpts struct {
	concs      []int // write concurrencies
	readConcs  []int
	runs       int
	duration   time.Duration
	warmup     time.Duration
	maxOps     int64
	reqTimeout time.Duration
	oursArgs   []string
}

type cellKey struct {
	sys, kind, target string
	conc              int
}

// cellCPU is the CPU of one cell: the system's leader, all its members,
// and the load generator, per acknowledged request.
type cellCPU struct {
	leader, members, client time.Duration
}

// compareResult holds every cell of every run; every ratio is computed
// within one run (both systems up on the same machine, cells back to back).
type compareResult struct {
	opts   compareOpts
	cells  map[cellKey][]loadResult
	cpu    map[cellKey][]cellCPU
	ratios map[string][]float64 // name → one per run
	notes  []string
}

func (r *compareResult) add(k cellKey, lr loadResult, cpu cellCPU) {
	r.cells[k] = append(r.cells[k], lr)
	r.cpu[k] = append(r.cpu[k], cpu)
}

// ratio names
func ratioOursEtcd(kind, target string, conc int) string {
	return fmt.Sprintf("%s/%s/%d metasrv÷etcd", kind, target, conc)
}
func ratioFollower(sys string, conc int) string {
	return fmt.Sprintf("%s write %d follower÷leader", sys, conc)
}

// sysCluster is one system of a run: how to reach its leader and follower
// and how to send each kind of request.
type sysCluster struct {
	name             string
	leader, follower string // RPC / client address
	leaderID         string // key in the CPU sample
	ids              []string
	op               func(kind string, addr string) opFunc
}

func oursOp(c *http.Client) func(kind, addr string) opFunc {
	return func(kind, addr string) opFunc {
		switch kind {
		case kindWrite:
			return func(ctx context.Context, i int64) error {
				_, err := postToggle(ctx, c, "http://"+addr, i%2 == 1)
				return err
			}
		case kindLin:
			u := "http://" + addr + "/admin/maintenance"
			return func(ctx context.Context, _ int64) error { return doReq(ctx, c, http.MethodGet, u, nil) }
		default:
			u := "http://" + addr + "/admin/maintenance?stale=true"
			return func(ctx context.Context, _ int64) error { return doReq(ctx, c, http.MethodGet, u, nil) }
		}
	}
}

func etcdOp(c *http.Client) func(kind, addr string) opFunc {
	return func(kind, addr string) opFunc {
		switch kind {
		case kindWrite:
			return func(ctx context.Context, i int64) error { return etcdPut(ctx, c, addr, i%2 == 1) }
		case kindLin:
			return func(ctx context.Context, _ int64) error { return etcdRange(ctx, c, addr, false) }
		default:
			return func(ctx context.Context, _ int64) error { return etcdRange(ctx, c, addr, true) }
		}
	}
}

func runCompare(e *env, o compareOpts) (*compareResult, error) {
	res := &compareResult{opts: o, cells: map[cellKey][]loadResult{}, cpu: map[cellKey][]cellCPU{}, ratios: map[string][]float64{}}
	for run := 1; run <= o.runs; run++ {
		if err := compareRun(e, o, run, res); err != nil {
			return nil, fmt.Errorf("compare run %d: %w", run, err)
		}
	}
	return res, nil
}

func compareRun(e *env, o compareOpts, run int, res *compareResult) error {
	c, err := e.startCluster(fmt.Sprintf("compare-r%d", run), o.oursArgs)
	if err != nil {
		return err
	}
	defer c.Close()
	ec, err := e.startEtcd(fmt.Sprintf("etcd-compare-r%d", run))
	if err != nil {
		return err
	}
	defer ec.Close()
	ol, of, err := leaderAndFollower(c)
	if err != nil {
		return err
	}
	el, ef, err := ec.leaderAndFollower(e.client)
	if err != nil {
		return err
	}
	dirs := map[string]string{}
	for d, id := range clusterDirs(c) {
		dirs[d] = "m-" + id
	}
	for d, id := range ec.dataDirs() {
		dirs[d] = "e-" + id
	}
	systems := []sysCluster{
		{name: sysOurs, leader: ol.RPCAddr, follower: of.RPCAddr, leaderID: "m-" + ol.ID, op: oursOp(e.client)},
		{name: sysEtcd, leader: el.Addr(), follower: ef.Addr(), leaderID: "e-" + el.ID, op: etcdOp(e.client)},
	}
	for _, n := range c.Nodes() {
		systems[0].ids = append(systems[0].ids, "m-"+n.ID)
	}
	for _, n := range ec.nodes {
		systems[1].ids = append(systems[1].ids, "e-"+n.ID)
	}
	if run%2 == 0 {
		systems[0], systems[1] = systems[1], systems[0]
	}

	cell := func(s sysCluster, kind, target string, conc int) loadResult {
		addr := s.leader
		if target == tgtFollower {
			addr = s.follower
		}
		op := s.op(kind, addr)
		if o.warmup > 0 {
			runOps(conc, o.warmup, 0, o.reqTimeout, op)
		}
		before := sampleCPUDirs(dirs)
		lr := runOps(conc, o.duration, o.maxOps, o.reqTimeout, op)
		d := sampleCPUDirs(dirs).sub(before)
		var cpu cellCPU
		if lr.OK > 0 {
			var members time.Duration
			for _, id := range s.ids {
				members += d[id]
			}
			cpu = cellCPU{leader: d[s.leaderID] / time.Duration(lr.OK), members: members / time.Duration(lr.OK),
				client: d[selfKey] / time.Duration(lr.OK)}
		}
		res.add(cellKey{s.name, kind, target, conc}, lr, cpu)
		e.logf("compare run %d/%d %-7s %-17s %-8s c=%-3d %7.0f ops/s  p50 %-8s p99 %-8s errors %d  CPU/op µs: leader %.0f members %.0f client %.0f %s",
			run, o.runs, s.name, kind, target, conc, lr.OpsPerSec(), fmtDur(lr.P(50)), fmtDur(lr.P(99)), lr.Errors,
			us(cpu.leader), us(cpu.members), us(cpu.client), lr.FirstErr)
		return lr
	}
	ratio := func(name string, a, b loadResult) {
		if b.OpsPerSec() > 0 {
			res.ratios[name] = append(res.ratios[name], a.OpsPerSec()/b.OpsPerSec())
		}
	}
	for _, conc := range o.concs {
		got := map[string]map[string]loadResult{}
		for _, s := range systems {
			got[s.name] = map[string]loadResult{}
			tgts := []string{tgtLeader, tgtFollower}
			if run%2 == 0 {
				tgts[0], tgts[1] = tgts[1], tgts[0]
			}
			for _, t := range tgts {
				got[s.name][t] = cell(s, kindWrite, t, conc)
			}
		}
		for _, t := range []string{tgtLeader, tgtFollower} {
			ratio(ratioOursEtcd(kindWrite, t, conc), got[sysOurs][t], got[sysEtcd][t])
		}
		for _, s := range []string{sysOurs, sysEtcd} {
			ratio(ratioFollower(s, conc), got[s][tgtFollower], got[s][tgtLeader])
		}
	}
	for _, conc := range o.readConcs {
		for _, kind := range []string{kindLin, kindStale} {
			got := map[string]map[string]loadResult{}
			for _, s := range systems {
				got[s.name] = map[string]loadResult{}
				for _, t := range []string{tgtLeader, tgtFollower} {
					got[s.name][t] = cell(s, kind, t, conc)
				}
			}
			for _, t := range []string{tgtLeader, tgtFollower} {
				ratio(ratioOursEtcd(kind, t, conc), got[sysOurs][t], got[sysEtcd][t])
			}
		}
	}
	if l, err := c.WaitLeader(5 * time.Second); err != nil || l.ID != ol.ID {
		res.notes = append(res.notes, fmt.Sprintf("run %d: the metasrv leader changed during the run (was %s)", run, ol.ID))
	}
	if l, err := ec.WaitLeader(e.client, 5*time.Second); err != nil || l.ID != el.ID {
		res.notes = append(res.notes, fmt.Sprintf("run %d: the etcd leader changed during the run (was %s)", run, el.ID))
	}
	return nil
}

// startEtcd starts a 3-member etcd cluster under the scratch directory and
// waits until it is healthy.
func (e *env) startEtcd(name string) (*etcdCluster, error) {
	e.mu.Lock()
	e.seq++
	dir := filepath.Join(e.dir, fmt.Sprintf("%02d-%s", e.seq, name))
	e.mu.Unlock()
	ec, err := startEtcd(e.etcdBin, dir, 3)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.etcds = append(e.etcds, ec)
	e.mu.Unlock()
	if err := ec.WaitHealthy(e.client, 30*time.Second); err != nil {
		ec.Close()
		return nil, fmt.Errorf("etcd %s: %w (logs in %s)", name, err, dir)
	}
	return ec, nil
}

// cellSummaryOf is the median over runs of one side-by-side cell.
func (r *compareResult) summary(k cellKey) (ops float64, p50, p99 time.Duration, errs int, cpu cellCPU) {
	var xs []float64
	var a, b []time.Duration
	var cl, cm, cc []time.Duration
	for i, lr := range r.cells[k] {
		xs = append(xs, lr.OpsPerSec())
		a = append(a, lr.P(50))
		b = append(b, lr.P(99))
		errs += lr.Errors
		c := r.cpu[k][i]
		cl, cm, cc = append(cl, c.leader), append(cm, c.members), append(cc, c.client)
	}
	return median(xs), medianDur(a), medianDur(b), errs, cellCPU{medianDur(cl), medianDur(cm), medianDur(cc)}
}

// ---- leader failover, etcd side ----

// runFailoverEtcd is runFailover for etcd: kill -9 the leader, time until
// a put sent to a surviving member is acknowledged.
func runFailoverEtcd(e *env, o failoverOpts) (*failoverResult, error) {
	res := &failoverResult{set: timeoutSet{Name: "etcd", Heartbeat: 100 * time.Millisecond, Election: time.Second}}
	ec, err := e.startEtcd("failover-etcd")
	if err != nil {
		return nil, err
	}
	defer ec.Close()
	for trial := 1; trial <= o.trials; trial++ {
		leader, err := ec.WaitLeader(e.client, 10*time.Second)
		if err != nil {
			return nil, fmt.Errorf("trial %d: %w", trial, err)
		}
		var writers []ackTarget
		for _, n := range ec.Running() {
			if n != leader {
				addr := n.Addr()
				writers = append(writers, ackTarget{id: n.ID, write: func(ctx context.Context, enable bool) error {
					return etcdPut(ctx, e.client, addr, enable)
				}})
			}
		}
		if len(writers) < 2 {
			return nil, fmt.Errorf("trial %d: want 2 survivors, have %d", trial, len(writers))
		}
		start := time.Now()
		leader.Kill()
		d, attempts, by, err := firstAckOf(writers, trial, start, o)
		if err != nil {
			res.failed++
			res.notes = append(res.notes, fmt.Sprintf("trial %d: %v", trial, err))
			e.logf("failover etcd trial %d/%d: FAILED: %v", trial, o.trials, err)
		} else {
			res.times = append(res.times, d)
			res.attempts = append(res.attempts, attempts)
			e.logf("failover etcd trial %d/%d: killed %s → put acknowledged by %s after %s (%d attempts)",
				trial, o.trials, leader.ID, by, fmtDur(d), attempts)
		}
		if err := leader.Start(); err != nil {
			return nil, fmt.Errorf("trial %d: restart etcd %s: %w", trial, leader.ID, err)
		}
		if err := ec.WaitHealthy(e.client, 60*time.Second); err != nil {
			return nil, fmt.Errorf("trial %d: etcd not healthy after restarting %s: %w", trial, leader.ID, err)
		}
	}
	return res, nil
}

// ackTarget is one surviving node a failover trial writes to.
type ackTarget struct {
	id    string
	write func(ctx context.Context, enable bool) error
}

// firstAckOf writes to the targets in turn until one acknowledges.
func firstAckOf(targets []ackTarget, trial int, start time.Time, o failoverOpts) (time.Duration, int, string, error) {
	var lastErr error
	for i := 0; time.Since(start) < o.giveUp; i++ {
		t := targets[(trial+i)%len(targets)]
		ctx, cancel := context.WithTimeout(context.Background(), o.reqTimeout)
		err := t.write(ctx, i%2 == 0)
		timedOut := ctx.Err() != nil
		cancel()
		if err == nil {
			return time.Since(start), i + 1, t.id, nil
		}
		lastErr = err
		// A refused connection or an immediate 503 would otherwise spin.
		if !timedOut {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return 0, 0, "", fmt.Errorf("no write acknowledged within %s: last error: %v", o.giveUp, lastErr)
}

// oursTargets are the survivors of a metasrv failover trial, written to
// with client (the cluster's: HTTPS with a client certificate under TLS).
func oursTargets(client *http.Client, survivors []*localcluster.Node) []ackTarget {
	var out []ackTarget
	for _, n := range survivors {
		base := n.URL("")
		out = append(out, ackTarget{id: n.ID, write: func(ctx context.Context, enable bool) error {
			_, err := postToggle(ctx, client, base, enable)
			return err
		}})
	}
	return out
}
