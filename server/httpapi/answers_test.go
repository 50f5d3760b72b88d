package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/leader"
	"github.com/metasrv/metasrv/server/raftnode"
	"github.com/metasrv/metasrv/server/wire"
)

func TestToAPIError(t *testing.T) {
	since := time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("x", 3600))
	m := fsm.Maintenance{Enabled: true, Epoch: 4, Reason: "upgrade", By: "ops", Since: &since}
	nl := &leader.NotLeaderError{LeaderID: "n2", LeaderRPCAddr: "10.0.0.2:3002"}
	rej := func(code string) error { return raftnode.Rejected(fsm.Result{Code: code, Reason: "because " + code}) }
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
		msg    string
		extra  map[string]any
	}{
		{"not leader bare", raftnode.ErrNotLeader, 503, "not_leader",
			"this node is not the leader; ask the leader (GET /admin/leader) or drop ?stale", nil},
		{"not leader own message", raftnode.Errorf(raftnode.ErrNotLeader, "lost it"), 503, "not_leader", "lost it", nil},
		{"no leader", raftnode.ErrNoLeader, 503, "no_leader", "no leader", nil},
		{"no leader own message", raftnode.Errorf(raftnode.ErrNoLeader, "none after 5s"), 503, "no_leader", "none after 5s", nil},
		{"timeout", raftnode.ErrTimeout, 503, "timeout", "timed out", nil},
		{"timeout wrapped", fmt.Errorf("apply: %w", raftnode.ErrTimeout), 503, "timeout", "apply: timed out", nil},
		{"outcome unknown", raftnode.ErrOutcomeUnknown, 504, "outcome_unknown", "outcome unknown", nil},
		{"outcome unknown with cause", raftnode.OutcomeUnknown(errors.New("leadership lost")), 504, "outcome_unknown",
			"the write may or may not have been applied (leadership lost); read the state before retrying", nil},
		{"upgrade", raftnode.ErrUpgradeInProgress, 503, "upgrade_in_progress", "upgrade in progress", nil},
		{"upgrade own message", raftnode.Errorf(raftnode.ErrUpgradeInProgress, "n3 is v1"), 503, "upgrade_in_progress", "n3 is v1", nil},
		{"transfer", raftnode.ErrTransferFailed, 503, "transfer_failed", "leadership transfer failed", nil},
		{"transfer own message", raftnode.Errorf(raftnode.ErrTransferFailed, "n2 lagging"), 503, "transfer_failed", "n2 lagging", nil},
		{"not found", raftnode.ErrNotFound, 404, "not_found", "not found", nil},
		{"not found own message", raftnode.Errorf(raftnode.ErrNotFound, "no region 9"), 404, "not_found", "no region 9", nil},
		{"conflict", raftnode.ErrConflict, 409, "conflict", "conflict", nil},
		{"conflict own message", raftnode.Errorf(raftnode.ErrConflict, "table t exists"), 409, "conflict", "table t exists", nil},
		{"no datanode", leader.ErrNoDatanode, 503, "no_datanode", "no datanode is alive to take regions", nil},
		{"not leader error", nl, 503, "not_leader", nl.Error(),
			map[string]any{"leader_id": "n2", "leader_rpc_addr": "10.0.0.2:3002"}},
		{"not leader error, no leader known", &leader.NotLeaderError{}, 503, "not_leader", nl.Error(),
			map[string]any{"leader_id": "", "leader_rpc_addr": ""}},
		{"not leader error wrapped", fmt.Errorf("heartbeat: %w", nl), 503, "not_leader", "heartbeat: " + nl.Error(),
			map[string]any{"leader_id": "n2", "leader_rpc_addr": "10.0.0.2:3002"}},

		{"epoch mismatch", raftnode.Rejected(fsm.Result{Code: fsm.RejectEpochMismatch, Reason: "epoch 3 is not 4", Maintenance: m}),
			409, "epoch_mismatch", "epoch 3 is not 4", map[string]any{"maintenance": toVerbose(m)}},
		{"invalid", rej(fsm.RejectInvalid), 400, "bad_request", "because invalid", nil},
		{"rejected not found", rej(fsm.RejectNotFound), 404, "not_found", "because not_found", nil},
		{"exists", rej(fsm.RejectExists), 409, "conflict", "because exists", nil},
		{"has regions", rej(fsm.RejectHasRegions), 409, "conflict", "because has_regions", nil},
		{"cordoned", rej(fsm.RejectCordoned), 409, "conflict", "because cordoned", nil},
		{"stale owner", rej(fsm.RejectStaleOwner), 409, "conflict", "because stale_owner", nil},
		{"not draining", rej(fsm.RejectNotDraining), 409, "conflict", "because not_draining", nil},
		{"maintenance", rej(fsm.RejectMaintenance), 409, "conflict", "because maintenance", nil},
		{"unknown rejection", rej("brand_new"), 409, "conflict", "because brand_new", nil},
		{"rejection wrapped", fmt.Errorf("create: %w", rej(fsm.RejectInvalid)), 400, "bad_request", "because invalid", nil},

		{"own answer", badRequest("x=%d", 1), 400, "bad_request", "x=1", nil},
		{"own answer wrapped", fmt.Errorf("parse: %w", errorf(413, codeTooLarge, "big")), 413, "payload_too_large", "big", nil},
		{"unknown error", errors.New("disk on fire"), 500, "internal", "disk on fire", nil},
		{"join refused is no API answer", raftnode.ErrJoinRefused, 500, "internal", "join refused", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ae := toAPIError(tc.err)
			if ae.Status != tc.status || ae.Code != tc.code || ae.Msg != tc.msg {
				t.Fatalf("toAPIError(%v) = %d %s %q, want %d %s %q", tc.err, ae.Status, ae.Code, ae.Msg, tc.status, tc.code, tc.msg)
			}
			if len(ae.Extra) != 0 || len(tc.extra) != 0 {
				if !reflect.DeepEqual(ae.Extra, tc.extra) {
					t.Fatalf("extra = %#v, want %#v", ae.Extra, tc.extra)
				}
			}
		})
	}
}

