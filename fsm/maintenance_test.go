package fsm_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
)

func enable(reason, by string, ttl time.Duration, when time.Time) step {
	return step{fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: true, Reason: reason, By: by, TTL: ttl, Time: when}}
}

func disable(reason, by string, when time.Time) step {
	return step{fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: false, Reason: reason, By: by, Time: when}}
}

func withIfEpoch(s step, epoch uint64) step {
	p := s.payload.(fsm.SetMaintenance)
	p.IfEpoch = u64(epoch)
	return step{s.typ, p}
}

func withTTL(s step, ttl time.Duration) step {
	p := s.payload.(fsm.SetMaintenance)
	p.TTL = ttl
	return step{s.typ, p}
}

func withEpoch(m fsm.Maintenance, e uint64) fsm.Maintenance { m.Epoch = e; return m }

func expire(epoch uint64, when time.Time) step {
	return step{fsm.CmdExpireMaintenance, fsm.ExpireMaintenance{Epoch: epoch, Time: when}}
}

// maintCase applies setup at indexes 1.., then cmd at the next index, and
// checks the result, the resulting window and the single event (if any)
// the command added.
type maintCase struct {
	name        string
	setup       []step
	cmd         step
	wantApplied bool
	wantCode    string
	// wantM is the window after cmd; for rejected or idempotent commands it
	// must equal the window before cmd.
	wantM fsm.Maintenance
	// wantEvent is the event cmd adds (Index is filled in); nil: none.
	wantEvent *fsm.Event
}

func runMaintCases(t *testing.T, cases []maintCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(t, 0)
			idx := applyAll(t, f, 1, tc.setup)
			before := f.Snapshot()
			evsBefore, _ := f.Events(0, 0)

			r := f.Apply(idx, enc(t, tc.cmd.typ, tc.cmd.payload))

			if r.Applied != tc.wantApplied || r.Code != tc.wantCode {
				t.Errorf("Result applied=%t code=%q reason=%q, want applied=%t code=%q",
					r.Applied, r.Code, r.Reason, tc.wantApplied, tc.wantCode)
			}
			if r.Code != "" && r.Reason == "" {
				t.Errorf("rejection %q carries no reason", r.Code)
			}
			if r.Index != idx || f.AppliedIndex() != idx {
				t.Errorf("Result.Index=%d AppliedIndex=%d, want %d", r.Index, f.AppliedIndex(), idx)
			}
			got := f.Maintenance()
			if !maintEqual(got, tc.wantM) {
				t.Errorf("Maintenance:\n got %s\nwant %s", fmtM(got), fmtM(tc.wantM))
			}
			if !maintEqual(r.Maintenance, got) {
				t.Errorf("Result.Maintenance %s != Maintenance() %s", fmtM(r.Maintenance), fmtM(got))
			}

			evsAfter, _ := f.Events(0, 0)
			if tc.wantEvent == nil {
				if !eventsEqual(evsBefore, evsAfter) {
					t.Errorf("unexpected event(s): before %d, after %d: %+v", len(evsBefore), len(evsAfter), evsAfter)
				}
				// Nothing but AppliedIndex may have changed.
				after := f.Snapshot()
				after.AppliedIndex = before.AppliedIndex
				if a, b := stateBytes(t, before), stateBytes(t, after); !bytes.Equal(a, b) {
					t.Errorf("state changed:\nbefore %s\n after %s", a, b)
				}
				return
			}
			if len(evsAfter) != len(evsBefore)+1 {
				t.Fatalf("want exactly one new event, had %d now %d", len(evsBefore), len(evsAfter))
			}
			want := *tc.wantEvent
			want.Index = idx
			if ev := evsAfter[len(evsAfter)-1]; !eventEqual(ev, want) {
				t.Errorf("event:\n got %+v\nwant %+v", ev, want)
			}
		})
	}
}

