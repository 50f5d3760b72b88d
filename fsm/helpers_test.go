package fsm_test

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
)

// t0 is the base of every timestamp in these tests; Apply never reads a clock.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func tp(t time.Time) *time.Time { return &t }

func u64(v uint64) *uint64 { return &v }

// step is one command to encode and apply.
type step struct {
	typ     string
	payload any
}

func enc(t testing.TB, typ string, payload any) []byte {
	t.Helper()
	b, err := fsm.Encode(typ, payload)
	if err != nil {
		t.Fatalf("Encode(%s): %v", typ, err)
	}
	return b
}

type unknownCall struct {
	index uint64
	typ   string
	v     int
}

// newFSM returns an FSM whose OnUnknown hook fails the test; use
// newRecordingFSM where unknown entries are expected.
func newFSM(t testing.TB, capacity int) *fsm.FSM {
	t.Helper()
	return fsm.New(fsm.Config{EventCapacity: capacity, OnUnknown: func(index uint64, typ string, v int) {
		t.Errorf("unexpected OnUnknown(%d, %q, %d)", index, typ, v)
	}})
}

func newRecordingFSM(capacity int) (*fsm.FSM, *[]unknownCall) {
	var calls []unknownCall
	f := fsm.New(fsm.Config{EventCapacity: capacity, OnUnknown: func(index uint64, typ string, v int) {
		calls = append(calls, unknownCall{index, typ, v})
	}})
	return f, &calls
}

// applyAll applies steps at indexes first, first+1, ... and fails the test on
// any result that is neither applied nor a no-op.
func applyAll(t testing.TB, f *fsm.FSM, first uint64, steps []step) uint64 {
	t.Helper()
	idx := first
	for _, s := range steps {
		r := f.Apply(idx, enc(t, s.typ, s.payload))
		if r.Code != "" {
			t.Fatalf("setup step %d (%s) rejected: %s: %s", idx, s.typ, r.Code, r.Reason)
		}
		idx++
	}
	return idx
}

func snapshotBytes(t testing.TB, f *fsm.FSM) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := fsm.WriteSnapshot(&buf, f.Snapshot()); err != nil {
		t.Fatalf("WriteSnapshot: %v", err)
	}
	return buf.Bytes()
}

func fmtTime(p *time.Time) string {
	if p == nil {
		return "nil"
	}
	return p.UTC().Format(time.RFC3339Nano)
}

func fmtM(m fsm.Maintenance) string {
	return fmt.Sprintf("{enabled=%t epoch=%d reason=%q by=%q since=%s expires_at=%s}",
		m.Enabled, m.Epoch, m.Reason, m.By, fmtTime(m.Since), fmtTime(m.ExpiresAt))
}

func timePtrEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func maintEqual(a, b fsm.Maintenance) bool {
	return a.Enabled == b.Enabled && a.Epoch == b.Epoch && a.Reason == b.Reason && a.By == b.By &&
		timePtrEqual(a.Since, b.Since) && timePtrEqual(a.ExpiresAt, b.ExpiresAt)
}

func eventEqual(a, b fsm.Event) bool {
	if len(a.Fields) == 0 && len(b.Fields) == 0 {
		a.Fields, b.Fields = nil, nil
	}
	at, bt := a.Time, b.Time
	a.Time, b.Time = time.Time{}, time.Time{}
	return at.Equal(bt) && reflect.DeepEqual(a, b)
}

func eventsEqual(a, b []fsm.Event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !eventEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

func eventIndexes(evs []fsm.Event) []uint64 {
	out := []uint64{}
	for _, e := range evs {
		out = append(out, e.Index)
	}
	return out
}

// lastEvent returns the newest event in the ring.
func lastEvent(t testing.TB, f *fsm.FSM) (fsm.Event, bool) {
	t.Helper()
	evs, _ := f.Events(0, 0)
	if len(evs) == 0 {
		return fsm.Event{}, false
	}
	return evs[len(evs)-1], true
}

// assertSameQueries checks that two FSMs answer every query identically.
func assertSameQueries(t *testing.T, want, got *fsm.FSM) {
	t.Helper()
	if w, g := want.AppliedIndex(), got.AppliedIndex(); w != g {
		t.Errorf("AppliedIndex: want %d, got %d", w, g)
	}
	if w, g := want.ClusterID(), got.ClusterID(); w != g {
		t.Errorf("ClusterID: want %q, got %q", w, g)
	}
	if w, g := want.Maintenance(), got.Maintenance(); !maintEqual(w, g) {
		t.Errorf("Maintenance:\nwant %s\n got %s", fmtM(w), fmtM(g))
	}
	wm, gm := want.Members(), got.Members()
	if !reflect.DeepEqual(wm, gm) {
		t.Errorf("Members:\nwant %+v\n got %+v", wm, gm)
	}
	for _, m := range wm {
		g, ok := got.Member(m.ID)
		if !ok || !reflect.DeepEqual(g, m) {
			t.Errorf("Member(%q): want %+v, got %+v (ok=%t)", m.ID, m, g, ok)
		}
	}
	if _, ok := got.Member("no-such-member"); ok {
		t.Errorf("Member(no-such-member) found")
	}
	wAll, _ := want.Events(0, 0)
	sinces := []uint64{0}
	for _, e := range wAll {
		sinces = append(sinces, e.Index-1, e.Index, e.Index+1)
	}
	for _, since := range sinces {
		for _, limit := range []int{0, 1, 2, 100} {
			we, wf := want.Events(since, limit)
			ge, gf := got.Events(since, limit)
			if wf != gf || !eventsEqual(we, ge) {
				t.Errorf("Events(%d, %d):\nwant %v first=%d\n got %v first=%d",
					since, limit, eventIndexes(we), wf, eventIndexes(ge), gf)
			}
		}
	}
}
