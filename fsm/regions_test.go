package fsm_test

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
)

func register(id uint64, when time.Time) step {
	return step{fsm.CmdRegisterDatanode, fsm.RegisterDatanode{ID: id, Addr: fmt.Sprintf("10.0.1.%d:4001", id), Time: when}}
}

func createTable(name string, when time.Time, placement ...uint64) step {
	return step{fsm.CmdCreateTable, fsm.CreateTable{Name: name, Placement: placement, By: "op", Time: when}}
}

func moveRegions(cause string, when time.Time, moves ...fsm.Move) step {
	return step{fsm.CmdMoveRegions, fsm.MoveRegions{Cause: cause, Moves: moves, By: "tester", Time: when}}
}

func mv(region, from, to uint64) fsm.Move { return fsm.Move{Region: region, From: from, To: to} }

func setAdmin(id uint64, state string, when time.Time) step {
	return step{fsm.CmdSetAdminState, fsm.SetDatanodeAdminState{ID: id, State: state, By: "op", Time: when}}
}

// cluster3 registers datanodes 1-3 and creates table "cpu" with regions
// 1..4 on datanodes 1, 2, 3, 1.
func cluster3() []step {
	return []step{
		register(1, at(0)), register(2, at(0)), register(3, at(0)),
		createTable("cpu", at(time.Second), 1, 2, 3, 1),
	}
}

func with(base []step, more ...step) []step {
	return append(append([]step(nil), base...), more...)
}

func owners(f *fsm.FSM) map[uint64]uint64 {
	out := map[uint64]uint64{}
	for _, r := range f.Regions() {
		out[r.ID] = r.Datanode
	}
	return out
}

var cluster3Owners = map[uint64]uint64{1: 1, 2: 2, 3: 3, 4: 1}

