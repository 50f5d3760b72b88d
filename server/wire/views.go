package wire

import "time"

// Enabled is the GreptimeDB-compatible maintenance answer, byte for byte.
type Enabled struct {
	Enabled bool `json:"enabled"`
}

// Maintenance is the answer to GET /admin/maintenance?verbose=true.
type Maintenance struct {
	Enabled   bool       `json:"enabled"`
	Epoch     uint64     `json:"epoch"`
	Reason    string     `json:"reason"`
	By        string     `json:"by"`
	Identity  string     `json:"identity,omitempty"`
	Since     *time.Time `json:"since"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// Route is one region's route: GET /admin/regions, table creation, migration.
type Route struct {
	ID       uint64 `json:"id"`
	Table    string `json:"table"`
	Datanode uint64 `json:"datanode"`
	Version  uint64 `json:"version"`
	// InFlight: the owner has not reported serving it yet (leader's view).
	InFlight bool `json:"in_flight"`
}

// Datanode is one entry of GET /admin/datanodes.
type Datanode struct {
	ID                    uint64  `json:"id"`
	Addr                  string  `json:"addr"`
	Status                string  `json:"status"`
	Phi                   float64 `json:"phi"`
	SecondsSinceHeartbeat float64 `json:"seconds_since_heartbeat"`
	Regions               int     `json:"regions"`
	AdminState            string  `json:"admin_state"`
	LeaseExpired          bool    `json:"lease_expired"`
	// StillServing: the leader knows of a region this datanode may still
	// serve under a valid lease (or has not heard from it this term).
	StillServing     bool `json:"still_serving"`
	FailoverDeferred bool `json:"failover_deferred"`
	FailoverBraked   bool `json:"failover_braked"`
}

// RaftStatus is the answer of GET /admin/raft.
type RaftStatus struct {
	NodeID           string `json:"node_id"`
	State            string `json:"state"`
	Term             uint64 `json:"term"`
	LeaderID         string `json:"leader_id"`
	CommitIndex      uint64 `json:"commit_index"`
	AppliedIndex     uint64 `json:"applied_index"` // the FSM's own
	RaftAppliedIndex uint64 `json:"raft_applied_index"`
	LastIndex        uint64 `json:"last_index"`
}

// Ready is the answer of GET /admin/ready when the node is ready (fields in
// the order the API has always written them).
type Ready struct {
	AppliedIndex uint64 `json:"applied_index"`
	LeaderID     string `json:"leader_id"`
	NodeID       string `json:"node_id"`
	Ready        bool   `json:"ready"`
}

// NotReady is the answer of GET /admin/ready when the node is not ready.
type NotReady struct {
	Code  string `json:"code"`
	Error string `json:"error"`
	Ready bool   `json:"ready"`
}

// Cluster is the answer of GET /admin/cluster: one node's view.
type Cluster struct {
	AppliedIndex  uint64          `json:"applied_index"`
	ClusterID     string          `json:"cluster_id"`
	CommitIndex   uint64          `json:"commit_index"`
	LastIndex     uint64          `json:"last_index"`
	LeaderID      string          `json:"leader_id"`
	LeaderRPCAddr string          `json:"leader_rpc_addr"`
	Members       []ClusterMember `json:"members"`
	NodeID        string          `json:"node_id"`
	State         string          `json:"state"`
	Term          uint64          `json:"term"`
	Version       string          `json:"version"`
}

// ClusterMember is one member in a Cluster view.
type ClusterMember struct {
	ID        string `json:"id"`
	RaftAddr  string `json:"raft_addr"`
	RPCAddr   string `json:"rpc_addr"`
	Suffrage  string `json:"suffrage"`
	Version   string `json:"version"`
	Protocol  int    `json:"protocol"`
	Leader    bool   `json:"leader"`
	Reachable bool   `json:"reachable"`
}

// Member is a metasrv member as the replicated directory records it.
type Member struct {
	ID       string    `json:"id"`
	RaftAddr string    `json:"raft_addr"`
	RPCAddr  string    `json:"rpc_addr"`
	Version  string    `json:"version"`
	Protocol int       `json:"protocol,omitempty"`
	Updated  time.Time `json:"updated"`
}

// JoinRequest is the body of POST /admin/cluster/join and of
// PUT /admin/cluster/members/{id}.
type JoinRequest struct {
	ID        string `json:"id"`
	RaftAddr  string `json:"raft_addr"`
	RPCAddr   string `json:"rpc_addr"`
	Version   string `json:"version,omitempty"`
	Protocol  int    `json:"protocol,omitempty"`
	ClusterID string `json:"cluster_id,omitempty"`
}

// JoinResponse is the answer of POST /admin/cluster/join.
type JoinResponse struct {
	ClusterID string   `json:"cluster_id"`
	LeaderID  string   `json:"leader_id"`
	Members   []Member `json:"members"`
}

// Event is one entry of the change log (GET /admin/events). Index is the
// raft index of the entry that caused it.
type Event struct {
	Index    uint64            `json:"index"`
	Time     time.Time         `json:"time"`
	Type     string            `json:"type"`
	By       string            `json:"by,omitempty"`
	Identity string            `json:"identity,omitempty"`
	Reason   string            `json:"reason,omitempty"`
	Epoch    uint64            `json:"epoch,omitempty"`
	Fields   map[string]string `json:"fields,omitempty"`
}

// EventsPage is the answer of GET /admin/events. FirstIndex past since+1
// means events were dropped from the bounded ring before they were read.
type EventsPage struct {
	Events     []Event `json:"events"`
	FirstIndex uint64  `json:"first_index"`
}

// Health statuses, worst last.
const (
	HealthGreen  = "green"
	HealthYellow = "yellow"
	HealthRed    = "red"
)

// HealthReport is GET /admin/health/report: the worst indicator's status,
// and every indicator explaining itself.
type HealthReport struct {
	Status     string                     `json:"status"`
	Indicators map[string]HealthIndicator `json:"indicators"`
}

// HealthIndicator is one part of the report. Symptom says what is seen in
// one line; Details the figures; Impacts what it means for the cluster;
// Actions what an operator should do (empty when green).
type HealthIndicator struct {
	Status  string         `json:"status"`
	Symptom string         `json:"symptom"`
	Details map[string]any `json:"details"`
	Impacts []string       `json:"impacts"`
	Actions []string       `json:"actions"`
}
