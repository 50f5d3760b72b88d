package fsm

func (f *FSM) applySetMember(index uint64, c SetMember) Result {
	m := c.Member
	if m.ID == "" {
		return Result{Code: RejectInvalid, Reason: "member id is empty"}
	}
	delete(f.st.RemovedMembers, m.ID) // added again: no longer refused
	old, existed := f.st.Members[m.ID]
	if existed && old.RaftAddr == m.RaftAddr && old.RPCAddr == m.RPCAddr && old.Version == m.Version && old.Protocol == m.Protocol {
		return Result{Applied: true}
	}
	m.Updated = c.Time
	f.st.Members[m.ID] = &m
	typ := EventMemberJoined
	if existed {
		typ = EventMemberUpdated
	}
	f.addEvent(Event{Index: index, Time: c.Time, Type: typ, Fields: map[string]string{
		"id": m.ID, "raft_addr": m.RaftAddr, "rpc_addr": m.RPCAddr, "version": m.Version}})
	return Result{Applied: true}
}

func (f *FSM) applyRemoveMember(index uint64, c RemoveMember) Result {
	if c.ID != "" {
		// Recorded also for an id the member table never had (a voter
		// that was removed before it registered).
		if f.st.RemovedMembers == nil {
			f.st.RemovedMembers = map[string]uint64{}
		}
		if _, ok := f.st.RemovedMembers[c.ID]; !ok {
			f.st.RemovedMembers[c.ID] = index
		}
	}
	if _, ok := f.st.Members[c.ID]; !ok {
		return Result{Applied: true}
	}
	delete(f.st.Members, c.ID)
	f.addEvent(Event{Index: index, Time: c.Time, Type: EventMemberRemoved, By: c.By, Identity: c.Identity,
		Fields: map[string]string{"id": c.ID}})
	return Result{Applied: true}
}
