package fsm

import (
	"fmt"
	"strconv"
)

// applyMoveRegions validates the cause, applies the procedures guard
// (proceduresRefuseMovesLocked) and the maintenance guard
// (maintenanceRefusesLocked) to the command as a whole, then checks and
// applies each move against the state at this entry's log position.
func (f *FSM) applyMoveRegions(index uint64, c MoveRegions) Result {
	switch c.Cause {
	case CauseManual, CauseDrain, CauseFailover, CauseBalance:
	default:
		return Result{Code: RejectInvalid, Reason: fmt.Sprintf("unknown move cause %q", c.Cause)}
	}
	if res, refused := f.proceduresRefuseMovesLocked(index, c); refused {
		return res
	}
	if res, refused := f.maintenanceRefusesLocked(index, c); refused {
		return res
	}
	res := Result{Applied: true}
	for _, m := range c.Moves {
		if code, why := f.checkMoveLocked(c.Cause, m); code != "" {
			res.Rejected = append(res.Rejected, MoveRejection{Move: m, Code: code, Reason: why})
			continue
		}
		r := f.st.Regions[m.Region]
		if r.Datanode == m.To {
			continue // already there
		}
		f.owners.remove(r.Datanode, r.ID)
		f.owners.add(m.To, r.ID)
		r.PrevDatanode, r.Datanode = r.Datanode, m.To
		r.Version++
		r.MovedAt = c.Time
		res.Moved = append(res.Moved, m)
		fields := map[string]string{"cause": c.Cause, "region": strconv.FormatUint(m.Region, 10), "table": r.Table,
			"from": strconv.FormatUint(m.From, 10), "to": strconv.FormatUint(m.To, 10),
			"version": strconv.FormatUint(r.Version, 10)}
		if c.Cause == CauseFailover {
			fields["phi"] = strconv.FormatFloat(m.Phi, 'f', 2, 64)
		}
		f.addEvent(Event{Index: index, Time: c.Time, Type: EventRegionMoved, By: c.By, Identity: c.Identity, Fields: fields})
	}
	if len(res.Moved) == 0 && len(res.Rejected) > 0 {
		res.Applied = false
		res.Code, res.Reason = res.Rejected[0].Code, res.Rejected[0].Reason
	}
	return res
}

func (f *FSM) checkMoveLocked(cause string, m Move) (code, reason string) {
	r, ok := f.st.Regions[m.Region]
	if !ok {
		return RejectNotFound, fmt.Sprintf("no region %d", m.Region)
	}
	if r.Datanode != m.From {
		return RejectStaleOwner, fmt.Sprintf("region %d is owned by datanode %d, not %d", m.Region, r.Datanode, m.From)
	}
	// A drain move is operator-initiated only while its source is still
	// draining at this log position (an uncordon may have come first).
	if src := f.st.Datanodes[m.From]; cause == CauseDrain && (src == nil || src.AdminState != AdminDraining) {
		return RejectNotDraining, fmt.Sprintf("datanode %d is no longer draining", m.From)
	}
	d, ok := f.st.Datanodes[m.To]
	if !ok {
		return RejectNotFound, fmt.Sprintf("no datanode %d", m.To)
	}
	if d.AdminState == AdminCordoned || d.AdminState == AdminDraining {
		return RejectCordoned, fmt.Sprintf("datanode %d is %s and takes no new regions", m.To, d.AdminState)
	}
	return "", ""
}
