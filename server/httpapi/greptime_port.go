package httpapi

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/metasrv/metasrv/server/auth"
)

// The GreptimeDB-style HTTP port (--http-addr) serves only the routes of
// GreptimeDB v0.17+'s HTTP server, with their semantics: GET
// /admin/maintenance only reads, whatever its query, and POST/PUT on it are
// 405. Queries are dropped, so a request means the same here, on the leader
// it is forwarded to (over the RPC port, as the route's RPC-port
// equivalent) and in GreptimeDB.

// compatIdentity is the "by" of writes through the port in
// --http-greptime-compat mode, where callers are not authenticated.
const compatIdentity = "greptime-compat"

// greptimePaths are the routes the port serves; /admin/maintenance is
// replaced by its read.
var greptimePaths = []string{
	"/admin/maintenance/status", "/admin/maintenance/enable", "/admin/maintenance/disable",
	"/admin/procedure-manager/status", "/admin/procedure-manager/pause", "/admin/procedure-manager/resume",
	"/health", "/ready", "/v1/health", "/status",
}

// greptimeRoutes is the port's route table, taken from the API's.
func (s *Server) greptimeRoutes() []route {
	byPath := map[string]route{}
	for _, rt := range s.apiRoutes() {
		byPath[rt.path] = rt
	}
	out := []route{{"/admin/maintenance", map[string]endpoint{
		http.MethodGet: byPath["/admin/maintenance/status"].methods[http.MethodGet],
	}}}
	for _, p := range greptimePaths {
		out = append(out, byPath[p])
	}
	return out
}

// greptimeHandler serves the port. compat makes it credential-free: the
// node's own credentials carry its writes (forwarded ones included) and
// writes record compatIdentity.
func (s *Server) greptimeHandler(compat bool) http.Handler {
	gate := s.authorize
	if compat {
		// No credentials here: every caller is greptime-compat, an
		// operator, and the node's own credentials carry it onwards.
		gate = func(_ string, _ access, r *http.Request) (*http.Request, error) {
			return withIdentity(r, auth.Identity{Name: compatIdentity, Scope: auth.ScopeAdmin}), nil
		}
	}
	h := s.router(s.greptimeRoutes(), "greptime:", gate)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.RawQuery = ""
		if r.URL.Path == "/admin/maintenance" {
			// The RPC port's GET /admin/maintenance may be the legacy
			// setter; its read has a name of its own.
			r2.URL.Path = "/admin/maintenance/status"
		}
		r2.Header.Del(hdrForwardedBy) // this port never receives forwards
		r2.Header.Del(hdrClientAddr)
		if compat {
			r2.URL.RawQuery = url.Values{"by": {compatIdentity}}.Encode()
			r2.Header.Del("Authorization")
			if tok := s.cfg.Tokens.Own(); tok != "" {
				r2.Header.Set("Authorization", "Bearer "+tok)
			}
		}
		h.ServeHTTP(w, r2)
	})
}

// AttachGreptime makes the GreptimeDB-style port answer on ln once Serve
// runs. Without compat it follows the API's TLS and credential rules.
func (s *Server) AttachGreptime(ln net.Listener, compat bool) {
	ln = newLimitListener(ln, s.connSem)
	if s.cfg.TLS != nil && !compat {
		ln = tls.NewListener(ln, s.cfg.TLS.ServerConfig(tls.VersionTLS12, false, nil))
	}
	s.greptimeLn = ln
	s.greptimeSrv = &http.Server{
		Handler:           withDeadline(s.greptimeHandler(compat), s.cfg.RequestTimeout),
		MaxHeaderBytes:    64 << 10,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          s.log.Named("http-greptime").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		ConnState:         s.trackConn,
	}
}

// GreptimeAddr is the port's bound address, or "".
func (s *Server) GreptimeAddr() string {
	if s.greptimeLn == nil {
		return ""
	}
	return s.greptimeLn.Addr().String()
}