func TestMoveRegions(t *testing.T) {
	on := enable("upgrade", "alice", 0, at(time.Minute))
	off := disable("done", "alice", at(2*time.Minute))
	cases := []struct {
		name        string
		setup       []step
		cmd         step
		wantApplied bool
		wantCode    string
		wantMoved   []fsm.Move
		wantRejects map[uint64]string // region → rejection code
		wantOwners  map[uint64]uint64
	}{
		// The safety rule: an allow-list of operator causes during maintenance.
		{name: "failover rejected during maintenance", setup: with(cluster3(), on),
			cmd:      moveRegions(fsm.CauseFailover, at(time.Hour), mv(1, 1, 2), mv(4, 1, 3)),
			wantCode: fsm.RejectMaintenance, wantRejects: map[uint64]string{1: fsm.RejectMaintenance, 4: fsm.RejectMaintenance},
			wantOwners: cluster3Owners},
		{name: "balance rejected during maintenance", setup: with(cluster3(), on),
			cmd:      moveRegions(fsm.CauseBalance, at(time.Hour), mv(1, 1, 2)),
			wantCode: fsm.RejectMaintenance, wantRejects: map[uint64]string{1: fsm.RejectMaintenance},
			wantOwners: cluster3Owners},
		{name: "manual accepted during maintenance", setup: with(cluster3(), on),
			cmd:         moveRegions(fsm.CauseManual, at(time.Hour), mv(1, 1, 2)),
			wantApplied: true, wantMoved: []fsm.Move{mv(1, 1, 2)},
			wantOwners: map[uint64]uint64{1: 2, 2: 2, 3: 3, 4: 1}},
		{name: "drain from a datanode that is not draining rejected", setup: with(cluster3(), on),
			cmd:         moveRegions(fsm.CauseDrain, at(time.Hour), mv(1, 1, 3)),
			wantApplied: false, wantCode: fsm.RejectNotDraining, wantRejects: map[uint64]string{1: fsm.RejectNotDraining},
			wantOwners: cluster3Owners},
		{name: "drain accepted during maintenance", setup: with(cluster3(), setAdmin(1, fsm.AdminDraining, at(time.Minute)), on),
			cmd:         moveRegions(fsm.CauseDrain, at(time.Hour), mv(1, 1, 3), mv(4, 1, 2)),
			wantApplied: true, wantMoved: []fsm.Move{mv(1, 1, 3), mv(4, 1, 2)},
			wantOwners: map[uint64]uint64{1: 3, 2: 2, 3: 3, 4: 2}},
		{name: "failover accepted when maintenance is off", setup: cluster3(),
			cmd:         moveRegions(fsm.CauseFailover, at(time.Hour), mv(1, 1, 2), mv(4, 1, 3)),
			wantApplied: true, wantMoved: []fsm.Move{mv(1, 1, 2), mv(4, 1, 3)},
			wantOwners: map[uint64]uint64{1: 2, 2: 2, 3: 3, 4: 3}},
		{name: "failover accepted after maintenance was disabled", setup: with(cluster3(), on, off),
			cmd:         moveRegions(fsm.CauseFailover, at(time.Hour), mv(1, 1, 2)),
			wantApplied: true, wantMoved: []fsm.Move{mv(1, 1, 2)},
			wantOwners: map[uint64]uint64{1: 2, 2: 2, 3: 3, 4: 1}},
		{name: "balance accepted after maintenance expired",
			setup:       with(cluster3(), enable("x", "bob", time.Minute, at(time.Minute)), expire(1, at(2*time.Minute))),
			cmd:         moveRegions(fsm.CauseBalance, at(time.Hour), mv(2, 2, 1)),
			wantApplied: true, wantMoved: []fsm.Move{mv(2, 2, 1)},
			wantOwners: map[uint64]uint64{1: 1, 2: 1, 3: 3, 4: 1}},
		{name: "maintenance wins over a valid move list", setup: with(cluster3(), on),
			cmd:      moveRegions(fsm.CauseFailover, at(time.Hour), mv(3, 3, 1)),
			wantCode: fsm.RejectMaintenance, wantRejects: map[uint64]string{3: fsm.RejectMaintenance},
			wantOwners: cluster3Owners},
		// Compare-and-set on the owner, move by move.
		{name: "stale expected owner rejected, the others move", setup: cluster3(),
			cmd:         moveRegions(fsm.CauseFailover, at(time.Hour), mv(1, 1, 2), mv(2, 1, 3), mv(4, 1, 3)),
			wantApplied: true, wantMoved: []fsm.Move{mv(1, 1, 2), mv(4, 1, 3)},
			wantRejects: map[uint64]string{2: fsm.RejectStaleOwner},
			wantOwners:  map[uint64]uint64{1: 2, 2: 2, 3: 3, 4: 3}},
		{name: "every move stale: not applied", setup: with(cluster3(), moveRegions(fsm.CauseManual, at(time.Minute), mv(1, 1, 3))),
			cmd:      moveRegions(fsm.CauseFailover, at(time.Hour), mv(1, 1, 2)),
			wantCode: fsm.RejectStaleOwner, wantRejects: map[uint64]string{1: fsm.RejectStaleOwner},
			wantOwners: map[uint64]uint64{1: 3, 2: 2, 3: 3, 4: 1}},
		{name: "a second failover of the same region (deposed leader) is stale",
			setup:    with(cluster3(), moveRegions(fsm.CauseFailover, at(time.Minute), mv(1, 1, 2))),
			cmd:      moveRegions(fsm.CauseFailover, at(time.Hour), mv(1, 1, 3)),
			wantCode: fsm.RejectStaleOwner, wantRejects: map[uint64]string{1: fsm.RejectStaleOwner},
			wantOwners: map[uint64]uint64{1: 2, 2: 2, 3: 3, 4: 1}},
		{name: "manual with a stale owner is rejected too", setup: with(cluster3(), on),
			cmd:      moveRegions(fsm.CauseManual, at(time.Hour), mv(2, 1, 3)),
			wantCode: fsm.RejectStaleOwner, wantRejects: map[uint64]string{2: fsm.RejectStaleOwner},
			wantOwners: cluster3Owners},
		{name: "unknown region", setup: cluster3(),
			cmd:      moveRegions(fsm.CauseManual, at(time.Hour), mv(99, 1, 2)),
			wantCode: fsm.RejectNotFound, wantRejects: map[uint64]string{99: fsm.RejectNotFound},
			wantOwners: cluster3Owners},
		{name: "unknown target", setup: cluster3(),
			cmd:      moveRegions(fsm.CauseFailover, at(time.Hour), mv(1, 1, 9)),
			wantCode: fsm.RejectNotFound, wantRejects: map[uint64]string{1: fsm.RejectNotFound},
			wantOwners: cluster3Owners},
		{name: "target removed", setup: with(cluster3(), register(4, at(0)), step{fsm.CmdRemoveDatanode, fsm.RemoveDatanode{ID: 4, Time: at(time.Minute)}}),
			cmd:      moveRegions(fsm.CauseFailover, at(time.Hour), mv(1, 1, 4)),
			wantCode: fsm.RejectNotFound, wantRejects: map[uint64]string{1: fsm.RejectNotFound},
			wantOwners: cluster3Owners},
		{name: "cordoned target", setup: with(cluster3(), setAdmin(2, fsm.AdminCordoned, at(time.Minute))),
			cmd:      moveRegions(fsm.CauseManual, at(time.Hour), mv(1, 1, 2)),
			wantCode: fsm.RejectCordoned, wantRejects: map[uint64]string{1: fsm.RejectCordoned},
			wantOwners: cluster3Owners},
		{name: "draining target", setup: with(cluster3(), setAdmin(3, fsm.AdminDraining, at(time.Minute))),
			cmd:         moveRegions(fsm.CauseFailover, at(time.Hour), mv(1, 1, 3), mv(4, 1, 2)),
			wantApplied: true, wantMoved: []fsm.Move{mv(4, 1, 2)}, wantRejects: map[uint64]string{1: fsm.RejectCordoned},
			wantOwners: map[uint64]uint64{1: 1, 2: 2, 3: 3, 4: 2}},
		{name: "already on the target: applied, nothing moves", setup: cluster3(),
			cmd:         moveRegions(fsm.CauseManual, at(time.Hour), mv(2, 2, 2)),
			wantApplied: true, wantOwners: cluster3Owners},
		{name: "unknown cause", setup: cluster3(),
			cmd:      moveRegions("auto", at(time.Hour), mv(1, 1, 2)),
			wantCode: fsm.RejectInvalid, wantOwners: cluster3Owners},
		{name: "empty cause", setup: with(cluster3(), on),
			cmd:      moveRegions("", at(time.Hour), mv(1, 1, 2)),
			wantCode: fsm.RejectInvalid, wantOwners: cluster3Owners},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(t, 0)
			idx := applyAll(t, f, 1, tc.setup)
			before := map[uint64]fsm.Region{}
			for _, r := range f.Regions() {
				before[r.ID] = r
			}
			evsBefore, _ := f.Events(0, 0)

			r := f.Apply(idx, enc(t, tc.cmd.typ, tc.cmd.payload))

			if r.Applied != tc.wantApplied || r.Code != tc.wantCode {
				t.Errorf("applied=%t code=%q (%s), want applied=%t code=%q", r.Applied, r.Code, r.Reason, tc.wantApplied, tc.wantCode)
			}
			if r.Code != "" && r.Reason == "" {
				t.Errorf("rejection %q without a reason", r.Code)
			}
			if !reflect.DeepEqual(r.Moved, tc.wantMoved) {
				t.Errorf("Moved = %+v, want %+v", r.Moved, tc.wantMoved)
			}
			gotRejects := map[uint64]string{}
			for _, rj := range r.Rejected {
				gotRejects[rj.Move.Region] = rj.Code
				if rj.Reason == "" {
					t.Errorf("rejection of region %d without a reason", rj.Move.Region)
				}
			}
			if len(gotRejects) != 0 || len(tc.wantRejects) != 0 {
				if !reflect.DeepEqual(gotRejects, tc.wantRejects) {
					t.Errorf("Rejected = %v, want %v", gotRejects, tc.wantRejects)
				}
			}
			if got := owners(f); !reflect.DeepEqual(got, tc.wantOwners) {
				t.Errorf("owners %v, want %v", got, tc.wantOwners)
			}
			// Moved regions: version bumped, previous owner and move time
			// recorded; all others untouched.
			moved := map[uint64]fsm.Move{}
			for _, m := range tc.wantMoved {
				moved[m.Region] = m
			}
			for _, reg := range f.Regions() {
				old := before[reg.ID]
				if m, ok := moved[reg.ID]; ok {
					if reg.Version != old.Version+1 || reg.PrevDatanode != m.From || !reg.MovedAt.Equal(at(time.Hour)) {
						t.Errorf("moved region %+v: want version %d, prev %d, moved at %v", reg, old.Version+1, m.From, at(time.Hour))
					}
				} else if !reflect.DeepEqual(reg, old) {
					t.Errorf("region %d changed without moving: %+v, was %+v", reg.ID, reg, old)
				}
			}
			// Events: one region_moved per move, or one move_rejected for a
			// maintenance rejection; nothing for other outcomes.
			evs, _ := f.Events(0, 0)
			added := evs[len(evsBefore):]
			cause := tc.cmd.payload.(fsm.MoveRegions).Cause
			switch {
			case tc.wantCode == fsm.RejectMaintenance:
				if len(added) != 1 || added[0].Type != fsm.EventMoveRejected || added[0].Fields["cause"] != cause || added[0].Index != idx {
					t.Errorf("events %+v, want one move_rejected at %d", added, idx)
				}
			default:
				if len(added) != len(tc.wantMoved) {
					t.Fatalf("events %+v, want %d region_moved", added, len(tc.wantMoved))
				}
				for i, ev := range added {
					m := tc.wantMoved[i]
					want := map[string]string{"cause": cause, "region": fmt.Sprint(m.Region), "table": "cpu",
						"from": fmt.Sprint(m.From), "to": fmt.Sprint(m.To), "version": fmt.Sprint(before[m.Region].Version + 1)}
					if cause == fsm.CauseFailover {
						want["phi"] = "0.00"
					}
					if ev.Type != fsm.EventRegionMoved || ev.Index != idx || ev.By != "tester" || !reflect.DeepEqual(ev.Fields, want) {
						t.Errorf("event %d = %+v, want region_moved at %d by tester with %v", i, ev, idx, want)
					}
				}
			}
		})
	}
}

