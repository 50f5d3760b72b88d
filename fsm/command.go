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

// Command types and the highest envelope version this binary understands
// for each. A type or version missing here stops the apply loop loudly.
const (
	CmdInitCluster       = "InitCluster"
	CmdSetMaintenance    = "SetMaintenance"
	CmdExpireMaintenance = "ExpireMaintenance"
	CmdSetMember         = "SetMember"
	CmdRemoveMember      = "RemoveMember"
)

var knownVersions = map[string]int{
	CmdInitCluster:       1,
	CmdSetMaintenance:    1,
	CmdExpireMaintenance: 1,
	CmdSetMember:         1,
	CmdRemoveMember:      1,
}

// Known reports whether this binary can apply the command type at version v.
func Known(typ string, v int) bool {
	max, ok := knownVersions[typ]
	return ok && v >= 1 && v <= max
}

// InitCluster fixes the cluster ID once; later proposals are no-ops.
type InitCluster struct {
	ClusterID string    `json:"cluster_id"`
	Time      time.Time `json:"time"`
}

// SetMaintenance turns maintenance on or off. IfEpoch, when set, makes the
// write a compare-and-set against the current epoch.
type SetMaintenance struct {
	Enabled bool          `json:"enabled"`
	Reason  string        `json:"reason,omitempty"`
	By      string        `json:"by,omitempty"`
	TTL     time.Duration `json:"ttl,omitempty"`
	IfEpoch *uint64       `json:"if_epoch,omitempty"`
	Time    time.Time     `json:"time"`
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
	ID   string    `json:"id"`
	By   string    `json:"by,omitempty"`
	Time time.Time `json:"time"`
}

// Encode wraps a payload in the envelope at the current version.
func Encode(typ string, payload any) ([]byte, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	return json.Marshal(Command{Type: typ, V: knownVersions[typ], Payload: p})
}

// Result is what Apply returns to the proposer through ApplyFuture.Response().
type Result struct {
	Applied bool `json:"applied"`
	// Code names why a command was rejected (empty when applied or a no-op).
	Code        string      `json:"code,omitempty"`
	Reason      string      `json:"reason,omitempty"`
	Index       uint64      `json:"index"`
	Maintenance Maintenance `json:"maintenance"`
}

// Rejection codes.
const (
	RejectEpochMismatch = "epoch_mismatch"
	RejectInvalid       = "invalid"
)
