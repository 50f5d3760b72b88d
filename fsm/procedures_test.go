package fsm_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
)

// Helpers of this file carry a "proc" prefix so that they never clash with
// the other tests' helpers.

func procSet(paused bool, reason, by string, when time.Time) step {
	return step{fsm.CmdSetProcedures, fsm.SetProcedures{Paused: paused, Reason: reason, By: by, Time: when}}
}

func procMove(cause string, moves ...fsm.Move) step {
	return step{fsm.CmdMoveRegions, fsm.MoveRegions{Cause: cause, Moves: moves, By: "proctest", Time: at(time.Hour)}}
}

// procCluster registers datanodes 1-3, member m1 and table "proc" with
// regions 1, 2 on datanode 1 and region 3 on datanode 2.
func procCluster() []step {
	var s []step
	for id := uint64(1); id <= 3; id++ {
		s = append(s, step{fsm.CmdRegisterDatanode, fsm.RegisterDatanode{ID: id, Addr: fmt.Sprintf("10.0.3.%d:4001", id), Time: at(0)}})
	}
	return append(s,
		step{fsm.CmdSetMember, fsm.SetMember{Member: fsm.Member{ID: "m1", RaftAddr: "10.0.0.1:7000"}, Time: at(0)}},
		step{fsm.CmdCreateTable, fsm.CreateTable{Name: "proc", Placement: []uint64{1, 1, 2}, Time: at(time.Second)}})
}

func procOwners(f *fsm.FSM) map[uint64]uint64 {
	out := map[uint64]uint64{}
	for _, r := range f.Regions() {
		out[r.ID] = r.Datanode
	}
	return out
}

