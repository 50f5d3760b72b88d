// Package httpapi is metasrv's HTTP API: the listener, the one route table
// with an access class per method, authentication, forwarding to the leader,
// read-index reads, the handlers, and the one table that turns errors and
// FSM verdicts into HTTP answers.
//
// It may import server/leader, server/raftnode, fsm, balancer, failover,
// server/wire, gorilla/mux, hclog and prometheus.
package httpapi
