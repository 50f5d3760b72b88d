package fsm_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
)

// history is a mixed command sequence touching every part of the state.
func history() []step {
	return []step{
		{fsm.CmdInitCluster, fsm.InitCluster{ClusterID: "c-1", Time: at(0)}},
		{fsm.CmdSetMember, fsm.SetMember{Member: fsm.Member{ID: "m1", RaftAddr: "10.0.0.1:7000", RPCAddr: "10.0.0.1:8080", Version: "1.0.0"}, Time: at(time.Second)}},
		{fsm.CmdSetMember, fsm.SetMember{Member: fsm.Member{ID: "m2", RaftAddr: "10.0.0.2:7000", RPCAddr: "10.0.0.2:8080", Version: "1.0.0"}, Time: at(2 * time.Second)}},
		{fsm.CmdSetMember, fsm.SetMember{Member: fsm.Member{ID: "m3", RaftAddr: "10.0.0.3:7000", RPCAddr: "10.0.0.3:8080", Version: "1.0.0"}, Time: at(3 * time.Second)}},
		{fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: true, Reason: "upgrade", By: "alice", TTL: time.Hour, Time: at(time.Minute)}},
		{fsm.CmdSetMember, fsm.SetMember{Member: fsm.Member{ID: "m2", RaftAddr: "10.0.0.2:7000", RPCAddr: "10.0.0.2:8080", Version: "1.1.0"}, Time: at(2 * time.Minute)}},
		{fsm.CmdInitCluster, fsm.InitCluster{ClusterID: "c-2", Time: at(3 * time.Minute)}},
		{fsm.CmdRemoveMember, fsm.RemoveMember{ID: "m3", By: "bob", Time: at(4 * time.Minute)}},
		{fsm.CmdExpireMaintenance, fsm.ExpireMaintenance{Epoch: 1, Time: at(61 * time.Minute)}},
		{fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: true, Reason: "disk swap", By: "carol", Time: at(90 * time.Minute)}},
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	cases := []struct {
		name     string
		capacity int
		steps    []step
		first    uint64
	}{
		{"empty", 0, nil, 1},
		{"full history", 0, history(), 1},
		{"history from high index", 0, history(), 1000},
		{"ring with drops", 3, history(), 7},
		{"ring of one", 1, history(), 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := newFSM(t, tc.capacity)
			applyAll(t, src, tc.first, tc.steps)
			snap := snapshotBytes(t, src)

			// Restore into an FSM that already holds different state:
			// Restore must replace it entirely.
			dst := newFSM(t, tc.capacity)
			applyAll(t, dst, 1, []step{
				{fsm.CmdInitCluster, fsm.InitCluster{ClusterID: "other", Time: at(0)}},
				{fsm.CmdSetMember, fsm.SetMember{Member: fsm.Member{ID: "zz", RaftAddr: "x:1"}, Time: at(0)}},
				{fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: true, Reason: "x", Time: at(0)}},
			})
			if err := dst.Restore(bytes.NewReader(snap)); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			assertSameQueries(t, src, dst)
			if got := snapshotBytes(t, dst); !bytes.Equal(got, snap) {
				t.Errorf("re-snapshot differs:\nwant %s\n got %s", snap, got)
			}

			// Both must keep evolving identically.
			next := src.AppliedIndex() + 1
			more := []step{
				{fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: false, Reason: "done", By: "dave", Time: at(3 * time.Hour)}},
				{fsm.CmdSetMember, fsm.SetMember{Member: fsm.Member{ID: "m4", RaftAddr: "10.0.0.4:7000", RPCAddr: "10.0.0.4:8080"}, Time: at(4 * time.Hour)}},
			}
			applyAll(t, src, next, more)
			applyAll(t, dst, next, more)
			assertSameQueries(t, src, dst)
			if a, b := snapshotBytes(t, src), snapshotBytes(t, dst); !bytes.Equal(a, b) {
				t.Errorf("snapshots diverged after further applies:\n%s\n%s", a, b)
			}
		})
	}
}

