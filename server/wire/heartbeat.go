package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// RegionStat is what a datanode reports about one region.
type RegionStat struct {
	RegionID uint64 `json:"region_id"`
	Rcus     int64  `json:"rcus"`
	Wcus     int64  `json:"wcus"`
	Size     int64  `json:"approximate_bytes"`
}

// Heartbeat is the body of POST /v1/heartbeat.
type Heartbeat struct {
	ID          uint64 `json:"id"`
	Addr        string `json:"addr"`
	StartTimeMs int64  `json:"start_time_ms"`
	// Seq increases with every heartbeat of one datanode process; a late,
	// older heartbeat (its sender already gave up on it) is ignored.
	Seq uint64 `json:"seq"`
	// IncarnationKey is a random secret the datanode process draws at
	// start and sends with every heartbeat. The leader pins it to the
	// incarnation, so a heartbeat that claims the incarnation without the
	// key (another holder of a fleet token) is refused. Never echoed:
	// GET /admin/heartbeat shows history with it cleared.
	IncarnationKey string       `json:"incarnation_key,omitempty"`
	Regions        []uint64     `json:"regions"`
	RegionStats    []RegionStat `json:"region_stats,omitempty"`
	// Received is stamped by the leader when it takes the heartbeat; it is
	// never sent.
	Received time.Time `json:"-"`
}

// Incarnation is a datanode's GET /incarnation answer: which process
// serves its address. The leader asks it before it believes a fleet
// credential's claim that datanode ID restarted (or, for a new leader, is
// the process it first hears from).
type Incarnation struct {
	ID          uint64 `json:"id"`
	StartTimeMs int64  `json:"start_time_ms"`
	// KeySHA256 is the hex SHA-256 of the incarnation key: it proves the
	// claimant holds the key without telling it to whoever asks.
	KeySHA256 string `json:"key_sha256"`
}

// IncarnationKeyDigest is what Incarnation.KeySHA256 holds for key.
func IncarnationKeyDigest(key string) string {
	d := sha256.Sum256([]byte(key))
	return hex.EncodeToString(d[:])
}

// HeartbeatResponse tells a datanode what to serve. Regions is the full,
// authoritative list it owns; Open and Close are the changes to make now.
// The lease covers every owned region it has open, for LeaseMs from the
// moment the datanode sent the heartbeat.
type HeartbeatResponse struct {
	LeaderID            string   `json:"leader_id"`
	HeartbeatIntervalMs int64    `json:"heartbeat_interval_ms"`
	LeaseMs             int64    `json:"lease_ms"`
	Regions             []uint64 `json:"regions"`
	Open                []uint64 `json:"open"`
	Close               []uint64 `json:"close"`
	// AckSeq is the seq of the heartbeat this answer grants LeaseMs for;
	// 0 with LeaseMs 0 when the leader did not take it (stale). A leader
	// older than this field leaves it out.
	AckSeq *uint64 `json:"ack_seq,omitempty"`
}

// HeartbeatStat is one kept heartbeat as GET /admin/heartbeat shows it
// (GreptimeDB's shape).
type HeartbeatStat struct {
	TimestampMillis int64        `json:"timestamp_millis"`
	ID              uint64       `json:"id"`
	Addr            string       `json:"addr"`
	RegionNum       int          `json:"region_num"`
	RegionStats     []RegionStat `json:"region_stats"`
	NodeEpoch       int64        `json:"node_epoch"`
}

// NodeLease is one entry of GET /admin/node-lease (GreptimeDB's shape).
type NodeLease struct {
	Name      map[string]uint64 `json:"name"`
	HumanTime string            `json:"human_time"`
	Lease     Lease             `json:"lease"`
}

// Lease is the last heartbeat of a datanode in a NodeLease.
type Lease struct {
	TimestampMillis int64  `json:"timestamp_millis"`
	NodeAddr        string `json:"node_addr"`
}
