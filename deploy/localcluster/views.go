package localcluster

import "time"

// Views of metasrv API answers that the end-to-end tests read: the fields
// of each entry they use (JSON ignores the others).

// Event is one entry of GET /admin/events.
type Event struct {
	Index  uint64            `json:"index"`
	Time   time.Time         `json:"time"`
	Type   string            `json:"type"`
	By     string            `json:"by"`
	Reason string            `json:"reason"`
	Epoch  uint64            `json:"epoch"`
	Fields map[string]string `json:"fields"`
}

// Route is one entry of GET /admin/regions: a region and its owner.
type Route struct {
	ID       uint64 `json:"id"`
	Table    string `json:"table"`
	Datanode uint64 `json:"datanode"`
	Version  uint64 `json:"version"`
	InFlight bool   `json:"in_flight"`
}
