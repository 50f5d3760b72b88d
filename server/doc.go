// Package server assembles one metasrv node from its rooms: raftnode (raft,
// stores, membership, the term loop), leader (one leadership term's work) and
// httpapi (the HTTP API), with the wire types they share. It owns the
// configuration the command line fills and the order of start and shutdown.
//
// It may import its sub-packages, fsm, hclog and prometheus.
package server