func TestRoundTripSpecificValues(t *testing.T) {
	src := newFSM(t, 3)
	applyAll(t, src, 1, history())
	dst := newFSM(t, 3)
	if err := dst.Restore(bytes.NewReader(snapshotBytes(t, src))); err != nil {
		t.Fatal(err)
	}
	if got := dst.AppliedIndex(); got != 10 {
		t.Errorf("AppliedIndex = %d, want 10", got)
	}
	if got := dst.ClusterID(); got != "c-1" {
		t.Errorf("ClusterID = %q, want c-1", got)
	}
	wantM := fsm.Maintenance{Enabled: true, Epoch: 3, Reason: "disk swap", By: "carol", Since: tp(at(90 * time.Minute))}
	if got := dst.Maintenance(); !maintEqual(got, wantM) {
		t.Errorf("Maintenance = %s, want %s", fmtM(got), fmtM(wantM))
	}
	evs, first := dst.Events(0, 0)
	// Events at 1,2,3,4,5,6,8,9,10 (7 is a no-op InitCluster); the ring of 3
	// keeps 8,9,10 and has dropped through 6.
	if got := eventIndexes(evs); !equalU64(got, []uint64{8, 9, 10}) || first != 7 {
		t.Errorf("Events(0,0) = %v first=%d, want [8 9 10] first=7", got, first)
	}
	if m, ok := dst.Member("m2"); !ok || m.Version != "1.1.0" || !m.Updated.Equal(at(2*time.Minute)) {
		t.Errorf("Member(m2) = %+v, %t", m, ok)
	}
	if _, ok := dst.Member("m3"); ok {
		t.Errorf("m3 should have been removed")
	}
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestUnknownCommands(t *testing.T) {
	cases := []struct {
		name     string
		data     []byte
		wantTyp  string
		wantV    int
		wantCode string
	}{
		{"unknown type", []byte(`{"type":"SplitRegion","v":1,"payload":{}}`), "SplitRegion", 1, "unknown_command"},
		{"too new version", []byte(`{"type":"SetMaintenance","v":2,"payload":{"enabled":false}}`), fsm.CmdSetMaintenance, 2, "unknown_command"},
		{"version zero", []byte(`{"type":"SetMaintenance","v":0,"payload":{"enabled":false}}`), fsm.CmdSetMaintenance, 0, "unknown_command"},
		{"negative version", []byte(`{"type":"SetMember","v":-1,"payload":{}}`), fsm.CmdSetMember, -1, "unknown_command"},
		{"missing version", []byte(`{"type":"SetMaintenance","payload":{"enabled":false}}`), fsm.CmdSetMaintenance, 0, "unknown_command"},
		{"empty envelope", []byte(`{}`), "", 0, "unknown_command"},
		{"json null", []byte(`null`), "", 0, "unknown_command"},
		{"undecodable", []byte(`{"type":`), "<undecodable>", 0, fsm.RejectInvalid},
		{"not json", []byte("\x00\x01garbage"), "<undecodable>", 0, fsm.RejectInvalid},
		{"empty bytes", []byte{}, "<undecodable>", 0, fsm.RejectInvalid},
		{"wrong envelope shape", []byte(`["SetMaintenance",1]`), "<undecodable>", 0, fsm.RejectInvalid},
		{"encoded unknown type", mustEncode("NoSuchCommand", struct{}{}), "NoSuchCommand", 0, "unknown_command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, calls := newRecordingFSM(0)
			applyAll(t, f, 1, history())
			before := snapshotBytes(t, f)
			ch := f.Changed()

			const idx = 42
			r := f.Apply(idx, tc.data)

			want := []unknownCall{{idx, tc.wantTyp, tc.wantV}}
			if len(*calls) != 1 || (*calls)[0] != want[0] {
				t.Errorf("OnUnknown calls = %+v, want %+v", *calls, want)
			}
			if r.Applied || r.Code != tc.wantCode {
				t.Errorf("Result = %+v, want not applied with code %q", r, tc.wantCode)
			}
			if r.Index != idx {
				t.Errorf("Result.Index = %d, want %d", r.Index, idx)
			}
			if after := snapshotBytes(t, f); !bytes.Equal(before, after) {
				t.Errorf("state changed:\nbefore %s\n after %s", before, after)
			}
			if f.AppliedIndex() != 10 {
				t.Errorf("AppliedIndex = %d, want 10 (unchanged)", f.AppliedIndex())
			}
			select {
			case <-ch:
				t.Errorf("Changed closed by an entry that changed nothing")
			default:
			}
		})
	}
}

