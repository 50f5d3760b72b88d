package wire

import "encoding/json"

// Error codes a client can act on. 503 no_leader, not_leader and timeout
// mean nothing was applied (safe to retry); 504 outcome_unknown means the
// write may or may not have been applied.
const (
	CodeNoLeader       = "no_leader"
	CodeNotLeader      = "not_leader"
	CodeTimeout        = "timeout"
	CodeOutcomeUnknown = "outcome_unknown"
)

// Error is the JSON body of every error answer. A not_leader answer to a
// heartbeat names the leader so the datanode can switch at once.
type Error struct {
	Error         string `json:"error"`
	Code          string `json:"code"`
	LeaderID      string `json:"leader_id,omitempty"`
	LeaderRPCAddr string `json:"leader_rpc_addr,omitempty"`
}

// ParseError reads an error body; fields it cannot find stay empty.
func ParseError(body []byte) Error {
	var e Error
	_ = json.Unmarshal(body, &e)
	return e
}

// LeaderHint is the leader's RPC address named by a not_leader answer, or "".
func LeaderHint(body []byte) string { return ParseError(body).LeaderRPCAddr }

// Retryable reports whether an error body says nothing was applied because
// the receiver was not (yet) the leader.
func Retryable(body []byte) bool {
	c := ParseError(body).Code
	return c == CodeNotLeader || c == CodeNoLeader
}
