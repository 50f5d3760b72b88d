// Package agent is the datanode's side of the metasrv protocol: a heartbeat
// loop that opens and closes regions as the leader says and serves them only
// under a valid lease, and Send, the client of one POST /v1/heartbeat.
//
// It may import server/wire (the API bodies), the standard library and
// hclog, nothing else of this module.
package agent