// TestProceduresGuard: while paused, every region move (whatever its
// cause), table create and drop is refused with procedures_paused and
// changes nothing; everything else goes on. Resumed, the same command
// applies.
func TestProceduresGuard(t *testing.T) {
	paused := procSet(true, "upgrade", "alice", at(time.Minute))
	cases := []struct {
		name  string
		setup []step // after procCluster, before the pause
		cmd   step
		// refused: procedures_paused while paused; otherwise it applies
		// while paused as well.
		refused bool
		// moveEvent: a refused MoveRegions records a move_rejected event.
		moveEvent bool
	}{
		{name: "manual move", cmd: procMove(fsm.CauseManual, mv(1, 1, 3)), refused: true, moveEvent: true},
		{name: "failover move", cmd: procMove(fsm.CauseFailover, mv(1, 1, 3)), refused: true, moveEvent: true},
		{name: "balance move", cmd: procMove(fsm.CauseBalance, mv(1, 1, 3), mv(2, 1, 3)), refused: true, moveEvent: true},
		{name: "drain move", setup: []step{setAdmin(1, fsm.AdminDraining, at(time.Second))},
			cmd: procMove(fsm.CauseDrain, mv(1, 1, 3)), refused: true, moveEvent: true},
		{name: "manual move during maintenance too", setup: []step{enable("m", "ops", 0, at(time.Second))},
			cmd: procMove(fsm.CauseManual, mv(1, 1, 3)), refused: true, moveEvent: true},
		{name: "failover during maintenance: the procedures guard answers", setup: []step{enable("m", "ops", 0, at(time.Second))},
			cmd: procMove(fsm.CauseFailover, mv(1, 1, 3)), refused: true, moveEvent: true},
		{name: "create table", cmd: createTable("other", at(time.Hour), 1, 2), refused: true},
		{name: "drop table", cmd: step{fsm.CmdDropTable, fsm.DropTable{Name: "proc", Time: at(time.Hour)}}, refused: true},
		{name: "drop of a missing table", cmd: step{fsm.CmdDropTable, fsm.DropTable{Name: "nope", Time: at(time.Hour)}}, refused: true},

		{name: "register datanode", cmd: register(4, at(time.Hour))},
		{name: "remove an empty datanode", cmd: step{fsm.CmdRemoveDatanode, fsm.RemoveDatanode{ID: 3, Time: at(time.Hour)}}},
		{name: "cordon", cmd: setAdmin(3, fsm.AdminCordoned, at(time.Hour))},
		{name: "drain", cmd: setAdmin(1, fsm.AdminDraining, at(time.Hour))},
		{name: "uncordon", setup: []step{setAdmin(2, fsm.AdminCordoned, at(time.Second))}, cmd: setAdmin(2, fsm.AdminActive, at(time.Hour))},
		{name: "maintenance on", cmd: enable("m", "ops", 0, at(time.Hour))},
		{name: "maintenance off", setup: []step{enable("m", "ops", 0, at(time.Second))}, cmd: disable("done", "ops", at(time.Hour))},
		{name: "member update", cmd: step{fsm.CmdSetMember, fsm.SetMember{Member: fsm.Member{ID: "m2", RaftAddr: "10.0.0.2:7000"}, Time: at(time.Hour)}}},
		{name: "member removal", cmd: step{fsm.CmdRemoveMember, fsm.RemoveMember{ID: "m1", Time: at(time.Hour)}}},
		{name: "cluster id", cmd: step{fsm.CmdInitCluster, fsm.InitCluster{ClusterID: "c-1", Time: at(time.Hour)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(t, 0)
			idx := applyAll(t, f, 1, append(append(procCluster(), tc.setup...), paused))
			before := snapshotBytes(t, f)
			owners, tables := procOwners(f), f.Tables()
			evsBefore, _ := f.Events(0, 0)

			r := f.Apply(idx, enc(t, tc.cmd.typ, tc.cmd.payload))
			if !tc.refused {
				if !r.Applied || r.Code != "" {
					t.Fatalf("while paused: %+v, want applied", r)
				}
				return
			}
			if r.Applied || r.Code != fsm.RejectProceduresPaused || !strings.Contains(r.Reason, "upgrade") || r.Index != idx {
				t.Fatalf("while paused: %+v, want %s (with the pause's reason) at %d", r, fsm.RejectProceduresPaused, idx)
			}
			if mr, ok := tc.cmd.payload.(fsm.MoveRegions); ok {
				if len(r.Rejected) != len(mr.Moves) || len(r.Moved) != 0 {
					t.Errorf("moved %v rejected %v, want every move rejected", r.Moved, r.Rejected)
				}
				for _, rj := range r.Rejected {
					if rj.Code != fsm.RejectProceduresPaused {
						t.Errorf("move rejection %+v", rj)
					}
				}
			}
			if !reflect.DeepEqual(procOwners(f), owners) || !reflect.DeepEqual(f.Tables(), tables) {
				t.Errorf("routes or tables changed while paused")
			}
			evs, _ := f.Events(0, 0)
			added := evs[len(evsBefore):]
			switch {
			case tc.moveEvent && (len(added) != 1 || added[0].Type != fsm.EventMoveRejected || added[0].Index != idx ||
				added[0].Fields["cause"] != tc.cmd.payload.(fsm.MoveRegions).Cause):
				t.Errorf("events added %+v, want one move_rejected at %d", added, idx)
			case !tc.moveEvent && len(added) != 0:
				t.Errorf("events added %+v, want none", added)
			}
			// Only the applied index and the event moved.
			if !tc.moveEvent {
				g := newFSM(t, 0)
				if err := g.Restore(bytes.NewReader(before)); err != nil {
					t.Fatal(err)
				}
				g.Skip(idx)
				assertSameQueries(t, g, f)
			}

			// Resumed, the same command goes through.
			if r := f.Apply(idx+1, enc(t, fsm.CmdSetProcedures, fsm.SetProcedures{Paused: false, Time: at(2 * time.Hour)})); !r.Applied {
				t.Fatalf("resume: %+v", r)
			}
			if r := f.Apply(idx+2, enc(t, tc.cmd.typ, tc.cmd.payload)); r.Code == fsm.RejectProceduresPaused {
				t.Fatalf("after resume: %+v", r)
			}
		})
	}
}

// TestSetProcedures: pause and resume change the state, bump the epoch and
// record one event each; repeating the state in effect is an applied
// no-op (no epoch bump, no event, By and Reason of the change kept).
func TestSetProcedures(t *testing.T) {
	type want struct {
		paused bool
		epoch  uint64
		reason string
		by     string
		since  *time.Time
		event  string // type of the one event added; "" none
	}
	cases := []struct {
		name  string
		setup []step
		cmd   step
		want  want
	}{
		{"resume while running is a no-op", nil, procSet(false, "x", "bob", at(time.Minute)),
			want{false, 0, "", "", nil, ""}},
		{"pause", nil, procSet(true, "upgrade", "alice", at(time.Minute)),
			want{true, 1, "upgrade", "alice", tp(at(time.Minute)), fsm.EventProceduresPaused}},
		{"pause again is a no-op", []step{procSet(true, "upgrade", "alice", at(time.Minute))}, procSet(true, "other", "bob", at(time.Hour)),
			want{true, 1, "upgrade", "alice", tp(at(time.Minute)), ""}},
		{"resume", []step{procSet(true, "upgrade", "alice", at(time.Minute))}, procSet(false, "done", "bob", at(time.Hour)),
			want{false, 2, "done", "bob", tp(at(time.Hour)), fsm.EventProceduresResumed}},
		{"resume again is a no-op", []step{procSet(true, "u", "alice", at(time.Minute)), procSet(false, "done", "bob", at(time.Hour))},
			procSet(false, "", "carol", at(2*time.Hour)), want{false, 2, "done", "bob", tp(at(time.Hour)), ""}},
		{"pause after resume", []step{procSet(true, "u", "alice", at(time.Minute)), procSet(false, "done", "bob", at(time.Hour))},
			procSet(true, "again", "carol", at(2*time.Hour)), want{true, 3, "again", "carol", tp(at(2 * time.Hour)), fsm.EventProceduresPaused}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(t, 0)
			idx := applyAll(t, f, 1, tc.setup)
			evsBefore, _ := f.Events(0, 0)
			maintBefore := f.Maintenance()
			r := f.Apply(idx, enc(t, tc.cmd.typ, tc.cmd.payload))
			if !r.Applied || r.Code != "" || r.Index != idx || f.AppliedIndex() != idx {
				t.Fatalf("Result %+v, want applied at %d", r, idx)
			}
			p := f.Procedures()
			w := tc.want
			if p.Paused != w.paused || p.Epoch != w.epoch || p.Reason != w.reason || p.By != w.by || !timePtrEqual(p.Since, w.since) {
				t.Errorf("Procedures %+v (since %s), want %+v (since %s)", p, fmtTime(p.Since), w, fmtTime(w.since))
			}
			if !maintEqual(f.Maintenance(), maintBefore) {
				t.Errorf("maintenance changed: %s", fmtM(f.Maintenance()))
			}
			evs, _ := f.Events(0, 0)
			added := evs[len(evsBefore):]
			if w.event == "" {
				if len(added) != 0 {
					t.Errorf("no-op added events %+v", added)
				}
				return
			}
			c := tc.cmd.payload.(fsm.SetProcedures)
			wantEv := fsm.Event{Index: idx, Time: c.Time, Type: w.event, By: c.By, Reason: c.Reason, Epoch: w.epoch}
			if len(added) != 1 || !eventEqual(added[0], wantEv) {
				t.Errorf("events added %+v, want [%+v]", added, wantEv)
			}
		})
	}
}