// TestAnswersTableIsReachable: every entry of the table answers as it
// says (none is shadowed by an earlier one).
func TestAnswersTableIsReachable(t *testing.T) {
	for _, a := range answers {
		err := a.err
		name := a.reject
		if err == nil {
			err = raftnode.Rejected(fsm.Result{Code: a.reject, Reason: "r"})
		} else {
			name = a.err.Error()
		}
		ae := toAPIError(err)
		if ae.Status != a.status || ae.Code != a.code {
			t.Errorf("%s: %d %s, want %d %s", name, ae.Status, ae.Code, a.status, a.code)
		}
		if a.msg != "" && ae.Msg != a.msg {
			t.Errorf("%s: message %q, want %q", name, ae.Msg, a.msg)
		}
	}
}

func TestWriteError(t *testing.T) {
	m := fsm.Maintenance{Enabled: true, Epoch: 2}
	for _, tc := range []struct {
		err        error
		status     int
		retryAfter string
		body       map[string]any
	}{
		{raftnode.ErrNoLeader, 503, "1", map[string]any{"error": "no leader", "code": "no_leader"}},
		{&leader.NotLeaderError{LeaderID: "n1", LeaderRPCAddr: "h:1"}, 503, "1", map[string]any{
			"error": "this node is not the leader; send heartbeats to leader_rpc_addr", "code": "not_leader",
			"leader_id": "n1", "leader_rpc_addr": "h:1"}},
		{leader.ErrNoDatanode, 503, "1", map[string]any{"error": "no datanode is alive to take regions", "code": "no_datanode"}},
		{raftnode.ErrOutcomeUnknown, 504, "", map[string]any{"error": "outcome unknown", "code": "outcome_unknown"}},
		{raftnode.ErrNotFound, 404, "", map[string]any{"error": "not found", "code": "not_found"}},
		{raftnode.Rejected(fsm.Result{Code: fsm.RejectEpochMismatch, Reason: "stale", Maintenance: m}), 409, "", map[string]any{
			"error": "stale", "code": "epoch_mismatch", "maintenance": map[string]any{"enabled": true, "epoch": float64(2),
				"reason": "", "by": "", "since": nil, "expires_at": nil}}},
		{errors.New("boom"), 500, "", map[string]any{"error": "boom", "code": "internal"}},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			rec := httptest.NewRecorder()
			writeError(rec, tc.err)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if !reflect.DeepEqual(body, tc.body) {
				t.Fatalf("body %v, want %v", body, tc.body)
			}
			if e := wire.ParseError(rec.Body.Bytes()); e.Code != tc.body["code"] {
				t.Fatalf("wire.ParseError: %+v", e)
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	writeJSON(rec, http.StatusCreated, wire.Enabled{Enabled: true})
	if rec.Code != 201 || rec.Body.String() != "{\"enabled\":true}" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q %v", rec.Code, rec.Body, rec.Header())
	}
}
