// Package raftnode runs one member's raft: its stores, the stream layer,
// bootstrap and join, the member directory file and the leadership-term loop.
// Its surface is typed (Propose, ReadIndex, membership, status) and it answers
// with sentinel errors; it never speaks HTTP.
//
// It may import fsm, server/wire, server/certs (peer TLS on the raft port,
// transport.go), hashicorp/raft and its stores, hclog and prometheus; never
// net/http, server/httpapi or server/leader. Calls to other members' APIs
// (join, self-registration) go through the Peers it is given.
package raftnode
