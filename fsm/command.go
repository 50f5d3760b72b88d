package fsm

import (
	"encoding/json"
	"fmt"
	"time"
)

// Command is the versioned envelope of every raft log entry.
type Command struct {
	Type    string          `json:"type"`
	V       int             `json:"v"`
	Payload json.RawMessage `json:"payload"`
}

// InitCluster fixes the cluster ID once; later proposals are no-ops.
type InitCluster struct {
	ClusterID string    `json:"cluster_id"`
	Time      time.Time `json:"time"`
}

// SetMaintenance turns maintenance on or off. IfEpoch, when set, makes the
// write a compare-and-set against the current epoch.
type SetMaintenance struct {
	Enabled bool   `json:"enabled"`
	Reason  string `json:"reason,omitempty"`
	By      string `json:"by,omitempty"`
	// Identity is who authenticated the write (a token NAME, a
	// certificate CN, or "anonymous"); set only once every member speaks
	// IdentityProtocol, so every replica records the same.
	Identity string        `json:"identity,omitempty"`
	TTL      time.Duration `json:"ttl,omitempty"`
	IfEpoch  *uint64       `json:"if_epoch,omitempty"`
	Time     time.Time     `json:"time"`
}

// ExpireMaintenance ends the window with Epoch, if it is still the current one.
type ExpireMaintenance struct {
	Epoch uint64    `json:"epoch"`
	Time  time.Time `json:"time"`
}

// SetMember adds or updates a metasrv member in the directory.
type SetMember struct {
	Member Member    `json:"member"`
	Time   time.Time `json:"time"`
}

// RemoveMember drops a member from the directory.
type RemoveMember struct {
	ID       string    `json:"id"`
	By       string    `json:"by,omitempty"`
	Identity string    `json:"identity,omitempty"`
	Time     time.Time `json:"time"`
}

// Actor is who an operator write is recorded as: By (what the caller says,
// or who it is) and Identity (who authenticated it; empty below
// IdentityProtocol).
type Actor struct {
	By, Identity string
}

// Encode wraps a payload in the envelope at the type's registered version
// (0 for a type this binary does not know, which Apply refuses).
func Encode(typ string, payload any) ([]byte, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	return json.Marshal(Command{Type: typ, V: commands[typ].version, Payload: p})
}

// RegisterDatanode registers a datanode (first heartbeat) or updates its
// address.
type RegisterDatanode struct {
	ID   uint64 `json:"id"`
	Addr string `json:"addr"`
	// Cordoned registers a new datanode cordoned, to wait for an
	// operator's approval (--datanode-approval; set from
	// IdentityProtocol on, like Identity).
	Cordoned bool      `json:"cordoned,omitempty"`
	Time     time.Time `json:"time"`
}

// RemoveDatanode removes a datanode that holds no regions.
type RemoveDatanode struct {
	ID       uint64    `json:"id"`
	By       string    `json:"by,omitempty"`
	Identity string    `json:"identity,omitempty"`
	Time     time.Time `json:"time"`
}

// CreateTable creates a table whose regions are placed on Placement (one
// datanode per region, planned by the leader). Region ids are assigned by
// the FSM.
type CreateTable struct {
	Name      string    `json:"name"`
	Placement []uint64  `json:"placement"`
	By        string    `json:"by,omitempty"`
	Identity  string    `json:"identity,omitempty"`
	Time      time.Time `json:"time"`
}

// DropTable drops a table and its regions.
type DropTable struct {
	Name     string    `json:"name"`
	By       string    `json:"by,omitempty"`
	Identity string    `json:"identity,omitempty"`
	Time     time.Time `json:"time"`
}

// SetDatanodeAdminState cordons, drains or uncordons a datanode.
type SetDatanodeAdminState struct {
	ID       uint64    `json:"id"`
	State    string    `json:"state"`
	By       string    `json:"by,omitempty"`
	Identity string    `json:"identity,omitempty"`
	Time     time.Time `json:"time"`
}

// Move causes. While maintenance is on, only operator causes are accepted
// (operatorCauses).
const (
	CauseManual   = "manual"
	CauseDrain    = "drain"
	CauseFailover = "failover"
	CauseBalance  = "balance"
)

// Move is one region move with its compare-and-set precondition.
type Move struct {
	Region uint64 `json:"region"`
	From   uint64 `json:"from"` // expected current owner
	To     uint64 `json:"to"`
	// Phi is the failure detector's value for From, recorded in the event.
	Phi float64 `json:"phi,omitempty"`
}

// MoveRegions moves regions. Each move is checked against the state at
// this entry's log position: a stale expected owner, an unknown region or
// target rejects that move; maintenance rejects every automatic move.
type MoveRegions struct {
	Cause    string    `json:"cause"`
	Moves    []Move    `json:"moves"`
	By       string    `json:"by,omitempty"`
	Identity string    `json:"identity,omitempty"`
	Time     time.Time `json:"time"`
}

// MoveRejection says why one move was not applied.
type MoveRejection struct {
	Move   Move   `json:"move"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// Result is what Apply returns to the proposer through ApplyFuture.Response().
type Result struct {
	Applied bool `json:"applied"`
	// Code names why a command was rejected (empty when applied or a no-op).
	Code        string      `json:"code,omitempty"`
	Reason      string      `json:"reason,omitempty"`
	Index       uint64      `json:"index"`
	Maintenance Maintenance `json:"maintenance"`
	// Moved and Rejected report a MoveRegions command move by move.
	Moved    []Move          `json:"moved,omitempty"`
	Rejected []MoveRejection `json:"rejected,omitempty"`
	// Regions are the routes a CreateTable created.
	Regions []Region `json:"regions,omitempty"`
}

// Rejection codes.
const (
	RejectEpochMismatch = "epoch_mismatch"
	RejectInvalid       = "invalid"
	RejectMaintenance   = "maintenance"
	RejectStaleOwner    = "stale_owner"
	RejectNotFound      = "not_found"
	RejectExists        = "exists"
	RejectHasRegions    = "has_regions"
	RejectCordoned      = "cordoned"
	RejectNotDraining   = "not_draining"
	// RejectProceduresPaused: the procedure manager is paused (SetProcedures);
	// no region moves, table creates or drops until it is resumed.
	RejectProceduresPaused = "procedures_paused"
)

// RecordWatchEvent records one event worth watching, proposed by the
// leader: a leader elected (Node, Term), or a datanode turning suspect,
// failed or recovered (Datanode, Addr). It changes nothing else.
type RecordWatchEvent struct {
	Type     string    `json:"type"`
	Node     string    `json:"node,omitempty"`
	Term     uint64    `json:"term,omitempty"`
	Datanode uint64    `json:"datanode,omitempty"`
	Addr     string    `json:"addr,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	Time     time.Time `json:"time"`
}