// A failover move records the detector's phi in its event.
func TestMoveRegionsRecordsPhi(t *testing.T) {
	f := newFSM(t, 0)
	idx := applyAll(t, f, 1, cluster3())
	m := mv(1, 1, 2)
	m.Phi = 12.3456
	if r := f.Apply(idx, enc(t, fsm.CmdMoveRegions, fsm.MoveRegions{Cause: fsm.CauseFailover, Moves: []fsm.Move{m}, Time: at(time.Hour)})); !r.Applied {
		t.Fatalf("move rejected: %s %s", r.Code, r.Reason)
	}
	ev, _ := lastEvent(t, f)
	if ev.Fields["phi"] != "12.35" {
		t.Errorf("phi field %q, want 12.35", ev.Fields["phi"])
	}
}

// The check runs against the state at the entry's log position: a failover
// planned while maintenance was off but committed after it was enabled
// does not take effect; the same entry after disable does.
func TestMoveRegionsCheckedAtLogPosition(t *testing.T) {
	f := newFSM(t, 0)
	idx := applyAll(t, f, 1, cluster3())
	planned := moveRegions(fsm.CauseFailover, at(time.Hour), mv(1, 1, 2))
	idx = applyAll(t, f, idx, []step{enable("upgrade", "alice", 0, at(time.Hour))})
	if r := f.Apply(idx, enc(t, planned.typ, planned.payload)); r.Applied || r.Code != fsm.RejectMaintenance {
		t.Fatalf("planned-before-maintenance failover: applied=%t code=%q, want rejected for maintenance", r.Applied, r.Code)
	}
	idx++
	idx = applyAll(t, f, idx, []step{disable("", "alice", at(2*time.Hour))})
	if r := f.Apply(idx, enc(t, planned.typ, planned.payload)); !r.Applied {
		t.Fatalf("failover after disable: %s %s", r.Code, r.Reason)
	}
	if got := owners(f)[1]; got != 2 {
		t.Errorf("region 1 on %d, want 2", got)
	}
}

