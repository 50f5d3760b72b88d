// Package failover decides when a datanode has failed and where its
// regions go, and runs the leader-only loop that proposes those moves.
//
// The detector, monitor and planner are pure logic with an injected
// clock: the server feeds them heartbeats and commits the moves they plan
// through the Cluster interface it implements. The package may import fsm,
// server/wire (the heartbeat's wire type, a leaf of plain structs), the
// standard library and hclog; nothing else of server/.
package failover
