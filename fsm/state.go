// Package fsm holds metasrv's replicated state and the deterministic rules
// that change it. It imports no network code: the server package feeds it
// raft log entries and reads it back.
package fsm

import "time"

// Maintenance is the cluster maintenance window. While Enabled, the FSM
// refuses automatic region moves (see DESIGN.md §2).
type Maintenance struct {
	Enabled bool   `json:"enabled"`
	Epoch   uint64 `json:"epoch"`
	Reason  string `json:"reason"`
	By      string `json:"by"`
	// Since is when Enabled last changed value; nil until the first change.
	Since     *time.Time `json:"since"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// Member is a metasrv node as the replicated directory knows it. Followers
// use RPCAddr to forward to the leader.
type Member struct {
	ID       string    `json:"id"`
	RaftAddr string    `json:"raft_addr"`
	RPCAddr  string    `json:"rpc_addr"`
	Version  string    `json:"version"`
	Updated  time.Time `json:"updated"`
}

// Event is one entry of the bounded change log. Index is the raft index of
// the entry that caused it, so readers can tell what they missed.
type Event struct {
	Index  uint64            `json:"index"`
	Time   time.Time         `json:"time"`
	Type   string            `json:"type"`
	By     string            `json:"by,omitempty"`
	Reason string            `json:"reason,omitempty"`
	Epoch  uint64            `json:"epoch,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
}

// Event types.
const (
	EventClusterInitialized  = "cluster_initialized"
	EventMaintenanceEnabled  = "maintenance_enabled"
	EventMaintenanceDisabled = "maintenance_disabled"
	EventMaintenanceUpdated  = "maintenance_updated"
	EventMaintenanceExpired  = "maintenance_expired"
	EventMemberJoined        = "member_joined"
	EventMemberUpdated       = "member_updated"
	EventMemberRemoved       = "member_removed"
)

// State is the whole replicated state; it is what a snapshot contains.
type State struct {
	ClusterID   string             `json:"cluster_id"`
	Maintenance Maintenance        `json:"maintenance"`
	Members     map[string]*Member `json:"members"`
	Events      []Event            `json:"events"`
	// EventsDroppedThrough is the raft index of the newest event the
	// bounded ring has dropped (0: none dropped).
	EventsDroppedThrough uint64 `json:"events_dropped_through"`
	// AppliedIndex is the raft index of the last entry applied to this state.
	AppliedIndex uint64 `json:"applied_index"`
}

func newState() *State {
	return &State{Members: map[string]*Member{}}
}

func (s *State) clone() *State {
	c := *s
	c.Maintenance = cloneMaintenance(s.Maintenance)
	c.Members = make(map[string]*Member, len(s.Members))
	for k, m := range s.Members {
		mm := *m
		c.Members[k] = &mm
	}
	c.Events = append([]Event(nil), s.Events...)
	return &c
}

func cloneMaintenance(m Maintenance) Maintenance {
	if m.Since != nil {
		t := *m.Since
		m.Since = &t
	}
	if m.ExpiresAt != nil {
		t := *m.ExpiresAt
		m.ExpiresAt = &t
	}
	return m
}
