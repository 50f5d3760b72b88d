package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// ServingMonitor watches invariant 4's second half from outside: at most
// one datanode serves a region at any instant. Every round asks every up
// datanode at once what it serves (GET /regions: open and under a valid
// lease). Each answer describes some instant between its request and its
// response, so two datanodes listing the same region prove a double
// service only up to the round's span; a handover takes at least one
// heartbeat (the old owner closes, reports it on its next heartbeat, and
// only then is the new owner told to open), so only rounds much shorter
// than a heartbeat interval are judged.
type ServingMonitor struct {
	cl       *Cluster
	maxSpan  time.Duration
	interval time.Duration

	mu      sync.Mutex
	rounds  int // judged
	slow    int // too slow to judge
	doubles []string
	stop    chan struct{}
	wg      sync.WaitGroup
}

func newServingMonitor(cl *Cluster) *ServingMonitor {
	return &ServingMonitor{cl: cl, maxSpan: 50 * time.Millisecond, interval: 100 * time.Millisecond, stop: make(chan struct{})}
}

func (m *ServingMonitor) Start(ctx context.Context, t0 time.Time) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for i := 0; i < 100000; i++ { // bounded; stopped long before
			m.round(ctx, t0)
			select {
			case <-ctx.Done():
				return
			case <-m.stop:
				return
			case <-time.After(m.interval):
			}
		}
	}()
}

func (m *ServingMonitor) Stop() {
	close(m.stop)
	m.wg.Wait()
}

func (m *ServingMonitor) round(ctx context.Context, t0 time.Time) {
	dns := m.cl.upDatanodes()
	type answer struct {
		id  string
		ids []uint64
		err error
	}
	answers := make([]answer, len(dns))
	start := time.Now()
	var wg sync.WaitGroup
	for i, d := range dns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out []uint64
			r := m.cl.get(ctx, d, "/regions", time.Second)
			err := r.Err
			if err == nil && r.Status != 200 {
				err = fmt.Errorf("status %d", r.Status)
			}
			if err == nil {
				err = jsonInto(r.Body, &out)
			}
			answers[i] = answer{d.ID, out, err}
		}()
	}
	wg.Wait()
	span := time.Since(start)
	by := map[uint64][]string{}
	for _, a := range answers {
		if a.err != nil {
			return // a datanode going away mid-round; not a judgement
		}
		for _, id := range a.ids {
			by[id] = append(by[id], a.id)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if span > m.maxSpan {
		m.slow++
		return
	}
	m.rounds++
	var ids []uint64
	for id, on := range by {
		if len(on) > 1 {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		m.doubles = append(m.doubles, fmt.Sprintf("region %d served by datanodes %v at %.1fs (round of %s)", id, by[id],
			start.Sub(t0).Seconds(), span.Round(time.Millisecond)))
	}
}

func (m *ServingMonitor) Result() (rounds, slow int, doubles []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rounds, m.slow, append([]string(nil), m.doubles...)
}
