package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// mode says what the concurrent clients write.
type mode int32

const (
	modeToggle mode = iota // enable and disable at random, and read
	modeOn                 // only enable (maintenance must stay on), and read
	modeOff                // only disable, and read
	modeRead               // only read
)

func (m mode) String() string {
	return [...]string{"toggle", "on", "off", "read"}[m]
}

// maintenanceOp sends one maintenance read or write to host with client hc,
// classifies the answer and records it in rec. It returns the outcome and,
// for a read or write answered 200, the flag in the answer.
func maintenanceOp(ctx context.Context, cl *Cluster, hc *http.Client, rec *Recorder, client int, host, label string,
	in regInput, timeout time.Duration) (outcome, bool, httpResult) {
	call := rec.now()
	var r httpResult
	if in.Write {
		r = cl.do(ctx, hc, http.MethodPost, host, "/admin/maintenance?enable="+strconv.FormatBool(in.Value)+"&by=chaos", nil, timeout)
	} else {
		r = cl.do(ctx, hc, http.MethodGet, host, "/admin/maintenance", nil, timeout)
	}
	ret := rec.now()
	oc, value, status := classify(in, r)
	rec.Add(client, in, value, oc, call, ret, opMeta{Node: label, Status: status})
	return oc, value, r
}

func classify(in regInput, r httpResult) (oc outcome, value bool, status string) {
	failed := outcomeNotApplied // a failed read has no effect
	if in.Write {
		failed = outcomeUnknown
	}
	switch {
	case r.Err != nil && isDialError(r.Err):
		return outcomeNotApplied, false, "dial failed"
	case r.Err != nil:
		return failed, false, "error: " + r.Err.Error()
	case r.Status == http.StatusOK:
		var b struct {
			Enabled *bool `json:"enabled"`
		}
		if err := json.Unmarshal(r.Body, &b); err != nil || b.Enabled == nil {
			return failed, false, "200 with a bad body: " + string(r.Body)
		}
		return outcomeOK, *b.Enabled, "200"
	case r.Status == http.StatusServiceUnavailable && (r.code() == "no_leader" || r.code() == "not_leader"):
		return outcomeNotApplied, false, "503 " + r.code()
	}
	return failed, false, strconv.Itoa(r.Status) + " " + r.code()
}

// Workload is the concurrent clients: each sends maintenance reads and
// writes to random metasrv nodes through their published ports, with a
// per-request timeout, until stopped, until the history is full, or until
// its own count and time bounds.
type Workload struct {
	cl        *Cluster
	rec       *Recorder
	clients   int
	opTimeout time.Duration
	maxOps    int // per client
	maxTime   time.Duration

	mode atomic.Int32
	// gate is held for reading during each request; SetMode takes it for
	// writing to wait until no request of the old mode is in flight.
	gate    sync.RWMutex
	stopped atomic.Bool
	wg      sync.WaitGroup
	// mismatches counts writes answered 200 whose body did not echo the
	// value written.
	mismatches atomic.Int64
}

func (w *Workload) Start(ctx context.Context, m mode) {
	w.mode.Store(int32(m))
	deadline := time.Now().Add(w.maxTime)
	for i := 0; i < w.clients; i++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.client(ctx, deadline)
		}()
	}
}

// SetMode switches what new requests write and waits until every request
// of the old mode has finished.
func (w *Workload) SetMode(m mode) {
	w.mode.Store(int32(m))
	w.gate.Lock()
	w.gate.Unlock()
}

// Stop stops the clients after their current request.
func (w *Workload) Stop() {
	w.stopped.Store(true)
	w.wg.Wait()
}

func (w *Workload) client(ctx context.Context, deadline time.Time) {
	id := w.rec.NewClient()
	suspect := map[string]time.Time{} // node -> avoid until
	for ops := 0; ops < w.maxOps && !w.stopped.Load() && ctx.Err() == nil && time.Now().Before(deadline) && !w.rec.Full(); ops++ {
		n := w.pick(suspect)
		w.gate.RLock()
		in := regInput{}
		switch mode(w.mode.Load()) {
		case modeToggle:
			in = regInput{Write: rand.IntN(2) == 0, Value: rand.IntN(2) == 0}
		case modeOn:
			in = regInput{Write: rand.IntN(2) == 0, Value: true}
		case modeOff:
			in = regInput{Write: rand.IntN(2) == 0, Value: false}
		}
		oc, value, _ := maintenanceOp(ctx, w.cl, w.cl.client, w.rec, id, hostPort(n.Port), n.Service, in, w.opTimeout)
		w.gate.RUnlock()
		if oc == outcomeOK && in.Write && value != in.Value {
			w.mismatches.Add(1)
		}
		if oc != outcomeOK {
			// A client that got no answer from a node tries the others for a
			// while, as a real one would.
			suspect[n.Service] = time.Now().Add(time.Second)
		}
		if oc == outcomeUnknown {
			id = w.rec.NewClient() // that write stays open forever
		}
		sleep(ctx, time.Duration(30+rand.IntN(60))*time.Millisecond)
	}
}

// pick chooses a random metasrv node, avoiding suspects when it can.
func (w *Workload) pick(suspect map[string]time.Time) node {
	var ok []node
	now := time.Now()
	for _, n := range w.cl.metas {
		if now.After(suspect[n.Service]) {
			ok = append(ok, n)
		}
	}
	if len(ok) == 0 {
		ok = w.cl.metas
	}
	return ok[rand.IntN(len(ok))]
}
