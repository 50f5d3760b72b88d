package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/metasrv/metasrv/server/wire"
)

// maxAnswer bounds how much of a heartbeat answer is read.
const maxAnswer = 16 << 20

// StatusError is an answer other than 200 to a heartbeat.
type StatusError struct {
	Code int    // HTTP status
	Body []byte // the answer's body as read
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("status %d: %s", e.Code, bytes.TrimSpace(e.Body))
}

// Send posts one heartbeat to the metasrv at base (http:// or https://
// and HOST:PORT) with c,
// bounded by ctx, and decodes a 200 answer. Any other answer is a
// *StatusError, and hint is the leader's RPC address it names (a
// not_leader answer does), or "".
func Send(ctx context.Context, c *http.Client, base, token string, hb wire.Heartbeat) (resp wire.HeartbeatResponse, hint string, err error) {
	body, err := json.Marshal(hb)
	if err != nil {
		return resp, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/heartbeat", bytes.NewReader(body))
	if err != nil {
		return resp, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	r, err := c.Do(req)
	if err != nil {
		return resp, "", err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(io.LimitReader(r.Body, maxAnswer))
	if err != nil {
		return resp, "", err
	}
	if r.StatusCode != http.StatusOK {
		return resp, wire.LeaderHint(b), &StatusError{Code: r.StatusCode, Body: b}
	}
	return resp, "", json.Unmarshal(b, &resp)
}
