package fsm

import (
	"fmt"
	"strconv"
)

// The maintenance guard: while maintenance is on, a MoveRegions whose cause
// is automatic (failover, balance) is refused as a whole; only operator
// causes get through. It is checked against the state at the entry's log
// position, so a move planned just before maintenance was enabled, or
// proposed by a deposed leader whose entry still commits, cannot take
// effect. The procedures guard (procedures_guard.go) runs before it and
// refuses every cause while procedures are paused.

// operatorCauses is the allow-list of causes accepted during maintenance.
var operatorCauses = map[string]bool{CauseManual: true, CauseDrain: true}

// maintenanceRefusesLocked reports whether the guard refuses c; if so, res
// rejects every move of c and a move_rejected event has been recorded.
func (f *FSM) maintenanceRefusesLocked(index uint64, c MoveRegions) (res Result, refused bool) {
	if !f.st.Maintenance.Enabled || operatorCauses[c.Cause] {
		return Result{}, false
	}
	res = Result{Code: RejectMaintenance, Reason: fmt.Sprintf("maintenance is enabled (epoch %d): %s moves are paused", f.st.Maintenance.Epoch, c.Cause)}
	for _, m := range c.Moves {
		res.Rejected = append(res.Rejected, MoveRejection{Move: m, Code: RejectMaintenance, Reason: res.Reason})
	}
	f.addEvent(Event{Index: index, Time: c.Time, Type: EventMoveRejected, By: c.By, Identity: c.Identity, Reason: res.Reason,
		Fields: map[string]string{"cause": c.Cause, "moves": strconv.Itoa(len(c.Moves))}})
	return res, true
}
