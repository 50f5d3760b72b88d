package fsm

import "sort"

// Maintenance returns the current maintenance window.
func (f *FSM) Maintenance() Maintenance {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return cloneMaintenance(f.st.Maintenance)
}

// ClusterID returns the cluster ID ("" before the first leader set it).
func (f *FSM) ClusterID() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.ClusterID
}

// Member returns one member of the directory.
func (f *FSM) Member(id string) (Member, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m, ok := f.st.Members[id]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

// Members returns the directory sorted by id.
func (f *FSM) Members() []Member {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Member, 0, len(f.st.Members))
	for _, m := range f.st.Members {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Events returns the events with an index greater than since (oldest
// first, at most limit when limit > 0) and firstIndex: every event with an
// index at or above firstIndex is still in the ring. A reader that asked
// for since=N missed nothing when firstIndex <= N+1.
func (f *FSM) Events(since uint64, limit int) (events []Event, firstIndex uint64) {
	return f.EventsWith(since, limit, false)
}

// EventsWith is Events with, when watch is true, the watch ring's events
// (leader elected, datanode status) merged in by index; firstIndex still
// speaks for the change log only (the watch ring is shorter).
func (f *FSM) EventsWith(since uint64, limit int, watch bool) (events []Event, firstIndex uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	after := func(evs []Event) []Event {
		return evs[sort.Search(len(evs), func(i int) bool { return evs[i].Index > since }):]
	}
	// The change log and the watch ring, merged by index (both are in
	// index order). firstIndex speaks for the change log only: the watch
	// ring is shorter and may have dropped older entries.
	a, b := after(f.st.Events), []Event(nil)
	if watch {
		b = after(f.st.Watch)
	}
	n := len(a) + len(b)
	if limit > 0 {
		n = min(n, limit)
	}
	out := make([]Event, 0, n)
	for (len(a) > 0 || len(b) > 0) && (limit <= 0 || len(out) < limit) {
		if len(b) == 0 || (len(a) > 0 && a[0].Index <= b[0].Index) {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out, f.st.EventsDroppedThrough + 1
}

// Datanodes returns the registered datanodes sorted by id.
func (f *FSM) Datanodes() []Datanode {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Datanode, 0, len(f.st.Datanodes))
	for _, d := range f.st.Datanodes {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// DatanodeCount is how many datanodes are registered.
func (f *FSM) DatanodeCount() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.st.Datanodes)
}

// Datanode returns one registered datanode.
func (f *FSM) Datanode(id uint64) (Datanode, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	d, ok := f.st.Datanodes[id]
	if !ok {
		return Datanode{}, false
	}
	return *d, true
}

// Tables returns the tables sorted by name.
func (f *FSM) Tables() []Table {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Table, 0, len(f.st.Tables))
	for _, t := range f.st.Tables {
		tt := *t
		tt.Regions = append([]uint64(nil), t.Regions...)
		out = append(out, tt)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Regions returns the routes sorted by region id.
func (f *FSM) Regions() []Region {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Region, 0, len(f.st.Regions))
	for _, r := range f.st.Regions {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Region returns one route.
func (f *FSM) Region(id uint64) (Region, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.st.Regions[id]
	if !ok {
		return Region{}, false
	}
	return *r, true
}

// MemberRemoved reports whether a RemoveMember took id out and no SetMember
// has added it again.
func (f *FSM) MemberRemoved(id string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, ok := f.st.RemovedMembers[id]
	return ok
}
