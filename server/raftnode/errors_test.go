package raftnode

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/metasrv/metasrv/fsm"
)

var sentinels = []error{ErrNotLeader, ErrNoLeader, ErrTimeout, ErrOutcomeUnknown, ErrUpgradeInProgress,
	ErrTransferFailed, ErrNotFound, ErrConflict, ErrJoinRefused}

func TestErrorfIsItsKindOnly(t *testing.T) {
	for _, kind := range sentinels {
		t.Run(kind.Error(), func(t *testing.T) {
			err := Errorf(kind, "member %s: %d", "n2", 7)
			if err.Error() != "member n2: 7" {
				t.Errorf("message %q", err.Error())
			}
			if !errors.Is(err, kind) {
				t.Errorf("Errorf(%v) is not its kind", kind)
			}
			if wrapped := fmt.Errorf("outer: %w", err); !errors.Is(wrapped, kind) {
				t.Errorf("wrapped Errorf(%v) is not its kind", kind)
			}
			for _, other := range sentinels {
				if other != kind && errors.Is(err, other) {
					t.Errorf("Errorf(%v) also is %v", kind, other)
				}
			}
			if errors.Unwrap(err) != kind {
				t.Errorf("Unwrap = %v", errors.Unwrap(err))
			}
		})
	}
}

func TestSentinelsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range sentinels {
		if seen[s.Error()] {
			t.Errorf("duplicate sentinel message %q", s.Error())
		}
		seen[s.Error()] = true
		if !errors.Is(s, s) {
			t.Errorf("%v is not itself", s)
		}
	}
}

func TestOutcomeUnknown(t *testing.T) {
	cause := errors.New("connection reset")
	err := OutcomeUnknown(cause)
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("OutcomeUnknown is not ErrOutcomeUnknown: %v", err)
	}
	if errors.Is(err, ErrNotLeader) || errors.Is(err, ErrTimeout) {
		t.Fatalf("OutcomeUnknown claims nothing was applied: %v", err)
	}
	if !strings.Contains(err.Error(), "connection reset") || !strings.Contains(err.Error(), "may or may not") {
		t.Fatalf("message %q", err.Error())
	}
}

func TestRejected(t *testing.T) {
	if err := Rejected(fsm.Result{}); err != nil {
		t.Fatalf("an applied result is an error: %v", err)
	}
	if err := Rejected(fsm.Result{Index: 9}); err != nil {
		t.Fatalf("an applied result is an error: %v", err)
	}
	res := fsm.Result{Code: fsm.RejectEpochMismatch, Reason: "if_epoch=1 but the current epoch is 5"}
	err := Rejected(res)
	var rej *Rejection
	if !errors.As(err, &rej) {
		t.Fatalf("Rejected = %T %v, want *Rejection", err, err)
	}
	if rej.Result.Code != fsm.RejectEpochMismatch || err.Error() != res.Reason {
		t.Fatalf("rejection %+v, message %q", rej.Result, err.Error())
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			t.Errorf("a rejection is %v", s)
		}
	}
}
