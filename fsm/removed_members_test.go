package fsm_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/metasrv/metasrv/fsm"
)

// RemoveMember records the id as removed (also one the member table never
// had); SetMember of that id clears it. Snapshots in both formats carry the
// set, and a state without it (an older snapshot) restores as none removed.
func TestRemovedMembers(t *testing.T) {
	set := func(id string) step {
		return step{fsm.CmdSetMember, fsm.SetMember{Member: fsm.Member{ID: id, RaftAddr: id + ":1", RPCAddr: id + ":2"}, Time: at(0)}}
	}
	remove := func(id string) step { return step{fsm.CmdRemoveMember, fsm.RemoveMember{ID: id, Time: at(0)}} }
	for _, tc := range []struct {
		name    string
		steps   []step
		removed map[string]bool
	}{
		{"member removed", []step{set("n1"), set("n2"), remove("n2")}, map[string]bool{"n1": false, "n2": true}},
		{"never registered", []step{remove("n9")}, map[string]bool{"n9": true}},
		{"added again", []step{set("n2"), remove("n2"), set("n2")}, map[string]bool{"n2": false}},
		{"removed twice", []step{set("n2"), remove("n2"), remove("n2")}, map[string]bool{"n2": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(t, 0)
			applyAll(t, f, 1, tc.steps)
			check := func(what string, g *fsm.FSM) {
				for id, want := range tc.removed {
					if got := g.MemberRemoved(id); got != want {
						t.Errorf("%s: MemberRemoved(%s) = %t, want %t", what, id, got, want)
					}
				}
			}
			check("applied", f)
			// The same log on another replica: the same set.
			g := newFSM(t, 0)
			applyAll(t, g, 1, tc.steps)
			check("replayed", g)
			for _, format := range []int{1, 2} {
				var buf bytes.Buffer
				write := fsm.WriteSnapshot
				if format == 2 {
					write = fsm.WriteSnapshotCompact
				}
				if err := write(&buf, f.Snapshot()); err != nil {
					t.Fatal(err)
				}
				r := newFSM(t, 0)
				if err := r.Restore(&buf); err != nil {
					t.Fatalf("format %d: %v", format, err)
				}
				check("restored", r)
			}
		})
	}
}

// An older binary's snapshot (no removed_members) restores with none
// removed; and a snapshot with a field this binary does not know restores
// (which is what an older binary does with removed_members).
func TestRemovedMembersSnapshotCompatibility(t *testing.T) {
	f := newFSM(t, 0)
	applyAll(t, f, 1, []step{{fsm.CmdRemoveMember, fsm.RemoveMember{ID: "n2", Time: at(0)}}})
	var doc map[string]any
	if err := json.Unmarshal(snapshotBytes(t, f), &doc); err != nil {
		t.Fatal(err)
	}
	st := doc["state"].(map[string]any)
	if _, ok := st["removed_members"]; !ok {
		t.Fatalf("snapshot lacks removed_members: %v", st)
	}
	delete(st, "removed_members")
	st["a_field_from_the_future"] = map[string]any{"x": 1}
	b, _ := json.Marshal(doc)
	r := newFSM(t, 0)
	if err := r.Restore(bytes.NewReader(b)); err != nil {
		t.Fatalf("restore with an unknown field: %v", err)
	}
	if r.MemberRemoved("n2") {
		t.Fatal("an older snapshot restored with n2 removed")
	}
	// Empty: the field is omitted, so snapshots without removals are
	// byte-identical to an older binary's.
	if bytes.Contains(snapshotBytes(t, newFSM(t, 0)), []byte("removed_members")) {
		t.Fatal("an empty set is written")
	}
}
