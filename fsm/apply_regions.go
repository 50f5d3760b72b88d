package fsm

import (
	"fmt"
	"strconv"
)

func (f *FSM) applyRegisterDatanode(index uint64, c RegisterDatanode) Result {
	if c.ID == 0 || c.Addr == "" {
		return Result{Code: RejectInvalid, Reason: "datanode id and addr are required"}
	}
	d, ok := f.st.Datanodes[c.ID]
	if ok && d.Addr == c.Addr {
		return Result{Applied: true}
	}
	if !ok {
		d = &Datanode{ID: c.ID, RegisteredAt: c.Time, AdminState: AdminActive}
		f.st.Datanodes[c.ID] = d
	}
	d.Addr = c.Addr
	f.addEvent(Event{Index: index, Time: c.Time, Type: EventDatanodeRegistered, Fields: map[string]string{
		"datanode": strconv.FormatUint(c.ID, 10), "addr": c.Addr}})
	return Result{Applied: true}
}

func (f *FSM) applyRemoveDatanode(index uint64, c RemoveDatanode) Result {
	if _, ok := f.st.Datanodes[c.ID]; !ok {
		return Result{Code: RejectNotFound, Reason: fmt.Sprintf("no datanode %d", c.ID)}
	}
	if n := f.regionCountLocked(c.ID); n > 0 {
		return Result{Code: RejectHasRegions, Reason: fmt.Sprintf("datanode %d still owns %d regions", c.ID, n)}
	}
	delete(f.st.Datanodes, c.ID)
	f.addEvent(Event{Index: index, Time: c.Time, Type: EventDatanodeRemoved, By: c.By,
		Fields: map[string]string{"datanode": strconv.FormatUint(c.ID, 10)}})
	return Result{Applied: true}
}

func (f *FSM) applyCreateTable(index uint64, c CreateTable) Result {
	if c.Name == "" || len(c.Placement) == 0 {
		return Result{Code: RejectInvalid, Reason: "a table needs a name and at least one region"}
	}
	if _, ok := f.st.Tables[c.Name]; ok {
		return Result{Code: RejectExists, Reason: fmt.Sprintf("table %q exists", c.Name)}
	}
	for _, dn := range c.Placement {
		if _, ok := f.st.Datanodes[dn]; !ok {
			return Result{Code: RejectNotFound, Reason: fmt.Sprintf("placement names unknown datanode %d", dn)}
		}
	}
	t := &Table{Name: c.Name, CreatedAt: c.Time}
	var created []Region
	for _, dn := range c.Placement {
		r := &Region{ID: f.st.NextRegionID, Table: c.Name, Datanode: dn, Version: 1, MovedAt: c.Time}
		f.st.NextRegionID++
		f.st.Regions[r.ID] = r
		f.owners.add(dn, r.ID)
		t.Regions = append(t.Regions, r.ID)
		created = append(created, *r)
	}
	f.st.Tables[c.Name] = t
	f.addEvent(Event{Index: index, Time: c.Time, Type: EventTableCreated, By: c.By, Fields: map[string]string{
		"table": c.Name, "regions": strconv.Itoa(len(created))}})
	return Result{Applied: true, Regions: created}
}

func (f *FSM) applyDropTable(index uint64, c DropTable) Result {
	t, ok := f.st.Tables[c.Name]
	if !ok {
		return Result{Code: RejectNotFound, Reason: fmt.Sprintf("no table %q", c.Name)}
	}
	byOwner := map[uint64][]uint64{}
	for _, id := range t.Regions {
		if r, ok := f.st.Regions[id]; ok {
			byOwner[r.Datanode] = append(byOwner[r.Datanode], id)
		}
		delete(f.st.Regions, id)
	}
	for dn, ids := range byOwner {
		f.owners.remove(dn, ids...)
	}
	delete(f.st.Tables, c.Name)
	f.addEvent(Event{Index: index, Time: c.Time, Type: EventTableDropped, By: c.By, Fields: map[string]string{"table": c.Name}})
	return Result{Applied: true}
}

// applyMoveRegions is where the maintenance guarantee lives: it is checked
// against the state at this entry's log position, so a move planned just
// before maintenance was enabled, or proposed by a deposed leader whose
// entry still commits, cannot take effect.
func (f *FSM) applyMoveRegions(index uint64, c MoveRegions) Result {
	switch c.Cause {
	case CauseManual, CauseDrain, CauseFailover, CauseBalance:
	default:
		return Result{Code: RejectInvalid, Reason: fmt.Sprintf("unknown move cause %q", c.Cause)}
	}
	if f.st.Maintenance.Enabled && !operatorCauses[c.Cause] {
		res := Result{Code: RejectMaintenance, Reason: fmt.Sprintf("maintenance is enabled (epoch %d): %s moves are paused", f.st.Maintenance.Epoch, c.Cause)}
		for _, m := range c.Moves {
			res.Rejected = append(res.Rejected, MoveRejection{Move: m, Code: RejectMaintenance, Reason: res.Reason})
		}
		f.addEvent(Event{Index: index, Time: c.Time, Type: EventMoveRejected, By: c.By, Reason: res.Reason,
			Fields: map[string]string{"cause": c.Cause, "moves": strconv.Itoa(len(c.Moves))}})
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
		f.addEvent(Event{Index: index, Time: c.Time, Type: EventRegionMoved, By: c.By, Fields: fields})
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

func (f *FSM) applySetAdminState(index uint64, c SetDatanodeAdminState) Result {
	d, ok := f.st.Datanodes[c.ID]
	if !ok {
		return Result{Code: RejectNotFound, Reason: fmt.Sprintf("no datanode %d", c.ID)}
	}
	switch c.State {
	case AdminActive, AdminCordoned, AdminDraining:
	default:
		return Result{Code: RejectInvalid, Reason: fmt.Sprintf("unknown admin state %q", c.State)}
	}
	if d.AdminState == c.State {
		return Result{Applied: true}
	}
	d.AdminState = c.State
	f.addEvent(Event{Index: index, Time: c.Time, Type: EventDatanodeAdminState, By: c.By, Fields: map[string]string{
		"datanode": strconv.FormatUint(c.ID, 10), "state": c.State}})
	return Result{Applied: true}
}
