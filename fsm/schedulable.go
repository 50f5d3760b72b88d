package fsm

// Schedulable reports whether datanode d may receive regions now: the failure detector says it is alive, and its admin state is active (not cordoned or draining).
//
// It is the one rule for picking targets, shared by failover, the
// balancer, drain and table creation. alive is the caller's detector
// verdict (only the leader has one); an empty AdminState, from a state
// written before admin states existed, counts as AdminActive.
func Schedulable(d Datanode, alive bool) bool {
	return alive && (d.AdminState == "" || d.AdminState == AdminActive)
}