func mustEncode(typ string, payload any) []byte {
	b, err := fsm.Encode(typ, payload)
	if err != nil {
		panic(err)
	}
	return b
}

func TestDefaultOnUnknownPanics(t *testing.T) {
	f := fsm.New(fsm.Config{})
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("Apply of an unknown command did not panic with the default hook")
		}
		if s, _ := r.(string); !strings.Contains(s, "Bogus") || !strings.Contains(s, "7") {
			t.Errorf("panic value %v should name the type and index", r)
		}
	}()
	f.Apply(7, []byte(`{"type":"Bogus","v":1,"payload":{}}`))
}

func TestKnown(t *testing.T) {
	cases := []struct {
		typ  string
		v    int
		want bool
	}{
		{fsm.CmdInitCluster, 1, true},
		{fsm.CmdSetMaintenance, 1, true},
		{fsm.CmdExpireMaintenance, 1, true},
		{fsm.CmdSetMember, 1, true},
		{fsm.CmdRemoveMember, 1, true},
		{fsm.CmdSetMaintenance, 0, false},
		{fsm.CmdSetMaintenance, 2, false},
		{"SplitRegion", 1, false},
		{"", 1, false},
	}
	for _, tc := range cases {
		if got := fsm.Known(tc.typ, tc.v); got != tc.want {
			t.Errorf("Known(%q, %d) = %t, want %t", tc.typ, tc.v, got, tc.want)
		}
	}
}

