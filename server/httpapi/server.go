package httpapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/auth"
	"github.com/metasrv/metasrv/server/certs"
	"github.com/metasrv/metasrv/server/leader"
	"github.com/metasrv/metasrv/server/raftnode"
)

// Config configures the API. The caller fills defaults.
type Config struct {
	NodeID       string
	Version      string
	Commit       string // build information for GET /status
	Branch       string
	AdminToken   string
	LeaderWait   time.Duration // how long a request waits for a leader
	ApplyTimeout time.Duration
	Now          func() time.Time
	Logger       hclog.Logger
	// Registry receives the HTTP metrics; GET /metrics serves all of it.
	Registry *prometheus.Registry

	// TLS, when set, makes the API HTTPS only with its certificate; a
	// client certificate is asked for and, when given, verified against
	// its pool.
	TLS *certs.Source
	// NodeTLS is what this node presents, and trusts, when it calls
	// another member's API (forwarding, join, probes). Used with TLS.
	NodeTLS *certs.Source
	// ClientCertAuth makes every route but the open ones need a verified
	// client certificate.
	ClientCertAuth bool
	// Tokens are the named secrets accepted (--admin-token-file,
	// --read-token-file, --datanode-token-file, and --admin-token).
	Tokens *auth.Tokens
	// MetricsPublic leaves /metrics open when reads need a credential.
	MetricsPublic bool
	// MaxConnections caps open API connections (0: no cap).
	MaxConnections int
	// RequestTimeout bounds one request (0: 10 s); it is raised to cover
	// LeaderWait plus ApplyTimeout.
	RequestTimeout time.Duration
	// MaintenanceWarnAfter: maintenance on this long without a TTL turns
	// the health report's maintenance indicator yellow (0: never).
	MaintenanceWarnAfter time.Duration
	// CertSources are the node's certificates by use, for the report's
	// certificates indicator.
	CertSources map[string]*certs.Source
}

// Server is one node's HTTP API.
type Server struct {
	cfg     Config
	log     hclog.Logger
	node    *raftnode.Node
	fsm     *fsm.FSM
	lead    *leader.Leader
	client  atomic.Pointer[http.Client]
	scheme  string // of every member's API: https when this node serves TLS
	metrics *metrics
	handler http.Handler

	httpSrv *http.Server
	ln      net.Listener
	// The GreptimeDB-style port (--http-addr), if any.
	greptimeSrv *http.Server
	greptimeLn  net.Listener
	// newConns are accepted connections that have not sent a request yet;
	// Shutdown would wait up to 5 s for them, so Shutdown closes them itself.
	connMu   sync.Mutex
	newConns map[net.Conn]bool
	// conns are all open connections and their state, for closing those
	// whose client certificate a reloaded CA no longer trusts; doomed ones
	// were serving a request then and close when it ends.
	conns  map[net.Conn]http.ConnState
	doomed map[net.Conn]bool
	// connSem caps open connections over both listeners.
	connSem chan struct{}
}

// New builds the API over node and its leader-only work.
func New(cfg Config, node *raftnode.Node, lead *leader.Leader) *Server {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	cfg.RequestTimeout = max(cfg.RequestTimeout, cfg.LeaderWait+cfg.ApplyTimeout+5*time.Second)
	s := &Server{cfg: cfg, log: cfg.Logger, node: node, fsm: node.FSM(), lead: lead}
	s.client.Store(newHTTPClient(cfg.NodeTLS))
	if cfg.NodeTLS != nil {
		// Pooled connections carry the certificate they were made with;
		// after new files, make new ones (a CA dropped next would refuse
		// the old ones mid-request).
		cfg.NodeTLS.OnChange(func() {
			old := s.client.Swap(newHTTPClient(cfg.NodeTLS))
			old.CloseIdleConnections()
			time.AfterFunc(time.Minute, old.CloseIdleConnections) // ones in use then
		})
	}
	s.scheme = "http"
	if cfg.TLS != nil {
		s.scheme = "https"
	}
	s.metrics = newMetrics(cfg.Registry)
	cfg.Registry.MustRegister(healthCollector{s})
	s.handler = s.routes()
	if cfg.TLS != nil {
		cfg.TLS.OnChange(s.dropUntrusted)
	}
	if cfg.MaxConnections > 0 {
		s.connSem = make(chan struct{}, cfg.MaxConnections)
	}
	return s
}