// TestProceduresSnapshot: the pause survives Snapshot/Restore in both
// formats (in format 2 it rides in the JSON part), and a snapshot written
// before the part existed restores as running.
func TestProceduresSnapshot(t *testing.T) {
	f := newFSM(t, 0)
	idx := applyAll(t, f, 1, append(procCluster(), procSet(true, "upgrade", "alice", at(time.Minute))))
	want := f.Procedures()
	writers := []struct {
		name  string
		write func(*bytes.Buffer, *fsm.State) error
	}{
		{"format 1", func(b *bytes.Buffer, st *fsm.State) error { return fsm.WriteSnapshot(b, st) }},
		{"format 2", func(b *bytes.Buffer, st *fsm.State) error { return fsm.WriteSnapshotCompact(b, st) }},
	}
	for _, wr := range writers {
		t.Run(wr.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := wr.write(&buf, f.Snapshot()); err != nil {
				t.Fatal(err)
			}
			raw := bytes.Clone(buf.Bytes())

			// The part is in the snapshot's JSON object (format 2: its
			// first line, before the binary region section).
			line, err := bufio.NewReader(bytes.NewReader(raw)).ReadBytes('\n')
			if err != nil {
				t.Fatal(err)
			}
			var hdr struct {
				State struct {
					Procedures *fsm.Procedures `json:"procedures"`
				} `json:"state"`
			}
			if err := json.Unmarshal(line, &hdr); err != nil {
				t.Fatal(err)
			}
			if p := hdr.State.Procedures; p == nil || !p.Paused || p.Epoch != want.Epoch || p.Reason != "upgrade" {
				t.Fatalf("JSON part has procedures %+v", p)
			}

			g := newFSM(t, 0)
			if err := g.Restore(bytes.NewReader(raw)); err != nil {
				t.Fatal(err)
			}
			if got := g.Procedures(); !reflect.DeepEqual(got, want) {
				t.Errorf("restored %+v, want %+v", got, want)
			}
			assertSameQueries(t, f, g)
			if r := g.Apply(idx, enc(t, fsm.CmdMoveRegions, fsm.MoveRegions{Cause: fsm.CauseManual, Moves: []fsm.Move{mv(1, 1, 3)}, Time: at(time.Hour)})); r.Code != fsm.RejectProceduresPaused {
				t.Errorf("restored FSM let a move through: %+v", r)
			}

			// Without the part (an older binary's snapshot): running.
			old := bytes.Replace(raw, line, stripProcedures(t, line), 1)
			h := newFSM(t, 0)
			if err := h.Restore(bytes.NewReader(old)); err != nil {
				t.Fatal(err)
			}
			if got := h.Procedures(); !reflect.DeepEqual(got, fsm.Procedures{}) {
				t.Errorf("old snapshot restored procedures %+v, want running", got)
			}
			if r := h.Apply(idx, enc(t, fsm.CmdMoveRegions, fsm.MoveRegions{Cause: fsm.CauseManual, Moves: []fsm.Move{mv(1, 1, 3)}, Time: at(time.Hour)})); !r.Applied {
				t.Errorf("move after an old snapshot: %+v", r)
			}
		})
	}
}