func TestSetMaintenance(t *testing.T) {
	tEnable := at(0)
	tLater := at(10 * time.Minute)
	expStr := func(tm time.Time) map[string]string {
		return map[string]string{"expires_at": tm.UTC().Format(time.RFC3339Nano)}
	}
	onWindow := fsm.Maintenance{Enabled: true, Epoch: 1, Reason: "upgrade", By: "alice", Since: tp(tEnable)}

	runMaintCases(t, []maintCase{
		{
			name:        "enable from fresh",
			cmd:         enable("upgrade", "alice", 0, tEnable),
			wantApplied: true,
			wantM:       onWindow,
			wantEvent:   &fsm.Event{Time: tEnable, Type: fsm.EventMaintenanceEnabled, By: "alice", Reason: "upgrade", Epoch: 1},
		},
		{
			name:        "enable with ttl sets expires_at = time+ttl",
			cmd:         enable("upgrade", "alice", 90*time.Minute, tEnable),
			wantApplied: true,
			wantM:       fsm.Maintenance{Enabled: true, Epoch: 1, Reason: "upgrade", By: "alice", Since: tp(tEnable), ExpiresAt: tp(at(90 * time.Minute))},
			wantEvent: &fsm.Event{Time: tEnable, Type: fsm.EventMaintenanceEnabled, By: "alice", Reason: "upgrade", Epoch: 1,
				Fields: expStr(at(90 * time.Minute))},
		},
		{
			name:        "idempotent repeat enable: no epoch bump, no event, since kept",
			setup:       []step{enable("upgrade", "alice", 0, tEnable)},
			cmd:         enable("upgrade", "alice", 0, tLater),
			wantApplied: true,
			wantM:       onWindow,
		},
		{
			name:        "idempotent repeat enable with the same expiry",
			setup:       []step{enable("upgrade", "alice", time.Hour, tEnable)},
			cmd:         enable("upgrade", "alice", 50*time.Minute, tLater),
			wantApplied: true,
			wantM:       fsm.Maintenance{Enabled: true, Epoch: 1, Reason: "upgrade", By: "alice", Since: tp(tEnable), ExpiresAt: tp(at(time.Hour))},
		},
		{
			name:        "idempotent repeat disable on a fresh cluster",
			cmd:         disable("", "", tLater),
			wantApplied: true,
			wantM:       fsm.Maintenance{},
		},
		{
			name:        "idempotent repeat disable after a disable",
			setup:       []step{enable("upgrade", "alice", 0, tEnable), disable("done", "bob", at(time.Minute))},
			cmd:         disable("done", "bob", tLater),
			wantApplied: true,
			wantM:       fsm.Maintenance{Enabled: false, Epoch: 2, Reason: "done", By: "bob", Since: tp(at(time.Minute))},
		},
		{
			name:        "new reason while enabled: epoch bump, since kept, updated event",
			setup:       []step{enable("upgrade", "alice", 0, tEnable)},
			cmd:         enable("upgrade part 2", "alice", 0, tLater),
			wantApplied: true,
			wantM:       fsm.Maintenance{Enabled: true, Epoch: 2, Reason: "upgrade part 2", By: "alice", Since: tp(tEnable)},
			wantEvent:   &fsm.Event{Time: tLater, Type: fsm.EventMaintenanceUpdated, By: "alice", Reason: "upgrade part 2", Epoch: 2},
		},
		{
			name:        "new by while enabled: epoch bump",
			setup:       []step{enable("upgrade", "alice", 0, tEnable)},
			cmd:         enable("upgrade", "bob", 0, tLater),
			wantApplied: true,
			wantM:       fsm.Maintenance{Enabled: true, Epoch: 2, Reason: "upgrade", By: "bob", Since: tp(tEnable)},
			wantEvent:   &fsm.Event{Time: tLater, Type: fsm.EventMaintenanceUpdated, By: "bob", Reason: "upgrade", Epoch: 2},
		},
		{
			name:        "adding a ttl while enabled: epoch bump, since kept",
			setup:       []step{enable("upgrade", "alice", 0, tEnable)},
			cmd:         enable("upgrade", "alice", time.Hour, tLater),
			wantApplied: true,
			wantM:       fsm.Maintenance{Enabled: true, Epoch: 2, Reason: "upgrade", By: "alice", Since: tp(tEnable), ExpiresAt: tp(tLater.Add(time.Hour))},
			wantEvent: &fsm.Event{Time: tLater, Type: fsm.EventMaintenanceUpdated, By: "alice", Reason: "upgrade", Epoch: 2,
				Fields: expStr(tLater.Add(time.Hour))},
		},
		{
			name:        "extending the ttl: new expires_at",
			setup:       []step{enable("upgrade", "alice", time.Hour, tEnable)},
			cmd:         enable("upgrade", "alice", time.Hour, tLater),
			wantApplied: true,
			wantM:       fsm.Maintenance{Enabled: true, Epoch: 2, Reason: "upgrade", By: "alice", Since: tp(tEnable), ExpiresAt: tp(tLater.Add(time.Hour))},
			wantEvent: &fsm.Event{Time: tLater, Type: fsm.EventMaintenanceUpdated, By: "alice", Reason: "upgrade", Epoch: 2,
				Fields: expStr(tLater.Add(time.Hour))},
		},
		{
			name:        "enable without ttl clears an earlier expiry",
			setup:       []step{enable("upgrade", "alice", time.Hour, tEnable)},
			cmd:         enable("upgrade", "alice", 0, tLater),
			wantApplied: true,
			wantM:       withEpoch(onWindow, 2),
			wantEvent:   &fsm.Event{Time: tLater, Type: fsm.EventMaintenanceUpdated, By: "alice", Reason: "upgrade", Epoch: 2},
		},
		{
			name:        "disable: since moves, expiry cleared, disabled event",
			setup:       []step{enable("upgrade", "alice", time.Hour, tEnable)},
			cmd:         disable("done", "bob", tLater),
			wantApplied: true,
			wantM:       fsm.Maintenance{Enabled: false, Epoch: 2, Reason: "done", By: "bob", Since: tp(tLater)},
			wantEvent:   &fsm.Event{Time: tLater, Type: fsm.EventMaintenanceDisabled, By: "bob", Reason: "done", Epoch: 2},
		},
		{
			name:        "re-enable after disable: since moves again",
			setup:       []step{enable("upgrade", "alice", 0, tEnable), disable("done", "bob", at(time.Minute))},
			cmd:         enable("again", "carol", 0, tLater),
			wantApplied: true,
			wantM:       fsm.Maintenance{Enabled: true, Epoch: 3, Reason: "again", By: "carol", Since: tp(tLater)},
			wantEvent:   &fsm.Event{Time: tLater, Type: fsm.EventMaintenanceEnabled, By: "carol", Reason: "again", Epoch: 3},
		},
		{
			// Any field change bumps the epoch (so compare-and-set sees it), even while off;
			// since only tracks flips of enabled, so it stays unset.
			name:        "reason change while disabled: epoch bump, since untouched",
			cmd:         disable("not now", "bob", tLater),
			wantApplied: true,
			wantM:       fsm.Maintenance{Enabled: false, Epoch: 1, Reason: "not now", By: "bob"},
			wantEvent:   &fsm.Event{Time: tLater, Type: fsm.EventMaintenanceUpdated, By: "bob", Reason: "not now", Epoch: 1},
		},
		{
			name:     "negative ttl rejected",
			setup:    []step{enable("upgrade", "alice", 0, tEnable)},
			cmd:      enable("other", "bob", -time.Minute, tLater),
			wantCode: fsm.RejectInvalid,
			wantM:    onWindow,
		},
		{
			name:     "negative ttl rejected on a fresh cluster",
			cmd:      enable("upgrade", "alice", -1, tLater),
			wantCode: fsm.RejectInvalid,
			wantM:    fsm.Maintenance{},
		},
		{
			name:     "ttl on disable rejected",
			setup:    []step{enable("upgrade", "alice", 0, tEnable)},
			cmd:      withTTL(disable("done", "bob", tLater), time.Hour),
			wantCode: fsm.RejectInvalid,
			wantM:    onWindow,
		},
		{
			name:     "if_epoch mismatch: nothing changes",
			setup:    []step{enable("upgrade", "alice", 0, tEnable)},
			cmd:      withIfEpoch(disable("done", "bob", tLater), 0),
			wantCode: fsm.RejectEpochMismatch,
			wantM:    onWindow,
		},
		{
			name:     "if_epoch ahead of the current epoch: mismatch",
			setup:    []step{enable("upgrade", "alice", 0, tEnable)},
			cmd:      withIfEpoch(disable("done", "bob", tLater), 2),
			wantCode: fsm.RejectEpochMismatch,
			wantM:    onWindow,
		},
		{
			name:     "if_epoch mismatch wins over an idempotent repeat",
			setup:    []step{enable("upgrade", "alice", 0, tEnable)},
			cmd:      withIfEpoch(enable("upgrade", "alice", 0, tLater), 7),
			wantCode: fsm.RejectEpochMismatch,
			wantM:    onWindow,
		},
		{
			name:        "if_epoch match: applied",
			setup:       []step{enable("upgrade", "alice", 0, tEnable)},
			cmd:         withIfEpoch(disable("done", "bob", tLater), 1),
			wantApplied: true,
			wantM:       fsm.Maintenance{Enabled: false, Epoch: 2, Reason: "done", By: "bob", Since: tp(tLater)},
			wantEvent:   &fsm.Event{Time: tLater, Type: fsm.EventMaintenanceDisabled, By: "bob", Reason: "done", Epoch: 2},
		},
		{
			name:        "if_epoch 0 on a fresh cluster: applied",
			cmd:         withIfEpoch(enable("upgrade", "alice", 0, tEnable), 0),
			wantApplied: true,
			wantM:       onWindow,
			wantEvent:   &fsm.Event{Time: tEnable, Type: fsm.EventMaintenanceEnabled, By: "alice", Reason: "upgrade", Epoch: 1},
		},
		{
			name:        "if_epoch match on an idempotent repeat: applied, no bump",
			setup:       []step{enable("upgrade", "alice", 0, tEnable)},
			cmd:         withIfEpoch(enable("upgrade", "alice", 0, tLater), 1),
			wantApplied: true,
			wantM:       onWindow,
		},
	})
}

