package fsm_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
)

// ringFSM applies five member joins at indexes 10, 12, 14, 16, 18 (gaps so
// that "newest dropped + 1" differs from "oldest kept").
func ringFSM(t *testing.T, capacity int) *fsm.FSM {
	t.Helper()
	f := newFSM(t, capacity)
	for i := range 5 {
		idx := uint64(10 + 2*i)
		m := fsm.Member{ID: fmt.Sprintf("m%d", i), RaftAddr: fmt.Sprintf("10.0.0.%d:7000", i)}
		if r := f.Apply(idx, enc(t, fsm.CmdSetMember, fsm.SetMember{Member: m, Time: at(time.Duration(i) * time.Minute)})); !r.Applied {
			t.Fatalf("apply %d: %+v", idx, r)
		}
	}
	return f
}

func TestEventRing(t *testing.T) {
	cases := []struct {
		name      string
		capacity  int
		since     uint64
		limit     int
		want      []uint64
		wantFirst uint64
	}{
		{"cap 3 keeps the last 3", 3, 0, 0, []uint64{14, 16, 18}, 13},
		{"cap 3 since before the ring", 3, 5, 0, []uint64{14, 16, 18}, 13},
		{"cap 3 since a dropped index", 3, 12, 0, []uint64{14, 16, 18}, 13},
		{"cap 3 since oldest kept", 3, 14, 0, []uint64{16, 18}, 13},
		{"cap 3 since between indexes", 3, 15, 0, []uint64{16, 18}, 13},
		{"cap 3 since newest", 3, 18, 0, []uint64{}, 13},
		{"cap 3 since beyond newest", 3, 1000, 0, []uint64{}, 13},
		{"cap 3 limit 2", 3, 0, 2, []uint64{14, 16}, 13},
		{"cap 3 since + limit", 3, 14, 1, []uint64{16}, 13},
		{"cap 3 limit larger than result", 3, 16, 5, []uint64{18}, 13},
		{"cap 3 negative limit means no limit", 3, 0, -1, []uint64{14, 16, 18}, 13},
		{"cap 1", 1, 0, 0, []uint64{18}, 17},
		{"cap 5 exactly full: nothing dropped", 5, 0, 0, []uint64{10, 12, 14, 16, 18}, 1},
		{"cap 4", 4, 0, 0, []uint64{12, 14, 16, 18}, 11},
		{"default cap", 0, 11, 0, []uint64{12, 14, 16, 18}, 1},
		{"default cap limit 1", 0, 0, 1, []uint64{10}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := ringFSM(t, tc.capacity)
			evs, first := f.Events(tc.since, tc.limit)
			if got := eventIndexes(evs); !equalU64(got, tc.want) || first != tc.wantFirst {
				t.Errorf("Events(%d, %d) = %v first=%d, want %v first=%d", tc.since, tc.limit, got, first, tc.want, tc.wantFirst)
			}
			if evs == nil {
				t.Errorf("Events returned nil; want an empty slice")
			}
		})
	}
}

func TestEventRingMissedDetection(t *testing.T) {
	f := ringFSM(t, 3)
	// A reader at since=N missed nothing iff firstIndex <= N+1.
	for _, tc := range []struct {
		since  uint64
		missed bool
	}{{0, true}, {11, true}, {12, false}, {13, false}, {18, false}} {
		_, first := f.Events(tc.since, 0)
		if got := first > tc.since+1; got != tc.missed {
			t.Errorf("since=%d first=%d: missed=%t, want %t", tc.since, first, got, tc.missed)
		}
	}
}

func TestEventsEmpty(t *testing.T) {
	f := newFSM(t, 3)
	evs, first := f.Events(0, 0)
	if evs == nil || len(evs) != 0 || first != 1 {
		t.Errorf("fresh Events = %v first=%d", evs, first)
	}
}

// Watch events live in a ring of their own: many of them push no change
// log record out, they merge with it by index, they survive a snapshot,
// and a bad one is refused.
func TestWatchRing(t *testing.T) {
	f := ringFSM(t, 5) // change log: 10, 12, 14, 16, 18 (full)
	idx := uint64(19)
	for i := range fsm.WatchCapacity + 10 {
		c := fsm.RecordWatchEvent{Type: fsm.EventDatanodeSuspect, Datanode: uint64(i%3 + 1), Addr: "dn:4001", Time: at(time.Hour)}
		if i == 0 {
			c = fsm.RecordWatchEvent{Type: fsm.EventLeaderElected, Node: "m1", Term: 7, Time: at(time.Hour)}
		}
		if r := f.Apply(idx, enc(t, fsm.CmdRecordWatchEvent, c)); !r.Applied {
			t.Fatalf("apply %d: %+v", idx, r)
		}
		idx++
	}
	if plain, _ := f.Events(0, 0); len(plain) != 5 {
		t.Fatalf("without watch: %d events, want the 5 records", len(plain))
	}
	evs, first := f.EventsWith(0, 0, true)
	if first != 1 || len(evs) != 5+fsm.WatchCapacity {
		t.Fatalf("%d events from %d, want the 5 records and %d watch events", len(evs), first, fsm.WatchCapacity)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Index <= evs[i-1].Index {
			t.Fatalf("not in index order at %d: %d after %d", i, evs[i].Index, evs[i-1].Index)
		}
	}
	if evs[0].Index != 10 || evs[4].Index != 18 || evs[5].Type != fsm.EventDatanodeSuspect {
		t.Fatalf("merge: %+v ... %+v", evs[0], evs[5])
	}
	if got, _ := f.EventsWith(17, 2, true); len(got) != 2 || got[0].Index != 18 || got[1].Type != fsm.EventDatanodeSuspect {
		t.Fatalf("since 17 limit 2: %+v", got)
	}
	g := newFSM(t, 5)
	if err := g.Restore(bytes.NewReader(snapshotBytes(t, f))); err != nil {
		t.Fatal(err)
	}
	if got, _ := g.EventsWith(0, 0, true); len(got) != len(evs) {
		t.Fatalf("after restore: %d events, want %d", len(got), len(evs))
	}
	for _, bad := range []fsm.RecordWatchEvent{{Type: "maintenance_enabled"}, {Type: fsm.EventLeaderElected}, {Type: fsm.EventDatanodeFailed}} {
		if r := f.Apply(idx, enc(t, fsm.CmdRecordWatchEvent, bad)); r.Applied || r.Code != fsm.RejectInvalid {
			t.Fatalf("%+v: %+v", bad, r)
		}
		idx++
	}
}