func TestCreateTable(t *testing.T) {
	cases := []struct {
		name     string
		setup    []step
		cmd      step
		wantCode string
		wantIDs  []uint64 // region ids created, in placement order
	}{
		{"ids from 1 in placement order", []step{register(1, at(0)), register(2, at(0))},
			createTable("cpu", at(time.Minute), 2, 1, 2), "", []uint64{1, 2, 3}},
		{"ids continue across tables", []step{register(1, at(0)), createTable("a", at(0), 1, 1)},
			createTable("b", at(time.Minute), 1), "", []uint64{3}},
		{"ids are not reused after a drop", []step{register(1, at(0)), createTable("a", at(0), 1, 1, 1),
			{fsm.CmdDropTable, fsm.DropTable{Name: "a", Time: at(time.Second)}}},
			createTable("a", at(time.Minute), 1), "", []uint64{4}},
		{"duplicate name", []step{register(1, at(0)), createTable("cpu", at(0), 1)},
			createTable("cpu", at(time.Minute), 1), fsm.RejectExists, nil},
		{"unknown datanode in placement", []step{register(1, at(0))},
			createTable("cpu", at(time.Minute), 1, 5), fsm.RejectNotFound, nil},
		{"no regions", []step{register(1, at(0))},
			createTable("cpu", at(time.Minute)), fsm.RejectInvalid, nil},
		{"no name", []step{register(1, at(0))},
			createTable("", at(time.Minute), 1), fsm.RejectInvalid, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(t, 0)
			idx := applyAll(t, f, 1, tc.setup)
			before := snapshotBytes(t, f)
			r := f.Apply(idx, enc(t, tc.cmd.typ, tc.cmd.payload))
			if r.Code != tc.wantCode {
				t.Fatalf("code %q (%s), want %q", r.Code, r.Reason, tc.wantCode)
			}
			c := tc.cmd.payload.(fsm.CreateTable)
			if tc.wantCode != "" {
				if r.Applied || len(r.Regions) != 0 {
					t.Errorf("rejected create reported applied=%t regions=%v", r.Applied, r.Regions)
				}
				// Nothing changed but the applied index.
				g := newFSM(t, 0)
				if err := g.Restore(bytes.NewReader(before)); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(g.Tables(), f.Tables()) || !reflect.DeepEqual(g.Regions(), f.Regions()) {
					t.Errorf("a rejected create changed tables or regions")
				}
				evs, _ := f.Events(idx-1, 0)
				if len(evs) != 0 {
					t.Errorf("a rejected create added events %+v", evs)
				}
				return
			}
			if !r.Applied || len(r.Regions) != len(tc.wantIDs) {
				t.Fatalf("applied=%t regions=%+v, want %d regions", r.Applied, r.Regions, len(tc.wantIDs))
			}
			var table fsm.Table
			for _, tb := range f.Tables() {
				if tb.Name == c.Name {
					table = tb
				}
			}
			if !reflect.DeepEqual(table.Regions, tc.wantIDs) || !table.CreatedAt.Equal(c.Time) {
				t.Errorf("table %+v, want regions %v created at %v", table, tc.wantIDs, c.Time)
			}
			for i, reg := range r.Regions {
				want := fsm.Region{ID: tc.wantIDs[i], Table: c.Name, Datanode: c.Placement[i], Version: 1, MovedAt: c.Time}
				got, ok := f.Region(want.ID)
				if !ok || !reflect.DeepEqual(got, reg) || reg.ID != want.ID || reg.Table != want.Table ||
					reg.Datanode != want.Datanode || reg.Version != 1 || reg.PrevDatanode != 0 || !reg.MovedAt.Equal(c.Time) {
					t.Errorf("region %d: result %+v, stored %+v, want %+v", i, reg, got, want)
				}
			}
			ev, _ := lastEvent(t, f)
			if ev.Type != fsm.EventTableCreated || ev.Fields["table"] != c.Name || ev.Fields["regions"] != fmt.Sprint(len(tc.wantIDs)) {
				t.Errorf("event %+v, want table_created", ev)
			}
		})
	}
}

