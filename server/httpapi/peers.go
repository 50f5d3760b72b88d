package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/metasrv/metasrv/server/raftnode"
	"github.com/metasrv/metasrv/server/wire"
)

// peerClient is how the raft node reaches other members' APIs: join and
// self-registration, with this node's credentials.
type peerClient struct{ s *Server }

func (p peerClient) Join(ctx context.Context, addr string, req wire.JoinRequest) (wire.JoinResponse, error) {
	var jr wire.JoinResponse
	body, _ := json.Marshal(req)
	status, respBody, err := p.s.call(ctx, http.MethodPost, p.s.url(addr, "/admin/cluster/join"), body)
	if err != nil {
		return jr, err
	}
	switch {
	case status == http.StatusConflict && !transientJoinRefusal(respBody):
		return jr, raftnode.Errorf(raftnode.ErrJoinRefused, "%d %s", status, bytes.TrimSpace(respBody))
	case status != http.StatusOK:
		return jr, fmt.Errorf("%d %s", status, bytes.TrimSpace(respBody))
	}
	if err := json.Unmarshal(respBody, &jr); err != nil {
		return jr, fmt.Errorf("bad answer: %w", err)
	}
	return jr, nil
}

func (p peerClient) Register(ctx context.Context, addr string, req wire.JoinRequest) error {
	body, _ := json.Marshal(req)
	status, respBody, err := p.s.call(ctx, http.MethodPut, p.s.url(addr, "/admin/cluster/members/"+req.ID), body)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%d %s", status, bytes.TrimSpace(respBody))
	}
	return nil
}

// url is another member's API address with path, in this cluster's scheme.
func (s *Server) url(addr, path string) string { return s.scheme + "://" + addr + path }

// call sends one request to another node with this node's credentials.
func (s *Server) call(ctx context.Context, method, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	// Reads (member probes, status) never carry the token: the address
	// probed comes from the member table, which another member may have
	// written, and must not be handed a secret.
	tok := s.cfg.Tokens.Own()
	if method == http.MethodGet {
		tok = s.cfg.Tokens.OwnRead()
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.client.Load().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp.StatusCode, b, err
}
