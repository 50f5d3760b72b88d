package httpapi

import (
	"net/http"

	"github.com/metasrv/metasrv/server/auth"
	"github.com/metasrv/metasrv/server/wire"
)

// handleHeartbeat is POST /v1/heartbeat: it validates and decodes the
// heartbeat; the leader assembles the answer. A follower answers 503
// not_leader with the leader's address so the datanode switches at once.
func (s *Server) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	var hb wire.Heartbeat
	body, err := readBody(w, r)
	if err == nil {
		err = decodeJSON(body, &hb)
	}
	if err == nil && hb.ID == 0 {
		err = badRequest("id must be a positive integer")
	}
	if err == nil {
		if e := wire.CheckHostPort(hb.Addr); e != nil {
			err = badRequest("addr %q: %v", hb.Addr, e)
		}
	}
	fleet := false
	if err == nil {
		fleet, err = s.heartbeatAllowed(r, hb)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	resp, err := s.lead.Heartbeat(r.Context(), hb, fleet)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// heartbeatAllowed binds a datanode's credential to its id: a certificate
// (CN datanode-<id>) or a token named datanode-<id> heartbeats only as that
// id; a fleet token (any other name) may register new ids and heartbeat,
// but never change a known id's address, and the leader confirms with the
// datanode any new incarnation it claims (fleet is true).
func (s *Server) heartbeatAllowed(r *http.Request, hb wire.Heartbeat) (fleet bool, err error) {
	id := identityOf(r)
	if id.Scope != auth.ScopeDatanode {
		return false, nil // authorize let it through: heartbeats need no credential here
	}
	if id.DatanodeID != 0 {
		if hb.ID != id.DatanodeID {
			return false, errorf(http.StatusForbidden, codeForbidden, "%s may heartbeat only as datanode %d, not %d", id.Name, id.DatanodeID, hb.ID)
		}
		return false, nil
	}
	if d, ok := s.fsm.Datanode(hb.ID); ok && d.Addr != hb.Addr {
		return true, errorf(http.StatusForbidden, codeForbidden, "the fleet credential %s may not change datanode %d's address (%s); give the datanode its own credential (datanode-%d)", id.Name, hb.ID, d.Addr, hb.ID)
	}
	if hb.IncarnationKey == "" {
		// Without a key the incarnation cannot be pinned, and any other
		// holder of the fleet token could speak for this datanode.
		return true, badRequest("a heartbeat with the fleet credential %s must carry incarnation_key (a datanode older than this metasrv: upgrade it, or give it its own credential datanode-%d)", id.Name, hb.ID)
	}
	return true, nil
}
