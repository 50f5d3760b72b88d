package raftnode

import (
	"errors"
	"fmt"

	"github.com/metasrv/metasrv/fsm"
)

// Sentinel errors. ErrNotLeader, ErrNoLeader, ErrTimeout and
// ErrUpgradeInProgress mean nothing was applied (safe to retry);
// ErrOutcomeUnknown means the entry may still commit.
var (
	ErrNotLeader         = errors.New("this node is not the leader")
	ErrNoLeader          = errors.New("no leader")
	ErrTimeout           = errors.New("timed out")
	ErrOutcomeUnknown    = errors.New("outcome unknown")
	ErrUpgradeInProgress = errors.New("upgrade in progress")
	ErrTransferFailed    = errors.New("leadership transfer failed")
	ErrNotFound          = errors.New("not found")
	ErrConflict          = errors.New("conflict")
	// ErrJoinRefused is what Peers.Join returns when a member refuses the
	// join for good (wrong cluster, too old a protocol).
	ErrJoinRefused = errors.New("join refused")
)

// kindError is an error of one sentinel kind with its own message.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// Errorf returns an error that errors.Is kind and reads as the message.
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// OutcomeUnknown wraps the cause of a write whose outcome is unknown.
func OutcomeUnknown(cause error) error {
	return Errorf(ErrOutcomeUnknown, "the write may or may not have been applied (%v); read the state before retrying", cause)
}

// Rejection is an FSM verdict that refused a command, as an error.
type Rejection struct{ Result fsm.Result }

func (r *Rejection) Error() string { return r.Result.Reason }

// Rejected returns the refusal in res as a *Rejection, or nil if res applied
// (or was a no-op).
func Rejected(res fsm.Result) error {
	if res.Code == "" {
		return nil
	}
	return &Rejection{Result: res}
}
