package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// event is one entry of GET /admin/events with only the fields the checks
// compare (no time, no reason): diffEvents compares the nodes' logs by the
// JSON encoding of these, and String renders them in reports. It is a
// subset of wire.Event, not wire.Event itself, for both reasons.
type event struct {
	Index  uint64            `json:"index"`
	Type   string            `json:"type"`
	By     string            `json:"by,omitempty"`
	Epoch  uint64            `json:"epoch,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
}

func (e event) String() string {
	return fmt.Sprintf("#%d %s %v", e.Index, e.Type, e.Fields)
}

type eventsPage struct {
	FirstIndex uint64  `json:"first_index"`
	Events     []event `json:"events"`
}

const eventsPageLimit = 10000

// EventWatcher reads the event log continuously by raft index (since=last
// seen), through whichever metasrv node answers. If the log's first_index
// is past last_seen+1, events were dropped from the bounded ring before it
// read them: it cannot vouch for them, and the run fails.
type EventWatcher struct {
	cl *Cluster

	mu     sync.Mutex
	events []event
	last   uint64 // highest raft index fully read
	missed string // why events may have been missed
	polls  int
	wg     sync.WaitGroup
	stop   chan struct{}
}

func newEventWatcher(cl *Cluster) *EventWatcher {
	return &EventWatcher{cl: cl, stop: make(chan struct{})}
}

func (w *EventWatcher) Start(ctx context.Context) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			_ = w.poll(ctx)
			select {
			case <-ctx.Done():
				return
			case <-w.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
}

func (w *EventWatcher) Stop() {
	close(w.stop)
	w.wg.Wait()
}

// poll reads every event after the last one seen (a linearizable read).
func (w *EventWatcher) poll(ctx context.Context) error {
	for i := 0; i < 100; i++ { // pages; bounded
		w.mu.Lock()
		since := w.last
		w.mu.Unlock()
		var page eventsPage
		if err := w.cl.getAny(ctx, "/admin/events?since="+strconv.FormatUint(since, 10)+"&limit="+strconv.Itoa(eventsPageLimit), &page); err != nil {
			return err
		}
		w.mu.Lock()
		if w.last != since { // a concurrent poll (Sync) got there first
			w.mu.Unlock()
			continue
		}
		w.polls++
		if page.FirstIndex > since+1 && w.missed == "" {
			w.missed = fmt.Sprintf("first_index %d > last seen %d + 1: events between were dropped before they were read", page.FirstIndex, since)
		}
		evs := page.Events
		full := len(evs) == eventsPageLimit
		if full {
			// One command can emit several events at the same index: never
			// stop a page in the middle of an index, or since= would skip
			// the rest of it.
			lastIdx := evs[len(evs)-1].Index
			j := len(evs)
			for j > 0 && evs[j-1].Index == lastIdx {
				j--
			}
			if j > 0 {
				evs = evs[:j]
			}
		}
		for _, e := range evs {
			if e.Index <= w.last {
				if w.missed == "" {
					w.missed = fmt.Sprintf("event index went backwards: %s after %d", e, w.last)
				}
				continue
			}
			w.events = append(w.events, e)
		}
		// Several events may share the last index; advance only past whole
		// indexes.
		if len(evs) > 0 {
			w.last = evs[len(evs)-1].Index
		}
		w.mu.Unlock()
		if !full {
			return nil
		}
	}
	return nil
}

// Sync reads up to the present (one successful poll after now).
func (w *EventWatcher) Sync(ctx context.Context, bound time.Duration) error {
	start := time.Now()
	var err error
	for time.Since(start) < bound && ctx.Err() == nil {
		if err = w.poll(ctx); err == nil {
			return nil
		}
		sleep(ctx, 200*time.Millisecond)
	}
	return fmt.Errorf("event log not readable within %s: %v", bound, err)
}

func (w *EventWatcher) Events() []event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]event(nil), w.events...)
}

func (w *EventWatcher) Missed() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.missed
}

// waitFor waits until an event matching f has been read, bounded.
func (w *EventWatcher) waitFor(ctx context.Context, bound time.Duration, f func(event) bool) (event, bool) {
	start := time.Now()
	for time.Since(start) < bound && ctx.Err() == nil {
		for _, e := range w.Events() {
			if f(e) {
				return e, true
			}
		}
		sleep(ctx, 20*time.Millisecond)
	}
	return event{}, false
}

func automaticMove(e event) bool {
	return e.Type == "region_moved" && (e.Fields["cause"] == "failover" || e.Fields["cause"] == "balance")
}

// autoMovesDuringMaintenance replays the event log from index 1 (the
// cluster starts with maintenance off) and returns every automatic move
// committed while maintenance was on: the suite's first invariant, no
// automatic move (failover or balance) during maintenance.
func autoMovesDuringMaintenance(events []event) []string {
	on := false
	var bad []string
	for _, e := range events {
		switch e.Type {
		case "maintenance_enabled":
			on = true
		case "maintenance_disabled", "maintenance_expired":
			on = false
		case "region_moved":
			if on && automaticMove(e) {
				bad = append(bad, e.String())
			}
		}
	}
	return bad
}
