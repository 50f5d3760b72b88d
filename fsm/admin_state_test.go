package fsm_test

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
)

// Helpers of this file carry an "adm" prefix so that they never clash with
// the region tests' helpers.

func admRegister(id uint64) step {
	return step{fsm.CmdRegisterDatanode, fsm.RegisterDatanode{ID: id, Addr: fmt.Sprintf("10.0.2.%d:4001", id), Time: at(0)}}
}

func admSet(id uint64, state, by string, when time.Time) step {
	return step{fsm.CmdSetAdminState, fsm.SetDatanodeAdminState{ID: id, State: state, By: by, Time: when}}
}

func admMove(cause string, moves ...fsm.Move) step {
	return step{fsm.CmdMoveRegions, fsm.MoveRegions{Cause: cause, Moves: moves, By: "admtest", Time: at(time.Hour)}}
}

func admMv(region, from, to uint64) fsm.Move { return fsm.Move{Region: region, From: from, To: to} }

// admCluster registers datanodes 1-3 and creates table "adm" with regions
// 1..3 on datanode 1 and region 4 on datanode 2.
func admCluster() []step {
	return []step{admRegister(1), admRegister(2), admRegister(3),
		{fsm.CmdCreateTable, fsm.CreateTable{Name: "adm", Placement: []uint64{1, 1, 1, 2}, Time: at(time.Second)}}}
}

func admState(t *testing.T, f *fsm.FSM, id uint64) string {
	t.Helper()
	d, ok := f.Datanode(id)
	if !ok {
		t.Fatalf("datanode %d missing", id)
	}
	return d.AdminState
}

func TestSetDatanodeAdminStateTransitions(t *testing.T) {
	f := newFSM(t, 0)
	idx := applyAll(t, f, 1, admCluster())
	if got := admState(t, f, 2); got != fsm.AdminActive {
		t.Fatalf("a registered datanode starts %q, want active", got)
	}
	// Every transition between the three states is allowed, and each one
	// that changes the state leaves one event with the raft index, time,
	// who and the new state.
	steps := []struct {
		state  string
		change bool
	}{
		{fsm.AdminCordoned, true},
		{fsm.AdminCordoned, false}, // idempotent: no event
		{fsm.AdminDraining, true},  // cordoned → draining
		{fsm.AdminDraining, false},
		{fsm.AdminCordoned, true}, // draining → cordoned (stop draining, stay cordoned)
		{fsm.AdminActive, true},   // uncordon
		{fsm.AdminActive, false},
		{fsm.AdminDraining, true}, // active → draining directly
		{fsm.AdminActive, true},   // draining → active
	}
	for i, s := range steps {
		evsBefore, _ := f.Events(0, 0)
		when := at(time.Duration(i+1) * time.Minute)
		by := fmt.Sprintf("op%d", i)
		st := admSet(2, s.state, by, when)
		r := f.Apply(idx, enc(t, st.typ, st.payload))
		if !r.Applied || r.Code != "" || r.Index != idx {
			t.Fatalf("step %d → %s: %+v", i, s.state, r)
		}
		if got := admState(t, f, 2); got != s.state {
			t.Fatalf("step %d: state %q, want %q", i, got, s.state)
		}
		evs, _ := f.Events(0, 0)
		added := evs[len(evsBefore):]
		if !s.change {
			if len(added) != 0 {
				t.Errorf("step %d: unchanged state %s added events %+v", i, s.state, added)
			}
		} else {
			want := fsm.Event{Index: idx, Time: when, Type: fsm.EventDatanodeAdminState, By: by,
				Fields: map[string]string{"datanode": "2", "state": s.state}}
			if len(added) != 1 || !eventEqual(added[0], want) {
				t.Errorf("step %d: events %+v, want %+v", i, added, want)
			}
		}
		// Other datanodes are untouched.
		if admState(t, f, 1) != fsm.AdminActive || admState(t, f, 3) != fsm.AdminActive {
			t.Errorf("step %d changed another datanode", i)
		}
		idx++
	}
}

