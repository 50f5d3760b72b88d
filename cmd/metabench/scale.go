package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metasrv/metasrv/cmd/datanode/agent"
	"github.com/metasrv/metasrv/deploy/localcluster"
	"github.com/metasrv/metasrv/server/wire"
)

type scaleOpts struct {
	datanodes  []int // simulated datanodes per cell
	regions    int   // regions per datanode
	interval   time.Duration
	measure    time.Duration // measured window once every datanode serves its regions
	settle     time.Duration // bound on registration + table creation + first open
	inflight   int           // bound on concurrent heartbeat requests
	reqTimeout time.Duration
}

// scaleResult is one cell: N simulated datanodes heartbeating the leader.
type scaleResult struct {
	datanodes, regions int
	interval           time.Duration
	setup              time.Duration // registration + tables + every region served
	sent, ok, errs     int
	late               int // heartbeats sent more than interval/2 after they were due
	elapsed            time.Duration
	lat                []time.Duration // ascending, acknowledged only
	leaderCores        float64
	followerCores      float64 // the busier follower
	clientCores        float64
	leaderRSS          int64
	leaderPeakRSS      int64
	firstErr           string
}

func (r scaleResult) perSec() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// simNode is one simulated datanode: it serves what the leader told it to
// open and reports it in every heartbeat, with an increasing seq.
type simNode struct {
	id      uint64
	addr    string
	start   int64
	seq     uint64
	serving map[uint64]bool
	hbs     int
}

// leaderAddr is where the simulated datanodes send heartbeats (the RPC
// address); a 503 not_leader answer moves it to the leader it names, as a
// real datanode would.
type leaderAddr struct{ v atomic.Value }

func (l *leaderAddr) get() string { return l.v.Load().(string) }

func (s *simNode) heartbeat(ctx context.Context, c *http.Client, la *leaderAddr, total *atomic.Int64) error {
	addr := la.get()
	before := len(s.serving)
	defer func() { total.Add(int64(len(s.serving) - before)) }()
	s.seq++
	hb := wire.Heartbeat{ID: s.id, Addr: s.addr, StartTimeMs: s.start, Seq: s.seq, Regions: make([]uint64, 0, len(s.serving))}
	for id := range s.serving {
		hb.Regions = append(hb.Regions, id)
	}
	slices.Sort(hb.Regions)
	out, hint, err := agent.Send(ctx, c, "http://"+addr, "", hb)
	var se *agent.StatusError
	if errors.As(err, &se) {
		if se.Code == http.StatusServiceUnavailable && hint != "" {
			la.v.CompareAndSwap(addr, hint)
		}
		return fmt.Errorf("status %d: %.200s", se.Code, se.Body)
	}
	if err != nil {
		return err
	}
	for _, id := range out.Open {
		s.serving[id] = true
	}
	for _, id := range out.Close {
		delete(s.serving, id)
	}
	owned := make(map[uint64]bool, len(out.Regions))
	for _, id := range out.Regions {
		owned[id] = true
	}
	for id := range s.serving {
		if !owned[id] {
			delete(s.serving, id)
		}
	}
	s.hbs++
	return nil
}