// Handler is the API's handler (tests serve it with httptest).
func (s *Server) Handler() http.Handler { return s.handler }

// Peers is how the raft node reaches other members' APIs.
func (s *Server) Peers() raftnode.Peers { return peerClient{s} }

// Listen binds the API's listen address (port 0: any free port).
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on --rpc-addr %s: %w", addr, err)
	}
	return ln, nil
}

// Attach makes the API answer on ln once Serve runs.
func (s *Server) Attach(ln net.Listener) {
	ln = newLimitListener(ln, s.connSem)
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS.ServerConfig(tls.VersionTLS12, false, nil))
	}
	s.ln = ln
	s.httpSrv = &http.Server{
		MaxHeaderBytes:    64 << 10,
		Handler:           withDeadline(s.handler, s.cfg.RequestTimeout),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          s.log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		ConnState:         s.trackConn,
	}
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve answers requests until Shutdown; it returns nil once closed.
func (s *Server) Serve() error {
	if s.greptimeSrv != nil {
		go func() {
			if err := s.greptimeSrv.Serve(s.greptimeLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("the --http-addr server stopped", "error", err)
			}
		}()
	}
	err := s.httpSrv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, closes idle new connections and lets running
// requests finish (bounded by 3 s and ctx).
func (s *Server) Shutdown(ctx context.Context) {
	if s.httpSrv == nil {
		return
	}
	s.closeNewConns()
	hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for _, srv := range []*http.Server{s.greptimeSrv, s.httpSrv} {
		if srv != nil && srv.Shutdown(hctx) != nil {
			srv.Close()
		}
	}
}

func (s *Server) trackConn(c net.Conn, st http.ConnState) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.newConns == nil {
		s.newConns, s.conns, s.doomed = map[net.Conn]bool{}, map[net.Conn]http.ConnState{}, map[net.Conn]bool{}
	}
	if st == http.StateNew {
		s.newConns[c] = true
	} else {
		delete(s.newConns, c)
	}
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
		delete(s.doomed, c)
	case http.StateIdle:
		s.conns[c] = st
		if s.doomed[c] {
			c.Close()
		}
	default:
		s.conns[c] = st
	}
}

// dropUntrusted closes connections whose client certificate no longer
// verifies after a reload (a CA dropped from the bundle): the client must
// handshake again, and is refused.
func (s *Server) dropUntrusted() {
	s.connMu.Lock()
	var open []*tls.Conn
	for c := range s.conns {
		if tc, ok := c.(*tls.Conn); ok && !s.doomed[c] {
			open = append(open, tc)
		}
	}
	s.connMu.Unlock()
	for _, c := range open {
		// ConnectionState waits for a handshake in progress: not here.
		go s.dropIfUntrusted(c)
	}
}

// dropIfUntrusted closes c if its client certificate no longer verifies:
// at once when it is idle, else after the request it is serving (cutting a
// forwarded write short would leave its outcome unknown).
func (s *Server) dropIfUntrusted(c *tls.Conn) {
	st := c.ConnectionState()
	if !st.HandshakeComplete || len(st.PeerCertificates) == 0 || s.cfg.TLS.Trusted(st.PeerCertificates, x509.ExtKeyUsageClientAuth) {
		return
	}
	s.log.Info("closing a connection whose client certificate is no longer trusted",
		"remote", c.RemoteAddr().String(), "subject", st.PeerCertificates[0].Subject.String())
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if state, open := s.conns[c]; open && state == http.StateActive {
		s.doomed[c] = true
		return
	}
	c.Close()
}

func (s *Server) closeNewConns() {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	for c := range s.newConns {
		c.Close()
	}
}
