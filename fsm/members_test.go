package fsm_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
)

func TestInitCluster(t *testing.T) {
	cases := []struct {
		name        string
		setup       []step
		cmd         fsm.InitCluster
		wantApplied bool
		wantID      string
		wantEvent   bool
	}{
		{"first wins", nil, fsm.InitCluster{ClusterID: "c-1", Time: at(0)}, true, "c-1", true},
		{"second is a no-op", []step{{fsm.CmdInitCluster, fsm.InitCluster{ClusterID: "c-1", Time: at(0)}}},
			fsm.InitCluster{ClusterID: "c-2", Time: at(time.Minute)}, false, "c-1", false},
		{"same id again is a no-op", []step{{fsm.CmdInitCluster, fsm.InitCluster{ClusterID: "c-1", Time: at(0)}}},
			fsm.InitCluster{ClusterID: "c-1", Time: at(time.Minute)}, false, "c-1", false},
		{"empty id is a no-op", nil, fsm.InitCluster{ClusterID: "", Time: at(0)}, false, "", false},
		{"empty id then a real one", []step{{fsm.CmdInitCluster, fsm.InitCluster{ClusterID: "", Time: at(0)}}},
			fsm.InitCluster{ClusterID: "c-3", Time: at(time.Minute)}, true, "c-3", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(t, 0)
			idx := applyAll(t, f, 1, tc.setup)
			nBefore := len(mustEvents(f))
			r := f.Apply(idx, enc(t, fsm.CmdInitCluster, tc.cmd))
			if r.Applied != tc.wantApplied || r.Code != "" {
				t.Errorf("Result = %+v, want applied=%t and no code", r, tc.wantApplied)
			}
			if got := f.ClusterID(); got != tc.wantID {
				t.Errorf("ClusterID = %q, want %q", got, tc.wantID)
			}
			evs := mustEvents(f)
			if !tc.wantEvent {
				if len(evs) != nBefore {
					t.Errorf("unexpected event: %+v", evs)
				}
				return
			}
			want := fsm.Event{Index: idx, Time: tc.cmd.Time, Type: fsm.EventClusterInitialized,
				Fields: map[string]string{"cluster_id": tc.wantID}}
			if len(evs) != nBefore+1 || !eventEqual(evs[len(evs)-1], want) {
				t.Errorf("events = %+v, want last %+v", evs, want)
			}
		})
	}
}

func mustEvents(f *fsm.FSM) []fsm.Event {
	evs, _ := f.Events(0, 0)
	return evs
}