func TestMalformedPayloadOfKnownType(t *testing.T) {
	cases := []struct {
		name string
		data string
	}{
		{"maintenance enabled is a string", `{"type":"SetMaintenance","v":1,"payload":{"enabled":"yes"}}`},
		{"expire epoch negative", `{"type":"ExpireMaintenance","v":1,"payload":{"epoch":-1}}`},
		{"member is a list", `{"type":"SetMember","v":1,"payload":{"member":[]}}`},
		{"init time garbage", `{"type":"InitCluster","v":1,"payload":{"cluster_id":"c","time":"yesterday"}}`},
		{"remove payload string", `{"type":"RemoveMember","v":1,"payload":"m1"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(t, 0)
			applyAll(t, f, 1, history())
			before := f.Snapshot()
			r := f.Apply(11, []byte(tc.data))
			if r.Applied || r.Code != fsm.RejectInvalid || r.Index != 11 {
				t.Errorf("Result = %+v, want invalid at index 11", r)
			}
			after := f.Snapshot()
			if after.AppliedIndex != 11 {
				t.Errorf("AppliedIndex = %d, want 11", after.AppliedIndex)
			}
			after.AppliedIndex = before.AppliedIndex
			if a, b := stateBytes(t, before), stateBytes(t, after); !bytes.Equal(a, b) {
				t.Errorf("state changed:\n%s\n%s", a, b)
			}
		})
	}
}

func stateBytes(t testing.TB, st *fsm.State) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := fsm.WriteSnapshot(&buf, st); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRestoreRejects(t *testing.T) {
	cases := []struct {
		name    string
		data    string
		wantErr string
	}{
		{"newer format", `{"format":3,"state":{"cluster_id":"future","applied_index":99}}`, "newer"},
		{"much newer format", `{"format":1000,"state":null}`, "format"},
		{"missing format", `{"state":{"cluster_id":"x"}}`, "format"},
		{"garbage", `not json`, "decode"},
		{"empty", ``, "decode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(t, 0)
			applyAll(t, f, 1, history())
			before := snapshotBytes(t, f)
			ch := f.Changed()
			err := f.Restore(strings.NewReader(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Restore error = %v, want one containing %q", err, tc.wantErr)
			}
			if after := snapshotBytes(t, f); !bytes.Equal(before, after) {
				t.Errorf("refused Restore changed state:\n%s\n%s", before, after)
			}
			select {
			case <-ch:
				t.Errorf("refused Restore closed Changed")
			default:
			}
		})
	}
}

func TestRestoreMinimalSnapshots(t *testing.T) {
	cases := []struct {
		name string
		data string
	}{
		{"null state", `{"format":1,"state":null}`},
		{"no state", `{"format":1}`},
		{"state without members", `{"format":1,"state":{"cluster_id":"c","applied_index":5}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(t, 0)
			applyAll(t, f, 1, history())
			if err := f.Restore(strings.NewReader(tc.data)); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if n := len(f.Members()); n != 0 {
				t.Errorf("Members after restore: %d, want 0", n)
			}
			if evs, first := f.Events(0, 0); len(evs) != 0 || first != 1 {
				t.Errorf("Events = %v first=%d", evs, first)
			}
			// The directory must be usable after restoring a snapshot without one.
			next := f.AppliedIndex() + 1
			r := f.Apply(next, enc(t, fsm.CmdSetMember, fsm.SetMember{Member: fsm.Member{ID: "m9", RaftAddr: "a:1"}, Time: at(0)}))
			if !r.Applied {
				t.Fatalf("SetMember after restore: %+v", r)
			}
			if _, ok := f.Member("m9"); !ok {
				t.Errorf("m9 missing")
			}
		})
	}
}

func TestDeterminism(t *testing.T) {
	var entries [][]byte
	for _, s := range history() {
		entries = append(entries, enc(t, s.typ, s.payload))
	}
	// Include rejected and no-op entries: they must be deterministic too.
	entries = append(entries,
		enc(t, fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: true, IfEpoch: u64(0), Time: at(time.Hour)}),
		enc(t, fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: false, TTL: time.Hour, Time: at(time.Hour)}),
		enc(t, fsm.CmdExpireMaintenance, fsm.ExpireMaintenance{Epoch: 1, Time: at(time.Hour)}),
		enc(t, fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: true, Reason: "disk swap", By: "carol", TTL: 45 * time.Minute, Time: at(100 * time.Minute)}),
		enc(t, fsm.CmdRemoveMember, fsm.RemoveMember{ID: "ghost", Time: at(time.Hour)}),
	)

	for _, capacity := range []int{0, 2, 5} {
		a, b := newFSM(t, capacity), newFSM(t, capacity)
		var ra, rb []fsm.Result
		for i, e := range entries {
			ra = append(ra, a.Apply(uint64(i+1), e))
			rb = append(rb, b.Apply(uint64(i+1), append([]byte(nil), e...)))
		}
		for i := range ra {
			if ra[i].Applied != rb[i].Applied || ra[i].Code != rb[i].Code || ra[i].Reason != rb[i].Reason ||
				ra[i].Index != rb[i].Index || !maintEqual(ra[i].Maintenance, rb[i].Maintenance) {
				t.Errorf("cap %d entry %d: results differ: %+v vs %+v", capacity, i+1, ra[i], rb[i])
			}
		}
		sa, sb := snapshotBytes(t, a), snapshotBytes(t, b)
		if !bytes.Equal(sa, sb) {
			t.Errorf("cap %d: snapshots differ:\n%s\n%s", capacity, sa, sb)
		}

		// A replica that restores a mid-way snapshot and applies the rest
		// ends byte-identical as well.
		mid := len(entries) / 2
		c := newFSM(t, capacity)
		for i, e := range entries[:mid] {
			c.Apply(uint64(i+1), e)
		}
		d := newFSM(t, capacity)
		if err := d.Restore(bytes.NewReader(snapshotBytes(t, c))); err != nil {
			t.Fatal(err)
		}
		for i := mid; i < len(entries); i++ {
			d.Apply(uint64(i+1), entries[i])
		}
		if sd := snapshotBytes(t, d); !bytes.Equal(sa, sd) {
			t.Errorf("cap %d: restore+replay differs from full replay:\n%s\n%s", capacity, sa, sd)
		}
	}
}