func TestDropTable(t *testing.T) {
	f := newFSM(t, 0)
	idx := applyAll(t, f, 1, with(cluster3(), createTable("mem", at(time.Second), 2, 3)))
	r := f.Apply(idx, enc(t, fsm.CmdDropTable, fsm.DropTable{Name: "cpu", Time: at(time.Minute)}))
	if !r.Applied {
		t.Fatalf("drop: %s %s", r.Code, r.Reason)
	}
	if got := owners(f); !reflect.DeepEqual(got, map[uint64]uint64{5: 2, 6: 3}) {
		t.Errorf("regions after drop %v, want only mem's 5 and 6", got)
	}
	if len(f.RegionsOf(1)) != 0 {
		t.Errorf("datanode 1 still owns %+v", f.RegionsOf(1))
	}
	if tbs := f.Tables(); len(tbs) != 1 || tbs[0].Name != "mem" {
		t.Errorf("tables %+v, want only mem", tbs)
	}
	r = f.Apply(idx+1, enc(t, fsm.CmdDropTable, fsm.DropTable{Name: "cpu", Time: at(time.Minute)}))
	if r.Applied || r.Code != fsm.RejectNotFound {
		t.Errorf("second drop: applied=%t code=%q, want not_found", r.Applied, r.Code)
	}
}

