package httpapi

import (
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxBody bounds every request and relayed response body.
const maxBody = 1 << 20

// access says where an endpoint runs.
type access int

const (
	local access = iota // answered by whichever node receives it
	read                // linearizable through the leader, unless ?stale
	write               // through the leader; needs the admin token
)

// endpoint is one method on one route. parse validates the request locally
// (bad input is refused before any forwarding); run executes it where
// access says. access may depend on the request (legacy GET setter).
type endpoint struct {
	access   func(r *http.Request) access
	parse    func(r *http.Request, body []byte) (any, error)
	run      func(ctx context.Context, w http.ResponseWriter, r *http.Request, in any) error
	rawLocal http.HandlerFunc // for local endpoints that need no parsing
}

func always(a access) func(*http.Request) access { return func(*http.Request) access { return a } }

// route is a path with its endpoints by method.
type route struct {
	path    string
	methods map[string]endpoint
}

// apiRoutes is every route of the HTTP API, in one table.
func (s *Server) apiRoutes() []route {
	webHealth := endpoint{access: always(local), rawLocal: s.handleWebHealth}
	return []route{
		{"/admin/maintenance", map[string]endpoint{
			http.MethodGet:  {access: maintenanceGetAccess, parse: s.parseMaintenanceGet, run: s.runMaintenanceGet},
			http.MethodPost: {access: always(write), parse: parseGuarded(s.parseMaintenanceSet(nil)), run: s.runGuarded},
			http.MethodPut:  {access: always(write), parse: s.parseMaintenanceSet(nil), run: s.runMaintenanceSet},
		}},
		{"/admin/maintenance/status", map[string]endpoint{
			http.MethodGet: {access: always(read), parse: parseMaintenanceRead, run: s.runMaintenanceRead},
		}},
		{"/admin/maintenance/enable", map[string]endpoint{
			http.MethodPost: {access: always(write), parse: s.parseMaintenanceSet(ptr(true)), run: s.runMaintenanceSet},
		}},
		{"/admin/maintenance/disable", map[string]endpoint{
			http.MethodPost: {access: always(write), parse: parseGuarded(s.parseMaintenanceSet(ptr(false))), run: s.runGuarded},
		}},
		{"/admin/health/report", map[string]endpoint{
			http.MethodGet: {access: always(read), parse: noInput, run: s.runHealthReport},
		}},
		{"/admin/maintenance/preflight", map[string]endpoint{
			http.MethodGet: {access: always(read), parse: noInput, run: s.runPreflight},
		}},
		{"/admin/procedure-manager/status", map[string]endpoint{
			http.MethodGet: {access: always(read), parse: parseProceduresRead, run: s.runProceduresStatus},
		}},
		{"/admin/procedure-manager/pause", map[string]endpoint{
			http.MethodPost: {access: always(write), parse: s.parseProceduresSet(true), run: s.runProceduresSet},
		}},
		{"/admin/procedure-manager/resume", map[string]endpoint{
			http.MethodPost: {access: always(write), parse: s.parseProceduresSet(false), run: s.runProceduresSet},
		}},
		{"/admin/health", map[string]endpoint{http.MethodGet: {access: always(local), rawLocal: s.handleHealth}}},
		{"/admin/ready", map[string]endpoint{http.MethodGet: {access: always(local), rawLocal: s.handleReady}}},
		{"/health", map[string]endpoint{http.MethodGet: webHealth, http.MethodPost: webHealth}},
		{"/v1/health", map[string]endpoint{http.MethodGet: webHealth, http.MethodPost: webHealth}},
		{"/ready", map[string]endpoint{
			http.MethodGet:  {access: always(local), rawLocal: s.handleWebReady},
			http.MethodPost: {access: always(local), rawLocal: s.handleWebReady},
		}},
		{"/status", map[string]endpoint{http.MethodGet: {access: always(local), rawLocal: s.handleStatus}}},
		{"/admin/leader", map[string]endpoint{http.MethodGet: {access: always(local), rawLocal: s.handleLeader}}},
		{"/admin/raft", map[string]endpoint{http.MethodGet: {access: always(local), rawLocal: s.handleRaftStatus}}},
		{"/admin/cluster", map[string]endpoint{http.MethodGet: {access: always(local), rawLocal: s.handleCluster}}},
		{"/admin/cluster/join", map[string]endpoint{
			http.MethodPost: {access: always(write), parse: parseJoin, run: s.runJoin},
		}},
		{"/admin/cluster/members/{id}", map[string]endpoint{
			http.MethodPut:    {access: always(write), parse: parseMemberUpdate, run: s.runMemberUpdate},
			http.MethodDelete: {access: always(write), parse: parseMemberID, run: s.runRemoveMember},
		}},
		{"/admin/cluster/transfer-leadership", map[string]endpoint{
			http.MethodPost: {access: always(write), parse: parseTransfer, run: s.runTransfer},
		}},
		{"/admin/events", map[string]endpoint{
			http.MethodGet: {access: always(read), parse: parseEvents, run: s.runEvents},
		}},
		{heartbeatRoute, map[string]endpoint{http.MethodPost: {access: always(local), rawLocal: s.handleHeartbeat}}},
		{"/admin/tables", map[string]endpoint{
			http.MethodGet:  {access: always(read), parse: noInput, run: s.runListTables},
			http.MethodPost: {access: always(write), parse: parseCreateTable, run: s.runCreateTable},
		}},
		{"/admin/tables/{name}", map[string]endpoint{
			http.MethodDelete: {access: always(write), parse: parseTableName, run: s.runDropTable},
		}},
		{"/admin/regions", map[string]endpoint{
			http.MethodGet: {access: always(read), parse: parseRegionsQuery, run: s.runListRegions},
		}},
		{"/admin/regions/{id}/migrate", map[string]endpoint{
			http.MethodPost: {access: always(write), parse: parseMigrate, run: s.runMigrate},
		}},
		{"/admin/datanodes", map[string]endpoint{
			http.MethodGet: {access: always(read), parse: noInput, run: s.runListDatanodes},
		}},
		{"/admin/datanodes/{id}", map[string]endpoint{
			http.MethodDelete: {access: always(write), parse: parseDatanodeID, run: s.runRemoveDatanode},
		}},
		{"/admin/datanodes/{id}/cordon", map[string]endpoint{
			http.MethodPost: {access: always(write), parse: parseDatanodeID, run: s.runAdminState},
		}},
		{"/admin/datanodes/{id}/drain", map[string]endpoint{
			http.MethodPost: {access: always(write), parse: parseDatanodeID, run: s.runAdminState},
		}},
		{"/admin/datanodes/{id}/uncordon", map[string]endpoint{
			http.MethodPost: {access: always(write), parse: parseDatanodeID, run: s.runAdminState},
		}},
		{"/admin/balancer/plan", map[string]endpoint{
			http.MethodGet: {access: always(read), parse: noInput, run: s.runBalancerPlan},
		}},
		{"/admin/balancer/status", map[string]endpoint{
			http.MethodGet: {access: always(read), parse: noInput, run: s.runBalancerStatus},
		}},
		{"/admin/node-lease", map[string]endpoint{
			http.MethodGet: {access: always(read), parse: noInput, run: s.runNodeLease},
		}},
		{"/admin/heartbeat", map[string]endpoint{
			http.MethodGet: {access: always(read), parse: parseHeartbeatQuery, run: s.runHeartbeatStats},
		}},
		{"/metrics", map[string]endpoint{http.MethodGet: {access: always(local),
			rawLocal: promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}).ServeHTTP}}},
	}
}

