package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Error codes. A client must be able to tell "nothing was applied, safe to
// retry" (503 no_leader/not_leader/timeout) from "the outcome is unknown"
// (504 outcome_unknown).
const (
	codeBadRequest       = "bad_request"
	codeUnauthorized     = "unauthorized"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeConflict         = "conflict"
	codeEpochMismatch    = "epoch_mismatch"
	codeTooLarge         = "payload_too_large"
	codeNoLeader         = "no_leader"
	codeNotLeader        = "not_leader"
	codeTimeout          = "timeout"
	codeOutcomeUnknown   = "outcome_unknown"
	codeInternal         = "internal"
)

// apiError is an error with its HTTP answer.
type apiError struct {
	Status int
	Code   string
	Msg    string
	// Extra fields merged into the JSON body (e.g. the current state on a
	// compare-and-set conflict).
	Extra map[string]any
}

func (e *apiError) Error() string { return e.Msg }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, codeBadRequest, format, args...)
}

// errRetryElsewhere means nothing was applied here because this node is not
// (or no longer) the leader; the request may be retried through the leader.
var errRetryElsewhere = errors.New("not the leader")

func outcomeUnknown(err error) *apiError {
	return errorf(http.StatusGatewayTimeout, codeOutcomeUnknown,
		"the write may or may not have been applied (%v); read the state before retrying", err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if errors.Is(err, errRetryElsewhere) {
		ae = errorf(http.StatusServiceUnavailable, codeNotLeader, "this node is not the leader; ask the leader (GET /admin/leader) or drop ?stale")
	} else if !errors.As(err, &ae) {
		ae = errorf(http.StatusInternalServerError, codeInternal, "%v", err)
	}
	body := map[string]any{"error": ae.Msg, "code": ae.Code}
	for k, v := range ae.Extra {
		body[k] = v
	}
	if ae.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(1))
	}
	writeJSON(w, ae.Status, body)
}
