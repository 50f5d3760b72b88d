// Package balancer evens out region counts across datanodes and empties
// draining ones: it plans region moves and, on the leader, proposes them.
//
// The planner (Compute, PlanDrain) is pure; the Runner feeds it the
// replicated state through Cluster, which the server implements, and
// commits its moves through raft. The package may import fsm, the standard
// library and hclog; nothing of server/.
package balancer
