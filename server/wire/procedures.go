package wire

import "time"

// Procedure manager states, as GreptimeDB names them.
const (
	ProceduresRunning = "running"
	ProceduresPaused  = "paused"
)

// ProcedureStatus is GreptimeDB's procedure manager answer (GET
// /admin/procedure-manager/status, POST .../pause and .../resume):
// {"status":"running"} or {"status":"paused"}.
type ProcedureStatus struct {
	Status string `json:"status"`
}

// ProcedureStatusVerbose is the answer to GET
// /admin/procedure-manager/status?verbose=true. By, Reason and Since
// describe the last pause or resume; Epoch counts the changes.
type ProcedureStatusVerbose struct {
	Status   string     `json:"status"`
	Paused   bool       `json:"paused"`
	By       string     `json:"by"`
	Identity string     `json:"identity,omitempty"`
	Reason   string     `json:"reason"`
	Since    *time.Time `json:"since"`
	Epoch    uint64     `json:"epoch"`
}