func TestChangedClosesOnApplyAndRestore(t *testing.T) {
	f := newFSM(t, 0)
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}

	ch1 := f.Changed()
	if closed(ch1) {
		t.Fatal("Changed closed before anything happened")
	}
	if f.Changed() != ch1 {
		t.Error("Changed returned a new channel without a change")
	}
	f.Apply(1, enc(t, fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: true, Reason: "r", Time: at(0)}))
	if !closed(ch1) {
		t.Fatal("Changed not closed by Apply")
	}
	ch2 := f.Changed()
	if ch2 == ch1 || closed(ch2) {
		t.Fatal("Changed after Apply must be a fresh open channel")
	}

	// A rejected entry is still an applied log entry: waiters on the
	// applied index must wake.
	f.Apply(2, enc(t, fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: false, IfEpoch: u64(99), Time: at(0)}))
	if !closed(ch2) {
		t.Fatal("Changed not closed by a rejected Apply")
	}

	snap := snapshotBytes(t, f)
	ch3 := f.Changed()
	if err := f.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if !closed(ch3) {
		t.Fatal("Changed not closed by Restore")
	}
	if closed(f.Changed()) {
		t.Fatal("Changed after Restore must be a fresh open channel")
	}
}

func TestAppliedIndexAndResult(t *testing.T) {
	f := newFSM(t, 0)
	if f.AppliedIndex() != 0 {
		t.Fatalf("fresh AppliedIndex = %d", f.AppliedIndex())
	}
	cases := []struct {
		name        string
		index       uint64
		s           step
		wantApplied bool
		wantCode    string
		wantM       fsm.Maintenance
	}{
		{"init at 5", 5, step{fsm.CmdInitCluster, fsm.InitCluster{ClusterID: "c", Time: at(0)}}, true, "", fsm.Maintenance{}},
		{"enable at 9", 9, step{fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: true, Reason: "r", By: "a", TTL: time.Minute, Time: at(time.Hour)}}, true, "",
			fsm.Maintenance{Enabled: true, Epoch: 1, Reason: "r", By: "a", Since: tp(at(time.Hour)), ExpiresAt: tp(at(61 * time.Minute))}},
		{"rejected at 10 reports current state", 10, step{fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: false, IfEpoch: u64(0), Time: at(2 * time.Hour)}}, false, fsm.RejectEpochMismatch,
			fsm.Maintenance{Enabled: true, Epoch: 1, Reason: "r", By: "a", Since: tp(at(time.Hour)), ExpiresAt: tp(at(61 * time.Minute))}},
		{"no-op init at 11", 11, step{fsm.CmdInitCluster, fsm.InitCluster{ClusterID: "other", Time: at(0)}}, false, "",
			fsm.Maintenance{Enabled: true, Epoch: 1, Reason: "r", By: "a", Since: tp(at(time.Hour)), ExpiresAt: tp(at(61 * time.Minute))}},
		{"expire at 20", 20, step{fsm.CmdExpireMaintenance, fsm.ExpireMaintenance{Epoch: 1, Time: at(61 * time.Minute)}}, true, "",
			fsm.Maintenance{Enabled: false, Epoch: 2, Reason: "maintenance ttl expired", By: "ttl", Since: tp(at(61 * time.Minute))}},
	}
	for _, tc := range cases {
		r := f.Apply(tc.index, enc(t, tc.s.typ, tc.s.payload))
		if r.Applied != tc.wantApplied || r.Code != tc.wantCode {
			t.Errorf("%s: Result applied=%t code=%q, want %t %q (%s)", tc.name, r.Applied, r.Code, tc.wantApplied, tc.wantCode, r.Reason)
		}
		if r.Index != tc.index {
			t.Errorf("%s: Result.Index = %d, want %d", tc.name, r.Index, tc.index)
		}
		if f.AppliedIndex() != tc.index {
			t.Errorf("%s: AppliedIndex = %d, want %d", tc.name, f.AppliedIndex(), tc.index)
		}
		if !maintEqual(r.Maintenance, tc.wantM) {
			t.Errorf("%s: Result.Maintenance = %s, want %s", tc.name, fmtM(r.Maintenance), fmtM(tc.wantM))
		}
		if !maintEqual(r.Maintenance, f.Maintenance()) {
			t.Errorf("%s: Result.Maintenance %s != FSM %s", tc.name, fmtM(r.Maintenance), fmtM(f.Maintenance()))
		}
	}
}