func TestSetDatanodeAdminStateRejects(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cmd      fsm.SetDatanodeAdminState
		wantCode string
	}{
		{"unknown datanode", fsm.SetDatanodeAdminState{ID: 9, State: fsm.AdminCordoned}, fsm.RejectNotFound},
		{"datanode 0", fsm.SetDatanodeAdminState{ID: 0, State: fsm.AdminCordoned}, fsm.RejectNotFound},
		{"unknown state", fsm.SetDatanodeAdminState{ID: 1, State: "decommissioned"}, fsm.RejectInvalid},
		{"empty state", fsm.SetDatanodeAdminState{ID: 1, State: ""}, fsm.RejectInvalid},
		{"state in the wrong case", fsm.SetDatanodeAdminState{ID: 1, State: "Cordoned"}, fsm.RejectInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(t, 0)
			idx := applyAll(t, f, 1, admCluster())
			evsBefore, _ := f.Events(0, 0)
			snapBefore := snapshotBytes(t, f)
			r := f.Apply(idx, enc(t, fsm.CmdSetAdminState, tc.cmd))
			if r.Applied || r.Code != tc.wantCode || r.Reason == "" {
				t.Errorf("got %+v, want rejected %q with a reason", r, tc.wantCode)
			}
			evs, _ := f.Events(0, 0)
			if len(evs) != len(evsBefore) {
				t.Errorf("a rejected admin state change added events: %+v", evs[len(evsBefore):])
			}
			if admState(t, f, 1) != fsm.AdminActive {
				t.Errorf("datanode 1 changed to %q", admState(t, f, 1))
			}
			// Only the applied index moved.
			f2 := newFSM(t, 0)
			if err := f2.Restore(bytes.NewReader(snapBefore)); err != nil {
				t.Fatal(err)
			}
			f2.Skip(idx)
			if a, b := snapshotBytes(t, f), snapshotBytes(t, f2); string(a) != string(b) {
				t.Errorf("state changed by a rejected command:\n%s\n%s", b, a)
			}
		})
	}
}

// TestAdminStateSurvives: re-registration (a datanode restarting on a new
// address) keeps the admin state, and so do snapshot and restore.
func TestAdminStateSurvives(t *testing.T) {
	f := newFSM(t, 0)
	idx := applyAll(t, f, 1, admCluster())
	idx = applyAll(t, f, idx, []step{admSet(1, fsm.AdminDraining, "op", at(time.Minute)), admSet(2, fsm.AdminCordoned, "op", at(time.Minute)),
		{fsm.CmdRegisterDatanode, fsm.RegisterDatanode{ID: 1, Addr: "10.9.9.9:4001", Time: at(2 * time.Minute)}}})
	if got := admState(t, f, 1); got != fsm.AdminDraining {
		t.Errorf("after re-registering, datanode 1 is %q, want draining", got)
	}
	f2 := newFSM(t, 0)
	if err := f2.Restore(bytes.NewReader(snapshotBytes(t, f))); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f2.Datanodes(), f.Datanodes()) {
		t.Errorf("restored datanodes %+v, want %+v", f2.Datanodes(), f.Datanodes())
	}
	// The restored FSM enforces the cordon exactly like the original.
	mvStep := admMove(fsm.CauseManual, admMv(4, 2, 1), admMv(1, 1, 3))
	r1 := f.Apply(idx, enc(t, mvStep.typ, mvStep.payload))
	r2 := f2.Apply(idx, enc(t, mvStep.typ, mvStep.payload))
	if !reflect.DeepEqual(r1, r2) {
		t.Errorf("restored FSM answers %+v, original %+v", r2, r1)
	}
	if len(r1.Moved) != 1 || r1.Moved[0] != admMv(1, 1, 3) || len(r1.Rejected) != 1 || r1.Rejected[0].Code != fsm.RejectCordoned {
		t.Errorf("moved %v rejected %+v: want 1→3 moved, 4→1 (draining) rejected as cordoned", r1.Moved, r1.Rejected)
	}
}