func TestExpireMaintenance(t *testing.T) {
	tEnable := at(0)
	tExpire := at(time.Hour)
	expired := func(epoch uint64) fsm.Maintenance {
		return fsm.Maintenance{Enabled: false, Epoch: epoch, Reason: "maintenance ttl expired", By: "ttl", Since: tp(tExpire)}
	}
	expiredEvent := func(newEpoch uint64, old string) *fsm.Event {
		return &fsm.Event{Time: tExpire, Type: fsm.EventMaintenanceExpired, By: "ttl", Epoch: newEpoch,
			Fields: map[string]string{"expired_epoch": old}}
	}

	runMaintCases(t, []maintCase{
		{
			name:        "current epoch: window ends",
			setup:       []step{enable("upgrade", "alice", time.Hour, tEnable)},
			cmd:         expire(1, tExpire),
			wantApplied: true,
			wantM:       expired(2),
			wantEvent:   expiredEvent(2, "1"),
		},
		{
			name:        "current epoch without ttl still ends the window",
			setup:       []step{enable("upgrade", "alice", 0, tEnable)},
			cmd:         expire(1, tExpire),
			wantApplied: true,
			wantM:       expired(2),
			wantEvent:   expiredEvent(2, "1"),
		},
		{
			name:        "current epoch after updates",
			setup:       []step{enable("upgrade", "alice", time.Hour, tEnable), enable("upgrade", "alice", 2*time.Hour, at(time.Minute))},
			cmd:         expire(2, tExpire),
			wantApplied: true,
			wantM:       expired(3),
			wantEvent:   expiredEvent(3, "2"),
		},
		{
			name:     "stale epoch: a newer window is untouched",
			setup:    []step{enable("upgrade", "alice", time.Hour, tEnable), enable("upgrade", "alice", 2*time.Hour, at(time.Minute))},
			cmd:      expire(1, tExpire),
			wantCode: fsm.RejectEpochMismatch,
			wantM: fsm.Maintenance{Enabled: true, Epoch: 2, Reason: "upgrade", By: "alice", Since: tp(tEnable),
				ExpiresAt: tp(at(time.Minute + 2*time.Hour))},
		},
		{
			name:     "future epoch rejected",
			setup:    []step{enable("upgrade", "alice", time.Hour, tEnable)},
			cmd:      expire(2, tExpire),
			wantCode: fsm.RejectEpochMismatch,
			wantM:    fsm.Maintenance{Enabled: true, Epoch: 1, Reason: "upgrade", By: "alice", Since: tp(tEnable), ExpiresAt: tp(at(time.Hour))},
		},
		{
			name:     "already disabled at the same epoch",
			setup:    []step{enable("upgrade", "alice", time.Hour, tEnable), disable("done", "bob", at(time.Minute))},
			cmd:      expire(2, tExpire),
			wantCode: fsm.RejectEpochMismatch,
			wantM:    fsm.Maintenance{Enabled: false, Epoch: 2, Reason: "done", By: "bob", Since: tp(at(time.Minute))},
		},
		{
			name:     "already disabled, old epoch",
			setup:    []step{enable("upgrade", "alice", time.Hour, tEnable), disable("done", "bob", at(time.Minute))},
			cmd:      expire(1, tExpire),
			wantCode: fsm.RejectEpochMismatch,
			wantM:    fsm.Maintenance{Enabled: false, Epoch: 2, Reason: "done", By: "bob", Since: tp(at(time.Minute))},
		},
		{
			name:     "fresh cluster, epoch 0",
			cmd:      expire(0, tExpire),
			wantCode: fsm.RejectEpochMismatch,
			wantM:    fsm.Maintenance{},
		},
		{
			name:     "second expiry of the same window",
			setup:    []step{enable("upgrade", "alice", time.Hour, tEnable), expire(1, tExpire)},
			cmd:      expire(1, tExpire.Add(time.Second)),
			wantCode: fsm.RejectEpochMismatch,
			wantM:    expired(2),
		},
	})
}

// An ExpireMaintenance for the window's epoch must not end a window that was
// re-enabled (and thus has a newer epoch) in between.
func TestExpireAfterDisableAndReenable(t *testing.T) {
	f := newFSM(t, 0)
	r := f.Apply(1, enc(t, fsm.CmdSetMaintenance, fsm.SetMaintenance{Enabled: true, Reason: "a", TTL: time.Hour, Time: at(0)}))
	timerEpoch := r.Maintenance.Epoch
	applyAll(t, f, 2, []step{disable("a done", "x", at(time.Minute)), enable("b", "y", 0, at(2*time.Minute))})
	r = f.Apply(4, enc(t, fsm.CmdExpireMaintenance, fsm.ExpireMaintenance{Epoch: timerEpoch, Time: at(time.Hour)}))
	if r.Applied || r.Code != fsm.RejectEpochMismatch {
		t.Fatalf("stale expiry: %+v", r)
	}
	if m := f.Maintenance(); !m.Enabled || m.Epoch != 3 || m.Reason != "b" {
		t.Fatalf("window b was disturbed: %s", fmtM(m))
	}
}
