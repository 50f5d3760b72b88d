package httpapi

import (
	"net/http"
	"os"
	"runtime"
)

// GreptimeDB's web routes, for its operator's probes and gtctl: they answer
// on every node, need no credentials, and have GreptimeDB's bodies.

// handleWebHealth is GET/POST /health and /v1/health: 200 {} while the
// process answers at all.
func (s *Server) handleWebHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct{}{})
}

// handleWebReady is GET/POST /ready: 200 {} exactly when /admin/ready
// would answer 200.
func (s *Server) handleWebReady(w http.ResponseWriter, r *http.Request) {
	if _, why := s.readiness(r.Context()); why != "" {
		writeError(w, errorf(http.StatusServiceUnavailable, "not_ready", "%s", why))
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// buildStatus is GET /status, GreptimeDB's build information; rustc_version
// holds the Go version this binary was built with.
type buildStatus struct {
	Commit       string `json:"commit"`
	Branch       string `json:"branch"`
	RustcVersion string `json:"rustc_version"`
	Hostname     string `json:"hostname"`
	Version      string `json:"version"`
}

func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	host, _ := os.Hostname()
	writeJSON(w, http.StatusOK, buildStatus{Commit: s.cfg.Commit, Branch: s.cfg.Branch,
		RustcVersion: runtime.Version(), Hostname: host, Version: s.cfg.Version})
}