// openRoutes answer without credentials whatever the node's settings:
// kubelet probes, the image's health check and GreptimeDB's operator
// reach them with nothing.
var openRoutes = map[string]bool{
	"/admin/health": true, "/admin/ready": true, "/health": true, "/ready": true, "/v1/health": true, "/status": true,
}

// heartbeatRoute is the one route a datanode's certificate may use.
const heartbeatRoute = "/v1/heartbeat"

func ptr[T any](v T) *T { return &v }

func (s *Server) routes() http.Handler { return s.router(s.apiRoutes(), "", s.authorize) }

// router serves routes; metrics label each route with prefix + its path.
// gate authorizes each request before its endpoint runs (and attaches
// the caller's identity).
func (s *Server) router(routes []route, prefix string, gate func(path string, acc access, r *http.Request) (*http.Request, error)) http.Handler {
	r := mux.NewRouter()
	for _, rt := range routes {
		rt := rt
		var allow []string
		for m := range rt.methods {
			allow = append(allow, m)
		}
		if _, ok := rt.methods[http.MethodGet]; ok {
			allow = append(allow, http.MethodHead)
		}
		sort.Strings(allow)
		allowHdr := strings.Join(allow, ", ")
		r.Handle(rt.path, s.instrument(prefix+rt.path, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			method := req.Method
			if method == http.MethodHead {
				method = http.MethodGet
			}
			ep, ok := rt.methods[method]
			if ok && req.Method == http.MethodHead && ep.access(req) == write {
				ok = false // HEAD never writes (the legacy GET setter)
			}
			if !ok {
				// Authenticated as a read first: a caller that may not
				// read learns nothing about the routes (no Allow).
				if _, err := gate(rt.path, read, req); err != nil {
					writeError(w, err)
					return
				}
				w.Header().Set("Allow", allowHdr)
				writeError(w, errorf(http.StatusMethodNotAllowed, codeMethodNotAllowed,
					"method %s is not allowed on %s; allowed: %s", req.Method, rt.path, allowHdr))
				return
			}
			req, err := gate(rt.path, ep.access(req), req)
			if err != nil {
				writeError(w, err)
				return
			}
			s.serveEndpoint(w, req, ep)
		})))
	}
	r.NotFoundHandler = s.instrument(prefix+"unknown", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, errorf(http.StatusNotFound, codeNotFound, "no route %s %s", req.Method, req.URL.Path))
	}))
	return r
}