func TestRegisterDatanode(t *testing.T) {
	f := newFSM(t, 0)
	idx := applyAll(t, f, 1, []step{register(1, at(0))})
	want := fsm.Datanode{ID: 1, Addr: "10.0.1.1:4001", RegisteredAt: at(0), AdminState: fsm.AdminActive}
	if got, ok := f.Datanode(1); !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("Datanode(1) = %+v, want %+v", got, want)
	}
	nEvents := func() int { evs, _ := f.Events(0, 0); return len(evs) }
	n := nEvents()
	// Same address again: a no-op without an event.
	if r := f.Apply(idx, enc(t, fsm.CmdRegisterDatanode, fsm.RegisterDatanode{ID: 1, Addr: "10.0.1.1:4001", Time: at(time.Hour)})); !r.Applied {
		t.Fatalf("re-register: %s", r.Code)
	}
	if nEvents() != n {
		t.Errorf("re-registering with the same address added an event")
	}
	// New address: updated, registration time and admin state kept.
	idx++
	applyAll(t, f, idx, []step{setAdmin(1, fsm.AdminCordoned, at(time.Minute)),
		{fsm.CmdRegisterDatanode, fsm.RegisterDatanode{ID: 1, Addr: "10.9.9.9:4001", Time: at(time.Hour)}}})
	want.Addr, want.AdminState = "10.9.9.9:4001", fsm.AdminCordoned
	if got, _ := f.Datanode(1); !reflect.DeepEqual(got, want) {
		t.Errorf("after readdress: %+v, want %+v", got, want)
	}
	for _, bad := range []fsm.RegisterDatanode{{ID: 0, Addr: "a:1"}, {ID: 2, Addr: ""}} {
		if r := f.Apply(100, enc(t, fsm.CmdRegisterDatanode, bad)); r.Applied || r.Code != fsm.RejectInvalid {
			t.Errorf("register %+v: applied=%t code=%q, want invalid", bad, r.Applied, r.Code)
		}
	}
	if len(f.Datanodes()) != 1 {
		t.Errorf("datanodes %+v, want only 1", f.Datanodes())
	}
}

func TestRemoveDatanode(t *testing.T) {
	f := newFSM(t, 0)
	idx := applyAll(t, f, 1, cluster3())
	remove := func(id uint64) fsm.Result {
		r := f.Apply(idx, enc(t, fsm.CmdRemoveDatanode, fsm.RemoveDatanode{ID: id, By: "op", Time: at(time.Hour)}))
		idx++
		return r
	}
	if r := remove(1); r.Applied || r.Code != fsm.RejectHasRegions {
		t.Errorf("remove a datanode holding regions: applied=%t code=%q, want has_regions", r.Applied, r.Code)
	}
	if _, ok := f.Datanode(1); !ok {
		t.Fatalf("datanode 1 removed although it holds regions")
	}
	if r := remove(9); r.Applied || r.Code != fsm.RejectNotFound {
		t.Errorf("remove unknown: applied=%t code=%q, want not_found", r.Applied, r.Code)
	}
	idx = applyAll(t, f, idx, []step{setAdmin(1, fsm.AdminDraining, at(time.Hour)), moveRegions(fsm.CauseDrain, at(time.Hour), mv(1, 1, 2), mv(4, 1, 3))})
	if r := remove(1); !r.Applied {
		t.Fatalf("remove an empty datanode: %s %s", r.Code, r.Reason)
	}
	if _, ok := f.Datanode(1); ok {
		t.Errorf("datanode 1 still registered")
	}
	ev, _ := lastEvent(t, f)
	if ev.Type != fsm.EventDatanodeRemoved || ev.Fields["datanode"] != "1" || ev.By != "op" {
		t.Errorf("event %+v, want datanode_removed of 1 by op", ev)
	}
}