func TestMembers(t *testing.T) {
	m1 := fsm.Member{ID: "m1", RaftAddr: "10.0.0.1:7000", RPCAddr: "10.0.0.1:8080", Version: "1.0.0"}
	m1v2 := m1
	m1v2.Version = "1.1.0"
	m1rpc := m1
	m1rpc.RPCAddr = "10.0.0.9:8080"
	m1raft := m1
	m1raft.RaftAddr = "10.0.0.9:7000"
	m2 := fsm.Member{ID: "m2", RaftAddr: "10.0.0.2:7000", RPCAddr: "10.0.0.2:8080", Version: "1.0.0"}
	set := func(m fsm.Member, d time.Duration) step {
		return step{fsm.CmdSetMember, fsm.SetMember{Member: m, Time: at(d)}}
	}
	remove := func(id, by string, d time.Duration) step {
		return step{fsm.CmdRemoveMember, fsm.RemoveMember{ID: id, By: by, Time: at(d)}}
	}
	updated := func(m fsm.Member, d time.Duration) fsm.Member { m.Updated = at(d); return m }
	memberFields := func(m fsm.Member) map[string]string {
		return map[string]string{"id": m.ID, "raft_addr": m.RaftAddr, "rpc_addr": m.RPCAddr, "version": m.Version}
	}

	cases := []struct {
		name        string
		setup       []step
		cmd         step
		wantApplied bool
		wantCode    string
		wantMembers []fsm.Member
		wantEvent   *fsm.Event
	}{
		{
			name: "join", cmd: set(m1, time.Minute), wantApplied: true,
			wantMembers: []fsm.Member{updated(m1, time.Minute)},
			wantEvent:   &fsm.Event{Time: at(time.Minute), Type: fsm.EventMemberJoined, Fields: memberFields(m1)},
		},
		{
			name: "second member, sorted by id", setup: []step{set(m2, 0)}, cmd: set(m1, time.Minute), wantApplied: true,
			wantMembers: []fsm.Member{updated(m1, time.Minute), updated(m2, 0)},
			wantEvent:   &fsm.Event{Time: at(time.Minute), Type: fsm.EventMemberJoined, Fields: memberFields(m1)},
		},
		{
			name: "idempotent repeat: no event, updated time kept", setup: []step{set(m1, 0)}, cmd: set(m1, time.Hour), wantApplied: true,
			wantMembers: []fsm.Member{updated(m1, 0)},
		},
		{
			name: "new version: updated event", setup: []step{set(m1, 0)}, cmd: set(m1v2, time.Hour), wantApplied: true,
			wantMembers: []fsm.Member{updated(m1v2, time.Hour)},
			wantEvent:   &fsm.Event{Time: at(time.Hour), Type: fsm.EventMemberUpdated, Fields: memberFields(m1v2)},
		},
		{
			name: "new rpc addr: updated event", setup: []step{set(m1, 0)}, cmd: set(m1rpc, time.Hour), wantApplied: true,
			wantMembers: []fsm.Member{updated(m1rpc, time.Hour)},
			wantEvent:   &fsm.Event{Time: at(time.Hour), Type: fsm.EventMemberUpdated, Fields: memberFields(m1rpc)},
		},
		{
			name: "new raft addr: updated event", setup: []step{set(m1, 0)}, cmd: set(m1raft, time.Hour), wantApplied: true,
			wantMembers: []fsm.Member{updated(m1raft, time.Hour)},
			wantEvent:   &fsm.Event{Time: at(time.Hour), Type: fsm.EventMemberUpdated, Fields: memberFields(m1raft)},
		},
		{
			name: "proposer's Updated is overridden by the command time", cmd: set(updated(m1, 99*time.Hour), time.Minute), wantApplied: true,
			wantMembers: []fsm.Member{updated(m1, time.Minute)},
			wantEvent:   &fsm.Event{Time: at(time.Minute), Type: fsm.EventMemberJoined, Fields: memberFields(m1)},
		},
		{
			name: "empty id rejected", setup: []step{set(m1, 0)}, cmd: set(fsm.Member{RaftAddr: "x:1"}, time.Minute), wantCode: fsm.RejectInvalid,
			wantMembers: []fsm.Member{updated(m1, 0)},
		},
		{
			name: "remove", setup: []step{set(m1, 0), set(m2, 0)}, cmd: remove("m1", "ops", time.Hour), wantApplied: true,
			wantMembers: []fsm.Member{updated(m2, 0)},
			wantEvent:   &fsm.Event{Time: at(time.Hour), Type: fsm.EventMemberRemoved, By: "ops", Fields: map[string]string{"id": "m1"}},
		},
		{
			name: "remove unknown: applied, no event", setup: []step{set(m2, 0)}, cmd: remove("m1", "ops", time.Hour), wantApplied: true,
			wantMembers: []fsm.Member{updated(m2, 0)},
		},
		{
			name: "remove twice: second is a no-op", setup: []step{set(m1, 0), remove("m1", "ops", time.Minute)}, cmd: remove("m1", "ops", time.Hour),
			wantApplied: true, wantMembers: []fsm.Member{},
		},
		{
			name: "rejoin after remove: joined event", setup: []step{set(m1, 0), remove("m1", "ops", time.Minute)}, cmd: set(m1v2, time.Hour),
			wantApplied: true, wantMembers: []fsm.Member{updated(m1v2, time.Hour)},
			wantEvent: &fsm.Event{Time: at(time.Hour), Type: fsm.EventMemberJoined, Fields: memberFields(m1v2)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(t, 0)
			idx := applyAll(t, f, 1, tc.setup)
			before := mustEvents(f)
			mBefore := f.Maintenance()
			r := f.Apply(idx, enc(t, tc.cmd.typ, tc.cmd.payload))
			if r.Applied != tc.wantApplied || r.Code != tc.wantCode || r.Index != idx {
				t.Errorf("Result = %+v, want applied=%t code=%q index=%d", r, tc.wantApplied, tc.wantCode, idx)
			}
			got := f.Members()
			if !reflect.DeepEqual(got, tc.wantMembers) {
				t.Errorf("Members:\n got %+v\nwant %+v", got, tc.wantMembers)
			}
			for _, m := range tc.wantMembers {
				if g, ok := f.Member(m.ID); !ok || !reflect.DeepEqual(g, m) {
					t.Errorf("Member(%q) = %+v, %t", m.ID, g, ok)
				}
			}
			if !maintEqual(mBefore, f.Maintenance()) {
				t.Errorf("membership command changed maintenance")
			}
			after := mustEvents(f)
			if tc.wantEvent == nil {
				if !eventsEqual(before, after) {
					t.Errorf("unexpected event(s): %+v", after[len(before):])
				}
				return
			}
			want := *tc.wantEvent
			want.Index = idx
			if len(after) != len(before)+1 || !eventEqual(after[len(after)-1], want) {
				t.Errorf("events:\n got %+v\nwant last %+v", after, want)
			}
		})
	}
}
