package fsm

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"
)

// registryCase is one command type as the raft log knows it: its wire
// version and protocol level (pinned here, independently of the registry),
// a payload that applies at the end of registrySetup, and the handler the
// type must reach.
type registryCase struct {
	typ               string
	version, protocol int
	payload           any
	newPayload        func() any                               // pointer to a zero payload
	direct            func(f *FSM, index uint64, p any) Result // the typed handler
}

func rc[T any](typ string, version, protocol int, payload T, handler func(*FSM, uint64, T) Result) registryCase {
	return registryCase{typ: typ, version: version, protocol: protocol, payload: payload,
		newPayload: func() any { return new(T) },
		direct:     func(f *FSM, index uint64, p any) Result { return handler(f, index, p.(T)) }}
}

var rt0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// registrySetup leaves: member m1; datanodes 1, 2, 3 (3 holds nothing);
// table "t" with region 1 on datanode 1 and region 2 on datanode 2;
// maintenance enabled at epoch 1.
func registrySetup(t *testing.T, f *FSM) {
	t.Helper()
	steps := []struct {
		typ     string
		payload any
	}{
		{CmdSetMember, SetMember{Member: Member{ID: "m1", RaftAddr: "10.0.0.1:7000"}, Time: rt0}},
		{CmdRegisterDatanode, RegisterDatanode{ID: 1, Addr: "10.1.0.1:9000", Time: rt0}},
		{CmdRegisterDatanode, RegisterDatanode{ID: 2, Addr: "10.1.0.2:9000", Time: rt0}},
		{CmdRegisterDatanode, RegisterDatanode{ID: 3, Addr: "10.1.0.3:9000", Time: rt0}},
		{CmdCreateTable, CreateTable{Name: "t", Placement: []uint64{1, 2}, Time: rt0}},
		{CmdSetMaintenance, SetMaintenance{Enabled: true, Reason: "upgrade", By: "alice", Time: rt0}},
	}
	for i, s := range steps {
		b, err := Encode(s.typ, s.payload)
		if err != nil {
			t.Fatal(err)
		}
		if r := f.Apply(uint64(i+1), b); !r.Applied {
			t.Fatalf("setup %s: %+v", s.typ, r)
		}
	}
}

func registryCases() []registryCase {
	at := rt0.Add(time.Hour)
	return []registryCase{
		rc(CmdInitCluster, 1, 1, InitCluster{ClusterID: "c-1", Time: at}, (*FSM).applyInitCluster),
		rc(CmdSetMaintenance, 1, 1, SetMaintenance{Enabled: false, Reason: "done", By: "bob", IfEpoch: new(uint64(1)), Time: at}, (*FSM).applySetMaintenance),
		rc(CmdExpireMaintenance, 1, 1, ExpireMaintenance{Epoch: 1, Time: at}, (*FSM).applyExpireMaintenance),
		rc(CmdSetMember, 1, 1, SetMember{Member: Member{ID: "m2", RaftAddr: "10.0.0.2:7000", RPCAddr: "10.0.0.2:8080", Version: "1.1.0", Protocol: 2}, Time: at}, (*FSM).applySetMember),
		rc(CmdRemoveMember, 1, 1, RemoveMember{ID: "m1", By: "bob", Time: at}, (*FSM).applyRemoveMember),
		rc(CmdRegisterDatanode, 1, 1, RegisterDatanode{ID: 4, Addr: "10.1.0.4:9000", Time: at}, (*FSM).applyRegisterDatanode),
		rc(CmdRemoveDatanode, 1, 1, RemoveDatanode{ID: 3, By: "bob", Time: at}, (*FSM).applyRemoveDatanode),
		rc(CmdCreateTable, 1, 1, CreateTable{Name: "u", Placement: []uint64{1, 3}, By: "bob", Time: at}, (*FSM).applyCreateTable),
		rc(CmdDropTable, 1, 1, DropTable{Name: "t", By: "bob", Time: at}, (*FSM).applyDropTable),
		rc(CmdMoveRegions, 1, 1, MoveRegions{Cause: CauseManual, Moves: []Move{{Region: 1, From: 1, To: 3}}, By: "bob", Time: at}, (*FSM).applyMoveRegions),
		rc(CmdSetAdminState, 1, 1, SetDatanodeAdminState{ID: 3, State: AdminCordoned, By: "bob", Time: at}, (*FSM).applySetAdminState),
		rc(CmdSetProcedures, 1, 3, SetProcedures{Paused: true, Reason: "upgrade", By: "bob", Time: at}, (*FSM).applySetProcedures),
		rc(CmdRecordWatchEvent, 1, WatchProtocol, RecordWatchEvent{Type: EventDatanodeFailed, Datanode: 2, Addr: "10.1.0.2:9000", Time: at}, (*FSM).applyRecordWatchEvent),
	}
}

func newRegistryFSM(t *testing.T) *FSM {
	return New(Config{OnUnknown: func(index uint64, typ string, v int) {
		t.Errorf("unexpected OnUnknown(%d, %q, %d)", index, typ, v)
	}})
}