// A snapshot carries datanodes, tables, routes (with versions and previous
// owners) and the next region id, and both copies evolve identically.
func TestRegionsSnapshotRoundTrip(t *testing.T) {
	steps := with(cluster3(),
		register(4, at(0)),
		createTable("mem", at(2*time.Second), 4, 4),
		moveRegions(fsm.CauseFailover, at(time.Minute), mv(1, 1, 2), mv(4, 1, 3)),
		setAdmin(3, fsm.AdminCordoned, at(2*time.Minute)),
		step{fsm.CmdDropTable, fsm.DropTable{Name: "mem", Time: at(3 * time.Minute)}}, // next id stays 7
		enable("upgrade", "alice", time.Hour, at(4*time.Minute)),
	)
	src := newFSM(t, 0)
	next := applyAll(t, src, 1, steps)
	snap := snapshotBytes(t, src)

	dst := newFSM(t, 0)
	applyAll(t, dst, 1, []step{register(9, at(0)), createTable("junk", at(0), 9)})
	if err := dst.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	assertSameRegions(t, src, dst)
	assertSameQueries(t, src, dst)
	if _, ok := dst.Datanode(9); ok {
		t.Errorf("Restore kept a datanode that is not in the snapshot")
	}

	more := []step{
		createTable("disk", at(time.Hour), 2, 4),                                    // ids 7, 8
		moveRegions(fsm.CauseFailover, at(time.Hour), mv(2, 2, 4)),                  // rejected: maintenance
		moveRegions(fsm.CauseManual, at(time.Hour), mv(2, 2, 4), mv(7, 2, 3)),       // 7 → 3 rejected: cordoned
		step{fsm.CmdRemoveDatanode, fsm.RemoveDatanode{ID: 1, Time: at(time.Hour)}}, // empty now
	}
	for i, s := range more {
		a := src.Apply(next+uint64(i), enc(t, s.typ, s.payload))
		b := dst.Apply(next+uint64(i), enc(t, s.typ, s.payload))
		a.Maintenance, b.Maintenance = fsm.Maintenance{}, fsm.Maintenance{}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("step %d results diverged:\n src %+v\n dst %+v", i, a, b)
		}
	}
	if r, ok := dst.Region(7); !ok || r.Table != "disk" {
		t.Errorf("first region after restore: %+v (found %t), want id 7 (next id restored)", r, ok)
	}
	assertSameRegions(t, src, dst)
	if a, b := snapshotBytes(t, src), snapshotBytes(t, dst); !bytes.Equal(a, b) {
		t.Errorf("snapshots diverged:\n%s\n%s", a, b)
	}
}

func assertSameRegions(t *testing.T, want, got *fsm.FSM) {
	t.Helper()
	if w, g := want.Datanodes(), got.Datanodes(); !reflect.DeepEqual(w, g) {
		t.Errorf("Datanodes:\nwant %+v\n got %+v", w, g)
	}
	if w, g := want.Tables(), got.Tables(); !reflect.DeepEqual(w, g) {
		t.Errorf("Tables:\nwant %+v\n got %+v", w, g)
	}
	if w, g := want.Regions(), got.Regions(); !reflect.DeepEqual(w, g) {
		t.Errorf("Regions:\nwant %+v\n got %+v", w, g)
	}
	for _, d := range want.Datanodes() {
		if w, g := want.RegionsOf(d.ID), got.RegionsOf(d.ID); !reflect.DeepEqual(w, g) {
			t.Errorf("RegionsOf(%d):\nwant %+v\n got %+v", d.ID, w, g)
		}
	}
}
