package fsm

import "time"

// Maintenance is the cluster maintenance window. While Enabled, the FSM
// refuses region moves with an automatic cause (failover, balance) and
// accepts only operator ones (manual, drain), checked at apply time so a
// move planned before the window opened cannot slip in. Epoch goes up on
// every change, so writers can compare-and-set against it.
type Maintenance struct {
	Enabled bool   `json:"enabled"`
	Epoch   uint64 `json:"epoch"`
	Reason  string `json:"reason"`
	By      string `json:"by"`
	// Identity is who authenticated the change in effect (IdentityProtocol).
	Identity string `json:"identity,omitempty"`
	// Since is when Enabled last changed value; nil until the first change.
	Since     *time.Time `json:"since"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// Member is a metasrv node as the replicated directory knows it. Followers
// use RPCAddr to forward to the leader.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	RPCAddr  string `json:"rpc_addr"`
	Version  string `json:"version"`
	// Protocol is the highest command protocol the member's binary speaks
	// (0 in older entries means 1).
	Protocol int       `json:"protocol,omitempty"`
	Updated  time.Time `json:"updated"`
}

// Event is one entry of the bounded change log. Index is the raft index of
// the entry that caused it, so readers can tell what they missed.
type Event struct {
	Index uint64    `json:"index"`
	Time  time.Time `json:"time"`
	Type  string    `json:"type"`
	By    string    `json:"by,omitempty"`
	// Identity is who authenticated the write that made the event.
	Identity string            `json:"identity,omitempty"`
	Reason   string            `json:"reason,omitempty"`
	Epoch    uint64            `json:"epoch,omitempty"`
	Fields   map[string]string `json:"fields,omitempty"`
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
	EventDatanodeRegistered  = "datanode_registered"
	EventDatanodeRemoved     = "datanode_removed"
	EventTableCreated        = "table_created"
	EventTableDropped        = "table_dropped"
	EventRegionMoved         = "region_moved"
	EventMoveRejected        = "move_rejected"
	EventDatanodeAdminState  = "datanode_admin_state"
	EventProceduresPaused    = "procedures_paused"
	EventProceduresResumed   = "procedures_resumed"

	// Events worth watching, in the watch ring (RecordWatchEvent).
	EventLeaderElected     = "leader_elected"
	EventDatanodeSuspect   = "datanode_suspect"
	EventDatanodeFailed    = "datanode_failed"
	EventDatanodeRecovered = "datanode_recovered"
)

// Datanode admin states.
const (
	AdminActive   = "active"
	AdminCordoned = "cordoned" // takes no new regions
	AdminDraining = "draining" // cordoned, and its regions move away
)

// Datanode is a registered datanode agent.
type Datanode struct {
	ID           uint64    `json:"id"`
	Addr         string    `json:"addr"`
	RegisteredAt time.Time `json:"registered_at"`
	// AdminState is AdminActive, AdminCordoned or AdminDraining.
	AdminState string `json:"admin_state"`
}

// Table is a named set of regions.
type Table struct {
	Name      string    `json:"name"`
	Regions   []uint64  `json:"regions"`
	CreatedAt time.Time `json:"created_at"`
}

// Region is one region's route: which datanode owns it.
type Region struct {
	ID       uint64 `json:"id"`
	Table    string `json:"table"`
	Datanode uint64 `json:"datanode"`
	// PrevDatanode is the owner before the last move (0 if none); the new
	// owner may open the region only once the previous one stopped serving.
	PrevDatanode uint64    `json:"prev_datanode,omitempty"`
	Version      uint64    `json:"version"`
	MovedAt      time.Time `json:"moved_at"`
}

// State is the whole replicated state; it is what a snapshot contains.
type State struct {
	ClusterID   string               `json:"cluster_id"`
	Maintenance Maintenance          `json:"maintenance"`
	Procedures  Procedures           `json:"procedures"` // absent from older snapshots: running
	Members     map[string]*Member   `json:"members"`
	Datanodes   map[uint64]*Datanode `json:"datanodes"`
	Tables      map[string]*Table    `json:"tables"`
	Regions     map[uint64]*Region   `json:"regions"`
	// NextRegionID is the id the next created region gets.
	NextRegionID uint64  `json:"next_region_id"`
	Events       []Event `json:"events"`
	// EventsDroppedThrough is the raft index of the newest event the
	// bounded ring has dropped (0: none dropped).
	EventsDroppedThrough uint64 `json:"events_dropped_through"`
	// Watch holds the events worth watching (leader elected, datanode
	// suspect, failed, recovered) in a ring of their own, so they never push
	// maintenance, membership and move records out (WatchProtocol).
	Watch []Event `json:"watch,omitempty"`
	// AppliedIndex is the raft index of the last entry applied to this state.
	AppliedIndex uint64 `json:"applied_index"`
	// RemovedMembers are the member ids a RemoveMember took out, each with
	// the raft index of that entry; SetMember of the id clears it. The raft
	// port refuses these ids (server/raftnode/transport.go). It is derived
	// from existing commands only (nothing new is proposed), omitted when
	// empty, and an older binary restoring a snapshot that has it ignores
	// the unknown field (both formats decode the state with encoding/json).
	RemovedMembers map[string]uint64 `json:"removed_members,omitempty"`
}

func newState() *State {
	st := &State{}
	st.initMaps()
	return st
}

// initMaps fills nil maps (an older snapshot may lack newer parts).
func (s *State) initMaps() {
	if s.Members == nil {
		s.Members = map[string]*Member{}
	}
	if s.Datanodes == nil {
		s.Datanodes = map[uint64]*Datanode{}
	}
	if s.Tables == nil {
		s.Tables = map[string]*Table{}
	}
	if s.Regions == nil {
		s.Regions = map[uint64]*Region{}
	}
	if s.NextRegionID == 0 {
		s.NextRegionID = 1
	}
}

func (s *State) clone() *State {
	c := *s
	c.Maintenance = cloneMaintenance(s.Maintenance)
	c.Procedures = cloneProcedures(s.Procedures)
	c.Members = make(map[string]*Member, len(s.Members))
	for k, m := range s.Members {
		mm := *m
		c.Members[k] = &mm
	}
	if s.RemovedMembers != nil {
		c.RemovedMembers = make(map[string]uint64, len(s.RemovedMembers))
		for k, v := range s.RemovedMembers {
			c.RemovedMembers[k] = v
		}
	}
	c.Datanodes = make(map[uint64]*Datanode, len(s.Datanodes))
	for k, d := range s.Datanodes {
		dd := *d
		c.Datanodes[k] = &dd
	}
	c.Tables = make(map[string]*Table, len(s.Tables))
	for k, t := range s.Tables {
		tt := *t
		tt.Regions = append([]uint64(nil), t.Regions...)
		c.Tables[k] = &tt
	}
	// One allocation for every route of the copy (a snapshot of a million
	// regions is taken under the read lock, so it must be quick).
	c.Regions = make(map[uint64]*Region, len(s.Regions))
	slab := make([]Region, len(s.Regions))
	i := 0
	for k, r := range s.Regions {
		slab[i] = *r
		c.Regions[k] = &slab[i]
		i++
	}
	c.Events = append([]Event(nil), s.Events...)
	c.Watch = append([]Event(nil), s.Watch...)
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