// TestMovesAndAdminState: cordoned and draining datanodes take no regions,
// whatever the cause; they can still give regions away; and maintenance
// admits drain (an operator asked) but not balance.
func TestMovesAndAdminState(t *testing.T) {
	on := enable("window", "alice", 0, at(30*time.Second))
	cases := []struct {
		name        string
		setup       []step
		cmd         step
		wantApplied bool
		wantCode    string
		wantMoved   []fsm.Move
		wantRejects map[uint64]string
	}{
		{name: "balance onto a cordoned datanode", setup: []step{admSet(3, fsm.AdminCordoned, "op", at(time.Minute))},
			cmd:      admMove(fsm.CauseBalance, admMv(1, 1, 3)),
			wantCode: fsm.RejectCordoned, wantRejects: map[uint64]string{1: fsm.RejectCordoned}},
		{name: "drain onto a draining datanode", setup: []step{admSet(1, fsm.AdminDraining, "op", at(time.Minute)), admSet(3, fsm.AdminDraining, "op", at(time.Minute))},
			cmd:      admMove(fsm.CauseDrain, admMv(1, 1, 3)),
			wantCode: fsm.RejectCordoned, wantRejects: map[uint64]string{1: fsm.RejectCordoned}},
		{name: "failover onto a draining datanode", setup: []step{admSet(3, fsm.AdminDraining, "op", at(time.Minute))},
			cmd:      admMove(fsm.CauseFailover, admMv(1, 1, 3)),
			wantCode: fsm.RejectCordoned, wantRejects: map[uint64]string{1: fsm.RejectCordoned}},
		{name: "manual onto a cordoned datanode", setup: []step{admSet(2, fsm.AdminCordoned, "op", at(time.Minute))},
			cmd:      admMove(fsm.CauseManual, admMv(1, 1, 2)),
			wantCode: fsm.RejectCordoned, wantRejects: map[uint64]string{1: fsm.RejectCordoned}},
		{name: "mixed batch: only the move onto the cordoned datanode is rejected",
			setup:       []step{admSet(3, fsm.AdminCordoned, "op", at(time.Minute))},
			cmd:         admMove(fsm.CauseBalance, admMv(1, 1, 3), admMv(2, 1, 2), admMv(3, 1, 3)),
			wantApplied: true, wantMoved: []fsm.Move{admMv(2, 1, 2)},
			wantRejects: map[uint64]string{1: fsm.RejectCordoned, 3: fsm.RejectCordoned}},
		{name: "a cordoned datanode gives regions away", setup: []step{admSet(1, fsm.AdminCordoned, "op", at(time.Minute))},
			cmd:         admMove(fsm.CauseBalance, admMv(1, 1, 3)),
			wantApplied: true, wantMoved: []fsm.Move{admMv(1, 1, 3)}},
		{name: "uncordoned datanode takes regions again",
			setup:       []step{admSet(3, fsm.AdminCordoned, "op", at(time.Minute)), admSet(3, fsm.AdminActive, "op", at(2*time.Minute))},
			cmd:         admMove(fsm.CauseBalance, admMv(1, 1, 3)),
			wantApplied: true, wantMoved: []fsm.Move{admMv(1, 1, 3)}},
		{name: "drain accepted during maintenance", setup: []step{on, admSet(1, fsm.AdminDraining, "op", at(time.Minute))},
			cmd:         admMove(fsm.CauseDrain, admMv(1, 1, 2), admMv(2, 1, 3)),
			wantApplied: true, wantMoved: []fsm.Move{admMv(1, 1, 2), admMv(2, 1, 3)}},
		{name: "balance rejected during maintenance", setup: []step{on},
			cmd:      admMove(fsm.CauseBalance, admMv(1, 1, 2), admMv(2, 1, 3)),
			wantCode: fsm.RejectMaintenance, wantRejects: map[uint64]string{1: fsm.RejectMaintenance, 2: fsm.RejectMaintenance}},
		{name: "balance off a draining datanode is still rejected during maintenance",
			setup:    []step{on, admSet(1, fsm.AdminDraining, "op", at(time.Minute))},
			cmd:      admMove(fsm.CauseBalance, admMv(1, 1, 2)),
			wantCode: fsm.RejectMaintenance, wantRejects: map[uint64]string{1: fsm.RejectMaintenance}},
		{name: "drain during maintenance still never lands on a cordoned datanode",
			setup:       []step{on, admSet(1, fsm.AdminDraining, "op", at(time.Minute)), admSet(3, fsm.AdminCordoned, "op", at(time.Minute))},
			cmd:         admMove(fsm.CauseDrain, admMv(1, 1, 3), admMv(2, 1, 2)),
			wantApplied: true, wantMoved: []fsm.Move{admMv(2, 1, 2)}, wantRejects: map[uint64]string{1: fsm.RejectCordoned}},
		{name: "drain with a stale owner", setup: []step{on, admSet(2, fsm.AdminDraining, "op", at(time.Minute))},
			cmd:      admMove(fsm.CauseDrain, admMv(4, 1, 3)),
			wantCode: fsm.RejectStaleOwner, wantRejects: map[uint64]string{4: fsm.RejectStaleOwner}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(t, 0)
			idx := applyAll(t, f, 1, append(admCluster(), tc.setup...))
			ownersBefore := map[uint64]uint64{}
			for _, r := range f.Regions() {
				ownersBefore[r.ID] = r.Datanode
			}
			r := f.Apply(idx, enc(t, tc.cmd.typ, tc.cmd.payload))
			if r.Applied != tc.wantApplied || r.Code != tc.wantCode {
				t.Errorf("applied=%t code=%q (%s), want applied=%t code=%q", r.Applied, r.Code, r.Reason, tc.wantApplied, tc.wantCode)
			}
			if len(r.Moved) != 0 || len(tc.wantMoved) != 0 {
				if !reflect.DeepEqual(r.Moved, tc.wantMoved) {
					t.Errorf("moved %v, want %v", r.Moved, tc.wantMoved)
				}
			}
			got := map[uint64]string{}
			for _, rj := range r.Rejected {
				got[rj.Move.Region] = rj.Code
			}
			if len(got) != 0 || len(tc.wantRejects) != 0 {
				if !reflect.DeepEqual(got, tc.wantRejects) {
					t.Errorf("rejected %v, want %v", got, tc.wantRejects)
				}
			}
			want := map[uint64]uint64{}
			for id, dn := range ownersBefore {
				want[id] = dn
			}
			for _, m := range tc.wantMoved {
				want[m.Region] = m.To
			}
			gotOwners := map[uint64]uint64{}
			for _, reg := range f.Regions() {
				gotOwners[reg.ID] = reg.Datanode
			}
			if !reflect.DeepEqual(gotOwners, want) {
				t.Errorf("owners %v, want %v", gotOwners, want)
			}
			// No region ever ends on a cordoned or draining datanode
			// unless it was there before.
			for _, reg := range f.Regions() {
				if st := admState(t, f, reg.Datanode); st != fsm.AdminActive && ownersBefore[reg.ID] != reg.Datanode {
					t.Errorf("region %d moved onto %s datanode %d", reg.ID, st, reg.Datanode)
				}
			}
		})
	}
}