func TestRegistryCoversEveryCommand(t *testing.T) {
	var registered, tested []string
	for typ := range commands {
		registered = append(registered, typ)
	}
	for _, tc := range registryCases() {
		tested = append(tested, tc.typ)
	}
	slices.Sort(registered)
	slices.Sort(tested)
	if !slices.Equal(registered, tested) {
		t.Fatalf("registered commands %v, test cases %v: every command needs exactly one case", registered, tested)
	}
}

func TestRegistryKnownAndProtocol(t *testing.T) {
	for _, tc := range registryCases() {
		t.Run(tc.typ, func(t *testing.T) {
			spec := commands[tc.typ]
			if spec.version != tc.version || spec.protocol != tc.protocol {
				t.Errorf("registered v%d protocol %d, want v%d protocol %d (the raft log format must not change)",
					spec.version, spec.protocol, tc.version, tc.protocol)
			}
			if !Known(tc.typ, tc.version) {
				t.Errorf("Known(%q, %d) = false", tc.typ, tc.version)
			}
			for _, v := range []int{-1, 0, tc.version + 1} {
				if Known(tc.typ, v) {
					t.Errorf("Known(%q, %d) = true", tc.typ, v)
				}
			}
			if got := ProtocolOf(tc.typ); got != tc.protocol || got < 1 || got > Protocol {
				t.Errorf("ProtocolOf(%q) = %d, want %d (within 1..%d)", tc.typ, got, tc.protocol, Protocol)
			}
		})
	}
	for _, typ := range []string{"", "SplitRegion", "initcluster"} {
		if Known(typ, 1) || ProtocolOf(typ) != 0 {
			t.Errorf("unknown type %q: Known = %t, ProtocolOf = %d; want false, 0", typ, Known(typ, 1), ProtocolOf(typ))
		}
	}
}

func TestRegistryRoundTrip(t *testing.T) {
	for _, tc := range registryCases() {
		t.Run(tc.typ, func(t *testing.T) {
			data, err := Encode(tc.typ, tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			var env Command
			if err := json.Unmarshal(data, &env); err != nil {
				t.Fatal(err)
			}
			if env.Type != tc.typ || env.V != tc.version {
				t.Errorf("envelope %s v%d, want %s v%d", env.Type, env.V, tc.typ, tc.version)
			}
			back := tc.newPayload()
			if err := json.Unmarshal(env.Payload, back); err != nil {
				t.Fatal(err)
			}
			if got := reflect.ValueOf(back).Elem().Interface(); !reflect.DeepEqual(got, tc.payload) {
				t.Errorf("payload round trip:\n got %+v\nwant %+v", got, tc.payload)
			}

			// Apply through the log and call the typed handler directly on
			// a twin: same Result, same state.
			const idx = 100
			viaLog, viaHandler := newRegistryFSM(t), newRegistryFSM(t)
			registrySetup(t, viaLog)
			registrySetup(t, viaHandler)
			got := viaLog.Apply(idx, data)
			if !got.Applied || got.Index != idx {
				t.Errorf("Apply = %+v, want applied at %d", got, idx)
			}
			viaHandler.mu.Lock()
			want := tc.direct(viaHandler, idx, tc.payload)
			viaHandler.st.AppliedIndex = idx
			want.Index, want.Maintenance = idx, cloneMaintenance(viaHandler.st.Maintenance)
			viaHandler.mu.Unlock()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Apply result differs from the handler's:\n got %+v\nwant %+v", got, want)
			}
			if a, b := registryState(t, viaLog), registryState(t, viaHandler); !bytes.Equal(a, b) {
				t.Errorf("state differs:\nvia log     %s\nvia handler %s", a, b)
			}
		})
	}
}

// A payload that does not decode into the command's type is rejected with
// exactly the decoder's error, and changes nothing but AppliedIndex.
func TestRegistryUndecodablePayload(t *testing.T) {
	for _, tc := range registryCases() {
		for _, payload := range []string{`"x"`, `[1]`, `{"time":"yesterday"}`} {
			t.Run(tc.typ+"/"+payload, func(t *testing.T) {
				f := newRegistryFSM(t)
				registrySetup(t, f)
				before := registryState(t, f)
				wantErr := json.Unmarshal([]byte(payload), tc.newPayload())
				if wantErr == nil {
					t.Fatalf("payload %s decodes into %T", payload, tc.payload)
				}
				data, _ := json.Marshal(Command{Type: tc.typ, V: tc.version, Payload: json.RawMessage(payload)})
				r := f.Apply(50, data)
				if r.Applied || r.Code != RejectInvalid || r.Reason != wantErr.Error() || r.Index != 50 {
					t.Errorf("Result = %+v, want %s %q at 50", r, RejectInvalid, wantErr)
				}
				f.mu.Lock()
				f.st.AppliedIndex = 6 // the setup's last index
				f.mu.Unlock()
				if after := registryState(t, f); !bytes.Equal(before, after) {
					t.Errorf("state changed:\nbefore %s\n after %s", before, after)
				}
			})
		}
	}
}

func registryState(t *testing.T, f *FSM) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, f.Snapshot()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