func (s *Server) serveEndpoint(w http.ResponseWriter, r *http.Request, ep endpoint) {
	acc := ep.access(r)
	if err := browserGuard(r, acc); err != nil {
		writeError(w, err)
		return
	}
	if acc == write {
		if r.Header.Get(hdrForwardedBy) != "" {
			// Already warned about on the node that received it.
		} else if r.Method == http.MethodGet {
			s.log.Warn("deprecated: setting maintenance with GET; use POST /admin/maintenance?enable=...", "client", clientAddr(r))
		} else if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/admin/maintenance") {
			s.log.Warn("deprecated: setting maintenance with PUT; use POST /admin/maintenance?enable=...", "client", clientAddr(r))
		}
	}
	if ep.rawLocal != nil {
		ep.rawLocal(w, r)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	in, err := ep.parse(r, body)
	if err != nil {
		writeError(w, err)
		return
	}
	stale, err := staleParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if acc == local || (acc == read && stale) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.LeaderWait)
		defer cancel()
		if err := ep.run(ctx, w, r, in); err != nil {
			writeError(w, err)
		}
		return
	}
	s.viaLeader(w, r, body, acc == write, func(ctx context.Context, w http.ResponseWriter) error {
		if acc == read {
			if err := s.node.ReadIndex(ctx); err != nil {
				return err
			}
		}
		return ep.run(ctx, w, r, in)
	})
}

// readBody reads a request body of at most maxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errorf(http.StatusRequestEntityTooLarge, codeTooLarge, "request body exceeds %d bytes", maxBody)
		}
		return nil, badRequest("reading request body: %v", err)
	}
	return body, nil
}

// staleParam reads ?stale (bare or =true): answer from the local FSM.
func staleParam(r *http.Request) (bool, error) {
	q := r.URL.Query()
	if !q.Has("stale") {
		return false, nil
	}
	switch q.Get("stale") {
	case "", "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, badRequest("stale=%q: want true or false (or bare ?stale)", q.Get("stale"))
}

// bearer is the token of an Authorization header; the scheme is
// case-insensitive (RFC 9110).
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// browserGuard keeps web pages from driving the API: a browser sends
// Origin with a cross-site request, and a "simple" request (a text/plain
// POST, or the legacy GET setter) needs no preflight, so without this any
// page could flip maintenance on a node without a token. Anything that
// changes state (writes, heartbeats) from an Origin other than the node
// itself is refused, and a body must be JSON. No Origin (curl, tools) is
// fine; the seed's bodiless POST is too.
func browserGuard(r *http.Request, acc access) error {
	changes := acc == write || (r.Method != http.MethodGet && r.Method != http.MethodHead)
	if !changes {
		return nil
	}
	if origin, ok := r.Header["Origin"]; ok && !sameOrigin(strings.Join(origin, ","), r) {
		return errorf(http.StatusForbidden, codeForbidden, "cross-origin request refused: Origin %q is not this node (%s); browsers may not change metasrv's state", strings.Join(origin, ","), r.Host)
	}
	if r.ContentLength != 0 {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			return errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "a request body must be application/json, not %q", r.Header.Get("Content-Type"))
		}
	}
	return nil
}

// sameOrigin reports whether an Origin names the host:port the request was
// sent to ("null" never does).
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	defaultPort := "80"
	if u.Scheme == "https" {
		defaultPort = "443"
	}
	return withPort(u.Host, defaultPort) == withPort(r.Host, defaultPort)
}

func withPort(hostport, def string) string {
	if _, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.ToLower(hostport)
	}
	return strings.ToLower(net.JoinHostPort(strings.Trim(hostport, "[]"), def))
}