// stripProcedures removes state.procedures from a snapshot's JSON line.
func stripProcedures(t *testing.T, line []byte) []byte {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(line, &top); err != nil {
		t.Fatal(err)
	}
	var st map[string]json.RawMessage
	if err := json.Unmarshal(top["state"], &st); err != nil {
		t.Fatal(err)
	}
	if _, ok := st["procedures"]; !ok {
		t.Fatal("no procedures part to strip")
	}
	delete(st, "procedures")
	b, _ := json.Marshal(st)
	top["state"] = b
	out, _ := json.Marshal(top)
	return append(out, '\n')
}

// TestProceduresOlderProtocol: an FSM that plays an older binary
// (Config.Protocol 2) does not know SetProcedures, a protocol 3 command:
// it calls OnUnknown and changes nothing, while commands of its own
// protocol still apply. The default and protocol 3 know it.
func TestProceduresOlderProtocol(t *testing.T) {
	cases := []struct {
		protocol int
		knows    bool
	}{{1, false}, {2, false}, {3, true}, {0, true}}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("protocol %d", tc.protocol), func(t *testing.T) {
			var calls []unknownCall
			f := fsm.New(fsm.Config{Protocol: tc.protocol, OnUnknown: func(index uint64, typ string, v int) {
				calls = append(calls, unknownCall{index, typ, v})
			}})
			idx := applyAll(t, f, 1, procCluster())
			r := f.Apply(idx, enc(t, fsm.CmdSetProcedures, fsm.SetProcedures{Paused: true, By: "alice", Time: at(time.Minute)}))
			if tc.knows {
				if len(calls) != 0 || !r.Applied || !f.Procedures().Paused {
					t.Fatalf("OnUnknown %v, result %+v, procedures %+v: want applied", calls, r, f.Procedures())
				}
				return
			}
			if want := []unknownCall{{idx, fsm.CmdSetProcedures, 1}}; !reflect.DeepEqual(calls, want) {
				t.Fatalf("OnUnknown calls %v, want %v", calls, want)
			}
			if r.Applied || f.Procedures().Paused || f.AppliedIndex() != idx-1 {
				t.Fatalf("result %+v, procedures %+v, applied index %d: want nothing applied", r, f.Procedures(), f.AppliedIndex())
			}
			if r := f.Apply(idx+1, enc(t, fsm.CmdMoveRegions, fsm.MoveRegions{Cause: fsm.CauseManual, Moves: []fsm.Move{mv(1, 1, 3)}, Time: at(time.Hour)})); !r.Applied {
				t.Fatalf("a protocol 1 command on a protocol %d FSM: %+v", tc.protocol, r)
			}
		})
	}
	if fsm.ProtocolOf(fsm.CmdSetProcedures) != 3 || fsm.Protocol < 3 {
		t.Fatalf("SetProcedures at protocol %d, binary speaks %d", fsm.ProtocolOf(fsm.CmdSetProcedures), fsm.Protocol)
	}
}
