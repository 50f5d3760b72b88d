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
	fields := map[string]string{"datanode": strconv.FormatUint(c.ID, 10), "addr": c.Addr}
	if !ok {
		d = &Datanode{ID: c.ID, RegisteredAt: c.Time, AdminState: AdminActive}
		if c.Cordoned {
			d.AdminState = AdminCordoned
			fields["admin_state"] = AdminCordoned
		}
		f.st.Datanodes[c.ID] = d
	}
	d.Addr = c.Addr
	f.addEvent(Event{Index: index, Time: c.Time, Type: EventDatanodeRegistered, Fields: fields})
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
	f.addEvent(Event{Index: index, Time: c.Time, Type: EventDatanodeRemoved, By: c.By, Identity: c.Identity,
		Fields: map[string]string{"datanode": strconv.FormatUint(c.ID, 10)}})
	return Result{Applied: true}
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
	f.addEvent(Event{Index: index, Time: c.Time, Type: EventDatanodeAdminState, By: c.By, Identity: c.Identity, Fields: map[string]string{
		"datanode": strconv.FormatUint(c.ID, 10), "state": c.State}})
	return Result{Applied: true}
}