// TestDrainDuringMaintenanceEvents: a drain during maintenance leaves the
// admin state event and one region_moved per move with cause drain; a
// balance attempt in the same window leaves one move_rejected.
func TestDrainDuringMaintenanceEvents(t *testing.T) {
	f := newFSM(t, 0)
	idx := applyAll(t, f, 1, append(admCluster(), enable("window", "alice", 0, at(30*time.Second))))
	first := idx
	idx = applyAll(t, f, idx, []step{admSet(1, fsm.AdminDraining, "bob", at(time.Minute))})
	bal := admMove(fsm.CauseBalance, admMv(4, 2, 3))
	if r := f.Apply(idx, enc(t, bal.typ, bal.payload)); r.Code != fsm.RejectMaintenance {
		t.Fatalf("balance during maintenance: %+v", r)
	}
	idx++
	dr := admMove(fsm.CauseDrain, admMv(1, 1, 2), admMv(2, 1, 3), admMv(3, 1, 2))
	if r := f.Apply(idx, enc(t, dr.typ, dr.payload)); !r.Applied || len(r.Moved) != 3 {
		t.Fatalf("drain during maintenance: %+v", r)
	}
	evs, _ := f.Events(first-1, 0)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	wantTypes := []string{fsm.EventDatanodeAdminState, fsm.EventMoveRejected, fsm.EventRegionMoved, fsm.EventRegionMoved, fsm.EventRegionMoved}
	if !reflect.DeepEqual(types, wantTypes) {
		t.Fatalf("event types %v, want %v", types, wantTypes)
	}
	if e := evs[0]; e.By != "bob" || e.Fields["state"] != fsm.AdminDraining || e.Fields["datanode"] != "1" || e.Index != first {
		t.Errorf("admin state event %+v", e)
	}
	if e := evs[1]; e.Fields["cause"] != fsm.CauseBalance || e.Index != idx-1 {
		t.Errorf("move_rejected event %+v", e)
	}
	for _, e := range evs[2:] {
		if e.Fields["cause"] != fsm.CauseDrain || e.Fields["from"] != "1" || e.Index != idx || e.By != "admtest" {
			t.Errorf("region_moved event %+v", e)
		}
	}
	if n := len(f.RegionsOf(1)); n != 0 {
		t.Errorf("datanode 1 still owns %d regions", n)
	}
	// Drained: now it can be removed.
	rm := step{fsm.CmdRemoveDatanode, fsm.RemoveDatanode{ID: 1, Time: at(2 * time.Hour)}}
	if r := f.Apply(idx+1, enc(t, rm.typ, rm.payload)); !r.Applied {
		t.Errorf("removing the drained datanode: %+v", r)
	}
}
