// Package wire declares, once, every body that crosses metasrv's HTTP API:
// heartbeats and their answers, the views, the error body and the events page.
//
// It imports only the standard library, so the server, the datanode agent,
// the benchmarks and the tests can all share it without importing the state
// machine. Event, Member and Maintenance mirror fsm's types of the same name
// field for field: the server converts with a plain type conversion, which
// stops compiling the day the two drift apart.
package wire
