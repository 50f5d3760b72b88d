package fsm

import (
	"fmt"
	"strconv"
)

// The procedures guard: while the procedure manager is paused
// (SetProcedures), every MoveRegions — whatever its cause, failover,
// balance, drain and manual alike — and every CreateTable and DropTable is
// refused with RejectProceduresPaused. Like the maintenance guard
// (maintenance_guard.go), which it precedes, it is checked against the
// state at the entry's log position, so a command planned before the pause
// cannot take effect after it. Heartbeats, leases, datanode registration
// and admin states, members and maintenance are not procedures and go on.

// proceduresRefusal is the reason of a refusal ("" while running).
func (f *FSM) proceduresRefusal(what string) string {
	p := f.st.Procedures
	if !p.Paused {
		return ""
	}
	why := fmt.Sprintf("procedures are paused (epoch %d", p.Epoch)
	if p.Reason != "" {
		why += ": " + p.Reason
	}
	return why + "): " + what + " refused until POST /admin/procedure-manager/resume"
}

// proceduresRefuseMovesLocked reports whether the guard refuses c; if so,
// res rejects every move of c and a move_rejected event has been recorded.
func (f *FSM) proceduresRefuseMovesLocked(index uint64, c MoveRegions) (res Result, refused bool) {
	why := f.proceduresRefusal(c.Cause + " moves are")
	if why == "" {
		return Result{}, false
	}
	res = Result{Code: RejectProceduresPaused, Reason: why}
	for _, m := range c.Moves {
		res.Rejected = append(res.Rejected, MoveRejection{Move: m, Code: RejectProceduresPaused, Reason: why})
	}
	f.addEvent(Event{Index: index, Time: c.Time, Type: EventMoveRejected, By: c.By, Identity: c.Identity, Reason: why,
		Fields: map[string]string{"cause": c.Cause, "moves": strconv.Itoa(len(c.Moves))}})
	return res, true
}

// proceduresRefuseLocked refuses a table create or drop while paused.
func (f *FSM) proceduresRefuseLocked(what string) (Result, bool) {
	if why := f.proceduresRefusal(what); why != "" {
		return Result{Code: RejectProceduresPaused, Reason: why}, true
	}
	return Result{}, false
}
