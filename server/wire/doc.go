// Package wire declares, once, every body that crosses metasrv's HTTP API:
// heartbeats and their answers, the views, the error body and the events page.
//
// It imports only the standard library, so the server, the datanode agent,
// the benchmarks and the tests can all share it.
package wire
