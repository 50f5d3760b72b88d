package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/metasrv/metasrv/failover"
	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/leader"
	"github.com/metasrv/metasrv/server/raftnode"
	"github.com/metasrv/metasrv/server/wire"
)

// Error codes of this layer's own answers.
const (
	codeBadRequest       = "bad_request"
	codeUnauthorized     = "unauthorized"
	codeForbidden        = "forbidden"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeConflict         = "conflict"
	codeTooLarge         = "payload_too_large"
	codeInternal         = "internal"
)

// answer is how one kind of error is told to a client.
type answer struct {
	status int
	code   string
	// msg, when set, replaces the message of the bare sentinel.
	msg string
}

// answers is the one table from lower-layer errors and FSM rejection codes
// to HTTP answers. A client must be able to tell "nothing was applied, safe
// to retry" (503 no_leader/not_leader/timeout) from "the outcome is unknown"
// (504 outcome_unknown).
var answers = []struct {
	err    error  // matched with errors.Is
	reject string // or an fsm.Result code
	answer
}{
	{err: raftnode.ErrNotLeader, answer: answer{http.StatusServiceUnavailable, wire.CodeNotLeader,
		"this node is not the leader; ask the leader (GET /admin/leader) or drop ?stale"}},
	{err: raftnode.ErrNoLeader, answer: answer{http.StatusServiceUnavailable, wire.CodeNoLeader, ""}},
	{err: raftnode.ErrTimeout, answer: answer{http.StatusServiceUnavailable, wire.CodeTimeout, ""}},
	{err: raftnode.ErrOutcomeUnknown, answer: answer{http.StatusGatewayTimeout, wire.CodeOutcomeUnknown, ""}},
	{err: raftnode.ErrUpgradeInProgress, answer: answer{http.StatusServiceUnavailable, "upgrade_in_progress", ""}},
	{err: raftnode.ErrTransferFailed, answer: answer{http.StatusServiceUnavailable, "transfer_failed", ""}},
	{err: raftnode.ErrNotFound, answer: answer{http.StatusNotFound, codeNotFound, ""}},
	{err: raftnode.ErrConflict, answer: answer{http.StatusConflict, codeConflict, ""}},
	{err: raftnode.ErrPeerUnreachable, answer: answer{http.StatusConflict, codeJoinUnreachable, ""}},
	{err: raftnode.ErrQuorumAtRisk, answer: answer{http.StatusConflict, codeQuorumAtRisk, ""}},
	{err: leader.ErrNoDatanode, answer: answer{http.StatusServiceUnavailable, "no_datanode", ""}},
	{err: leader.ErrDatanodeLimit, answer: answer{http.StatusConflict, "datanode_limit", ""}},
	{err: leader.ErrRegisterRate, answer: answer{http.StatusTooManyRequests, "rate_limited", ""}},
	{err: leader.ErrIncarnationMismatch, answer: answer{http.StatusForbidden, "incarnation_mismatch", ""}},
	{err: leader.ErrIncarnationUnconfirmed, answer: answer{http.StatusServiceUnavailable, "incarnation_unconfirmed", ""}},
	{err: failover.ErrImplausible, answer: answer{http.StatusBadRequest, "implausible_heartbeat", ""}},

	{reject: fsm.RejectEpochMismatch, answer: answer{http.StatusConflict, "epoch_mismatch", ""}},
	{reject: fsm.RejectInvalid, answer: answer{http.StatusBadRequest, codeBadRequest, ""}},
	{reject: fsm.RejectNotFound, answer: answer{http.StatusNotFound, codeNotFound, ""}},
	{reject: fsm.RejectExists, answer: answer{http.StatusConflict, codeConflict, ""}},
	{reject: fsm.RejectHasRegions, answer: answer{http.StatusConflict, codeConflict, ""}},
	{reject: fsm.RejectCordoned, answer: answer{http.StatusConflict, codeConflict, ""}},
	{reject: fsm.RejectStaleOwner, answer: answer{http.StatusConflict, codeConflict, ""}},
	{reject: fsm.RejectNotDraining, answer: answer{http.StatusConflict, codeConflict, ""}},
	{reject: fsm.RejectMaintenance, answer: answer{http.StatusConflict, codeConflict, ""}},
	{reject: fsm.RejectProceduresPaused, answer: answer{http.StatusConflict, "procedures_paused", ""}},
}

// apiError is an error this layer answers itself (bad input, auth, routes).
type apiError struct {
	Status int
	Code   string
	Msg    string
	// Extra fields merged into the JSON body.
	Extra map[string]any
}

func (e *apiError) Error() string { return e.Msg }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, codeBadRequest, format, args...)
}

// toAPIError turns any error into its answer, through the table.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var rej *raftnode.Rejection
	if errors.As(err, &rej) {
		ae = &apiError{Status: http.StatusConflict, Code: codeConflict, Msg: rej.Result.Reason}
		for _, a := range answers {
			if a.reject != "" && a.reject == rej.Result.Code {
				ae.Status, ae.Code = a.status, a.code
			}
		}
		if rej.Result.Code == fsm.RejectEpochMismatch {
			ae.Extra = map[string]any{"maintenance": toVerbose(rej.Result.Maintenance)}
		}
		return ae
	}
	for _, a := range answers {
		if a.err == nil || !errors.Is(err, a.err) {
			continue
		}
		ae = &apiError{Status: a.status, Code: a.code, Msg: err.Error()}
		if err == a.err && a.msg != "" {
			ae.Msg = a.msg
		}
		var nl *leader.NotLeaderError
		if errors.As(err, &nl) {
			ae.Extra = map[string]any{"leader_id": nl.LeaderID, "leader_rpc_addr": nl.LeaderRPCAddr}
		}
		return ae
	}
	return errorf(http.StatusInternalServerError, codeInternal, "%v", err)
}

// writeJSON writes v as the whole body, with no trailing newline:
// GreptimeDB's answers are compared byte for byte by its tooling.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"internal","error":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, err error) {
	ae := toAPIError(err)
	body := map[string]any{"error": ae.Msg, "code": ae.Code}
	for k, v := range ae.Extra {
		body[k] = v
	}
	if ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(1))
	}
	writeJSON(w, ae.Status, body)
}