// Values handed out by the FSM must not alias its state.
func TestReturnedValuesDoNotAlias(t *testing.T) {
	f := newFSM(t, 0)
	applyAll(t, f, 1, history())
	r := f.Apply(11, enc(t, fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: true, Reason: "x", TTL: time.Hour, Time: at(5 * time.Hour)}))
	before := snapshotBytes(t, f)

	*r.Maintenance.ExpiresAt = time.Time{}
	*r.Maintenance.Since = time.Time{}
	m := f.Maintenance()
	*m.ExpiresAt = time.Time{}
	*m.Since = time.Time{}
	evs, _ := f.Events(0, 0)
	evs[0].Type = "tampered"
	st := f.Snapshot()
	st.Members["m1"].RPCAddr = "tampered"
	st.Maintenance.ExpiresAt = nil
	st.Events[0].Index = 999
	st.ClusterID = "tampered"

	if after := snapshotBytes(t, f); !bytes.Equal(before, after) {
		t.Errorf("mutating returned values changed the FSM:\n%s\n%s", before, after)
	}
}

// Run with -race: queries and snapshots concurrent with Apply.
func TestConcurrentReadersAndApply(t *testing.T) {
	f := newFSM(t, 16)
	const n = 200
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				_ = f.Maintenance()
				_ = f.Members()
				_, _ = f.Member("m1")
				_, _ = f.Events(0, 5)
				_ = f.AppliedIndex()
				_ = f.ClusterID()
				var buf bytes.Buffer
				if err := fsm.WriteSnapshot(&buf, f.Snapshot()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			ch := f.Changed()
			select {
			case <-done:
				return
			case <-ch:
			}
		}
	}()
	for i := uint64(1); i <= n; i++ {
		var b []byte
		switch i % 3 {
		case 0:
			b = enc(t, fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: i%2 == 0, Reason: "r", Time: at(time.Duration(i) * time.Second)})
		case 1:
			b = enc(t, fsm.CmdSetMember, fsm.SetMember{Member: fsm.Member{ID: "m1", RaftAddr: "a", Version: string(rune('a' + i%26))}, Time: at(time.Duration(i) * time.Second)})
		default:
			b = enc(t, fsm.CmdRemoveMember, fsm.RemoveMember{ID: "m1", Time: at(time.Duration(i) * time.Second)})
		}
		f.Apply(i, b)
	}
	close(done)
	wg.Wait()
	if f.AppliedIndex() != n {
		t.Errorf("AppliedIndex = %d, want %d", f.AppliedIndex(), n)
	}
}