// runScale simulates n datanodes from this one process against the
// leader of a fresh cluster: each heartbeats every interval (phases spread
// evenly), registers with its first heartbeat, gets regions through
// tables created on the leader, and opens them as told. Once every
// datanode serves its share, the heartbeats of a window of -scale-measure
// are counted and timed, and the leader's CPU and memory read from /proc.
func runScale(e *env, n int, o scaleOpts, args []string) (*scaleResult, error) {
	res := &scaleResult{datanodes: n, regions: o.regions, interval: o.interval}
	c, err := e.startCluster(fmt.Sprintf("scale-%d", n), append([]string{"--heartbeat-interval", o.interval.String()}, args...))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	leader, err := c.WaitLeader(10 * time.Second)
	if err != nil {
		return nil, err
	}
	lpid := pidOf(leader.DataDir)
	var fpids []int
	for _, nd := range c.Running() {
		if nd != leader {
			fpids = append(fpids, pidOf(nd.DataDir))
		}
	}
	la := &leaderAddr{}
	la.v.Store(leader.RPCAddr)
	client := &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * o.inflight,
		MaxIdleConnsPerHost: 2 * o.inflight,
		IdleConnTimeout:     90 * time.Second,
	}}
	startMs := time.Now().UnixMilli()
	nodes := make([]*simNode, n)
	for i := range nodes {
		nodes[i] = &simNode{id: uint64(1_000_000 + i), addr: fmt.Sprintf("10.%d.%d.%d:4001", (i>>16)&255, (i>>8)&255, i&255),
			start: startMs, serving: map[uint64]bool{}}
	}

	var (
		measuring atomic.Bool
		mu        sync.Mutex
		lat       []time.Duration
		sent, ok  atomic.Int64
		errs      atomic.Int64
		late      atomic.Int64
		firstErr  atomic.Value
		served    atomic.Int64 // datanodes serving their full share
		// servedTotal is the regions the simulated datanodes serve.
		servedTotal atomic.Int64
	)
	sem := make(chan struct{}, o.inflight)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t0 := time.Now()
	maxRounds := int((o.settle+o.measure)/o.interval) + 2
	for i, s := range nodes {
		wg.Add(1)
		go func(i int, s *simNode) {
			defer wg.Done()
			due := t0.Add(time.Duration(i) * o.interval / time.Duration(n))
			full := false
			for round := 0; round < maxRounds; round++ {
				select {
				case <-stop:
					return
				case <-time.After(time.Until(due)):
				}
				select {
				case sem <- struct{}{}:
				case <-stop:
					return
				}
				m := measuring.Load()
				if m && time.Since(due) > o.interval/2 {
					late.Add(1)
				}
				ctx, cancel := context.WithTimeout(context.Background(), o.reqTimeout)
				st := time.Now()
				err := s.heartbeat(ctx, client, la, &servedTotal)
				d := time.Since(st)
				cancel()
				<-sem
				if m {
					sent.Add(1)
					if err == nil {
						ok.Add(1)
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					} else {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
				}
				if !full && len(s.serving) >= o.regions {
					full = true
					served.Add(1)
				}
				due = due.Add(o.interval)
				if now := time.Now(); due.Before(now) {
					due = now // fell behind: never burst to catch up
				}
			}
		}(i, s)
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()

	// Registration: every datanode heartbeated once and is alive.
	ctx := context.Background()
	base := leader.URL("")
	err = localcluster.Eventually(o.settle, func() error {
		var dns []wire.Datanode
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := getJSON(cctx, e.client, base+"/admin/datanodes?stale=true", &dns); err != nil {
			return err
		}
		alive := 0
		for _, d := range dns {
			if d.Status == "alive" {
				alive++
			}
		}
		if alive < n {
			return fmt.Errorf("%d of %d simulated datanodes registered and alive", alive, n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.logf("scale %d: %d datanodes registered after %s", n, n, time.Since(t0).Round(time.Millisecond))
	total := n * o.regions
	const perTable = 10000
	deadline := t0.Add(o.settle)
	created := 0
	for t := 0; t*perTable < total; t++ {
		k := min(perTable, total-t*perTable)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := postJSON(cctx, e.client, base+"/admin/tables", fmt.Sprintf(`{"name":"scale%d","regions":%d}`, t, k))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("create table %d: %w", t, err)
		}
		created += k
		// Paced like a real rollout: the next table once this one's regions
		// are open. A burst of tables makes every heartbeat carry many
		// unopened regions, and the leader's check that no other datanode
		// serves one (failover.Monitor) costs O(datanodes) per region.
		for servedTotal.Load() < int64(created) {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%d of %d regions created so far served after %s", servedTotal.Load(), created, o.settle)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	e.logf("scale %d: %d regions created after %s", n, total, time.Since(t0).Round(time.Millisecond))
	for served.Load() < int64(n) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d datanodes serve %d regions after %s", served.Load(), o.regions, o.settle)
		}
		time.Sleep(100 * time.Millisecond)
	}
	res.setup = time.Since(t0)
	e.logf("scale %d: every datanode serves %d regions after %s; measuring %s", n, o.regions, res.setup.Round(time.Millisecond), o.measure)
	// One more interval so the transient (first opens) is over.
	time.Sleep(o.interval)

	cpu0, f0 := procCPU(lpid), make([]time.Duration, len(fpids))
	for i, p := range fpids {
		f0[i] = procCPU(p)
	}
	var ru0 = sampleCPUDirs(nil)[selfKey]
	ms := time.Now()
	measuring.Store(true)
	time.Sleep(o.measure)
	measuring.Store(false)
	res.elapsed = time.Since(ms)
	res.leaderCores = (procCPU(lpid) - cpu0).Seconds() / res.elapsed.Seconds()
	for i, p := range fpids {
		res.followerCores = max(res.followerCores, (procCPU(p)-f0[i]).Seconds()/res.elapsed.Seconds())
	}
	res.clientCores = (sampleCPUDirs(nil)[selfKey] - ru0).Seconds() / res.elapsed.Seconds()
	res.leaderRSS, res.leaderPeakRSS = procMem(lpid)
	mu.Lock()
	res.lat = slices.Clone(lat)
	mu.Unlock()
	slices.Sort(res.lat)
	res.sent, res.ok, res.errs, res.late = int(sent.Load()), int(ok.Load()), int(errs.Load()), int(late.Load())
	if v, okk := firstErr.Load().(string); okk {
		res.firstErr = v
	}
	if l, err := c.WaitLeader(5 * time.Second); err != nil || l.ID != leader.ID {
		res.firstErr += fmt.Sprintf(" (leader changed from %s)", leader.ID)
	}
	e.logf("scale %d: %.0f heartbeats/s (want %.0f), p50 %s p99 %s, errors %d, late %d, leader %.2f cores, RSS %d MB (peak %d MB), follower %.2f cores, load generator %.2f cores %s",
		n, res.perSec(), float64(n)/o.interval.Seconds(), fmtDur(percentile(res.lat, 50)), fmtDur(percentile(res.lat, 99)), res.errs, res.late,
		res.leaderCores, res.leaderRSS>>20, res.leaderPeakRSS>>20, res.followerCores, res.clientCores, res.firstErr)
	return res, nil
}
