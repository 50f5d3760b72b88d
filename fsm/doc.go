// Package fsm holds metasrv's replicated state and the deterministic rules
// that change it; the server feeds it committed raft log entries and reads it back.
//
// It imports the standard library only: no network code, and nothing of
// server/, failover/ or balancer/.
package fsm
