package raftnode

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metasrv/metasrv/server/certs"
	"github.com/metasrv/metasrv/server/wire"
)

// Peer is one member of the initial cluster.
type Peer struct {
	ID       string
	RaftAddr string
}

// Initial cluster states.
const (
	ClusterStateNew      = "new"
	ClusterStateExisting = "existing"
)

// Config configures a Node. The caller validates it and fills defaults.
type Config struct {
	NodeID            string
	RaftAddr          string // raft TCP listen address
	AdvertiseRaftAddr string // what other members dial; may be a host name
	AdvertiseRPCAddr  string // this member's API address, recorded in the directory
	DataDir           string

	Peers               []Peer
	InitialClusterState string
	Join                []string // API addresses of running members
	BootstrapWait       time.Duration

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	LeaderWait         time.Duration
	ApplyTimeout       time.Duration

	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	SnapshotRetain    int

	Version string
	// Protocol is the command protocol this member advertises and its FSM
	// knows; 0 means fsm.Protocol. It is for tests that play an older
	// binary in process.
	Protocol int
	Logger   hclog.Logger
	Now      func() time.Time
	// OnFatal is called once when this node must stop (an unknown command in
	// the log, a refused join, a data dir of another cluster).
	OnFatal func(err error)
	// Registry receives this node's raft and FSM metrics.
	Registry *prometheus.Registry

	// PeerTLS, when set, puts the raft port under mutual TLS 1.3: members
	// present and accept only certificates of role metasrv-node from its
	// CA, each dial checked against the id it means. Nil is plaintext.
	PeerTLS *certs.Source
	// PeerAcceptPlaintext, with PeerTLS, also accepts plaintext raft
	// connections and falls back to plaintext when a peer does not speak
	// TLS: the short phase of turning TLS on in a running cluster.
	PeerAcceptPlaintext bool
}

// Worker is leader-only work. It must return soon after ctx is cancelled.
type Worker func(ctx context.Context)

// TermHook is called once per leadership term, after the leadership barrier
// and before the node reports itself ready: it sets up the term's state and
// returns the term's workers. ctx ends when the term does.
type TermHook func(ctx context.Context) []Worker

// Peers reaches other members' APIs. It is implemented over HTTP by the API
// layer, which keeps raftnode free of it.
type Peers interface {
	// Join asks the member at rpcAddr to add this node. A refusal for good
	// (409) is an error that errors.Is ErrJoinRefused.
	Join(ctx context.Context, rpcAddr string, req wire.JoinRequest) (wire.JoinResponse, error)
	// Register records this node's own addresses and version through the
	// leader at rpcAddr; it never adds a voter.
	Register(ctx context.Context, rpcAddr string, req wire.JoinRequest) error
}
