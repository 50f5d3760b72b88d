package fsm

func (f *FSM) applyInitCluster(index uint64, c InitCluster) Result {
	if f.st.ClusterID != "" || c.ClusterID == "" {
		return Result{} // first one wins; later proposals are harmless no-ops
	}
	f.st.ClusterID = c.ClusterID
	f.addEvent(Event{Index: index, Time: c.Time, Type: EventClusterInitialized,
		Fields: map[string]string{"cluster_id": c.ClusterID}})
	return Result{Applied: true}
}
