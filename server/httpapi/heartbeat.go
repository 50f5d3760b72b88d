package httpapi

import (
	"net/http"

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
	if err != nil {
		writeError(w, err)
		return
	}
	resp, err := s.lead.Heartbeat(r.Context(), hb)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}
