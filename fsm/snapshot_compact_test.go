package fsm_test

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
)

// TestCompactSnapshotRoundTrip: a state with moved, dropped and created
// regions restores from format 2 exactly as from format 1.
func TestCompactSnapshotRoundTrip(t *testing.T) {
	f := bigFSM(t, 7, 25_000)
	idx := uint64(1000)
	now := time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC)
	res := f.Apply(idx, enc(t, fsm.CmdMoveRegions, fsm.MoveRegions{Cause: fsm.CauseManual, Time: now,
		Moves: []fsm.Move{{Region: 3, From: 3, To: 5}, {Region: 10, From: 3, To: 1}}}))
	if len(res.Moved) != 2 {
		t.Fatalf("moves: %+v", res)
	}
	if res := f.Apply(idx+1, enc(t, fsm.CmdDropTable, fsm.DropTable{Name: "table_0001", Time: now})); !res.Applied {
		t.Fatalf("drop: %+v", res)
	}
	st := f.Snapshot()
	var v1, v2 bytes.Buffer
	if err := fsm.WriteSnapshot(&v1, st); err != nil {
		t.Fatal(err)
	}
	if err := fsm.WriteSnapshotCompact(&v2, st); err != nil {
		t.Fatal(err)
	}
	if v2.Len()*3 > v1.Len() {
		t.Errorf("format 2 is %d bytes, format 1 %d: want at least 3× smaller", v2.Len(), v1.Len())
	}
	compact := bytes.Clone(v2.Bytes())
	g1, g2 := newFSM(t, 0), newFSM(t, 0)
	if err := g1.Restore(&v1); err != nil {
		t.Fatal(err)
	}
	if err := g2.Restore(bytes.NewReader(compact)); err != nil {
		t.Fatal(err)
	}
	assertSameQueries(t, f, g2)
	assertSameQueries(t, g1, g2)
	if !reflect.DeepEqual(g1.Regions(), g2.Regions()) || !reflect.DeepEqual(g1.Tables(), g2.Tables()) {
		t.Fatal("format 2 restores other routes or tables than format 1")
	}
	for dn := uint64(1); dn <= 7; dn++ {
		if !reflect.DeepEqual(f.RegionsOf(dn), g2.RegionsOf(dn)) {
			t.Fatalf("RegionsOf(%d) differs after restore", dn)
		}
	}
	// A truncated format 2 snapshot is refused, not half-restored.
	g3 := newFSM(t, 0)
	if err := g3.Restore(bytes.NewReader(compact[:len(compact)-10])); err == nil {
		t.Fatal("truncated format 2 snapshot restored without error")
	}
}

// TestCompactSnapshotCoversRegion fails when Region gains a field that
// format 2 does not encode: extend WriteSnapshotCompact/readCompact first.
func TestCompactSnapshotCoversRegion(t *testing.T) {
	var got []string
	rt := reflect.TypeOf(fsm.Region{})
	for i := 0; i < rt.NumField(); i++ {
		got = append(got, rt.Field(i).Name)
	}
	want := []string{"ID", "Table", "Datanode", "PrevDatanode", "Version", "MovedAt"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fsm.Region fields are %v; snapshot format 2 encodes %v", got, want)
	}
}
