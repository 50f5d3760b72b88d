package raftnode

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metasrv/metasrv/server/certs"
)

// streamLayer is raft's TCP stream layer that, unlike NewTCPTransport,
// accepts a host name as the advertised address and resolves peer names at
// each dial: containers and pods change IP addresses across restarts.
//
// With peer TLS (secure) it is mutual TLS 1.3 between members:
//
//   - Accept returns only connections whose handshake and identity check
//     are done. Handshakes run in their own goroutines, each bounded by
//     handshakeTimeout, so a silent client blocks nobody. A client must
//     present a chain that verifies against the peer CA, of role
//     metasrv-node, whose id (CN) is not one this node knows was removed.
//     It is deliberately not "ids in my configuration": a lagging follower
//     must accept a leader that was added after it fell behind. The
//     removed ids live in the FSM (fsm.State.RemovedMembers): derived from
//     the RemoveMember command every removal already proposes and cleared
//     by SetMember when the id is added again, so nothing new goes into the
//     raft log (no protocol level), every replica derives the same set,
//     and it survives snapshots (an older binary ignores the field). Inbound
//     connections per id are capped (maxPerPeer). Anything else is closed
//     before raft reads a byte, and counted in
//     metasrv_raft_conn_refused_total{reason}.
//   - Dial is by node id: the target is "ID@HOST:PORT" (peerTransport's
//     address provider builds it; the last "@" separates, as a host never
//     has one). The server's chain must verify, with role metasrv-node
//     and CN == the id dialled; its SAN is not checked (members are named
//     by id, not host name). A target without an id is refused.
//   - With acceptPlain (the accept-both phase of turning TLS on) the first
//     byte is sniffed: 0x16 starts a TLS handshake, 0..5 is one of raft's
//     rpc types (plaintext). Dial prefers TLS and falls back to plaintext
//     only when the peer evidently does not speak TLS (the connection was
//     closed or reset, or answered with something not TLS, before it
//     presented a certificate: what raft's plaintext transport does with a
//     ClientHello), never after a verification failure.
//   - After the Source reloads, connections whose peer chain no longer
//     verifies are closed (recheck); raft redials.
type streamLayer struct {
	net.Listener
	advertise advertisedAddr

	sec *secureOpts // nil: plaintext

	acceptCh  chan net.Conn
	done      chan struct{}
	startOnce sync.Once
	closeOnce sync.Once

	mu      sync.Mutex
	perPeer map[string]int // open inbound TLS connections by peer id
	conns   map[*peerConn]struct{}
	pending int // handshakes in progress
}

type secureOpts struct {
	src         *certs.Source
	acceptPlain bool
	removed     func(id string) bool // ids this node knows were removed
	refused     *prometheus.CounterVec
	log         hclog.Logger
	maxPerPeer  int
}

const (
	handshakeTimeout   = 5 * time.Second
	maxHandshakes      = 128 // concurrent inbound handshakes
	tlsRecordHandshake = 0x16
	maxRPCType         = 5 // raft's NetworkTransport rpc types are 0..5
)

type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

func newStreamLayer(listen, advertise string) (*streamLayer, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	if anyPort(advertise) {
		advertise = ln.Addr().String() // port 0: the one the kernel chose
	}
	return &streamLayer{Listener: ln, advertise: advertisedAddr(advertise),
		acceptCh: make(chan net.Conn), done: make(chan struct{}),
		perPeer: map[string]int{}, conns: map[*peerConn]struct{}{}}, nil
}

// secure puts the stream layer under mutual TLS; call it before use.
func (s *streamLayer) secure(o secureOpts) {
	if o.log == nil {
		o.log = hclog.NewNullLogger()
	}
	s.sec = &o
	o.src.OnChange(s.recheck)
}

// anyPort reports whether addr asks for any free port (":0").
func anyPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}

// peerTarget is the dial target naming member id at addr.
func peerTarget(id raft.ServerID, addr raft.ServerAddress) raft.ServerAddress {
	return raft.ServerAddress(string(id) + "@" + string(addr))
}

// splitTarget splits "ID@HOST:PORT"; id is "" when there is no "@". Host
// names and IP addresses have no "@", so the last one separates.
func splitTarget(target string) (id, hostport string) {
	i := strings.LastIndexByte(target, '@')
	if i < 0 {
		return "", target
	}
	return target[:i], target[i+1:]
}

// ErrDialWithoutID is a raft dial in TLS mode to an address that names no
// member id: the server's identity could not be checked.
var ErrDialWithoutID = errors.New("raft dial without a member id refused: peer TLS checks the id it dials")

// Dial resolves the address afresh on every call.
func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	id, hostport := splitTarget(string(addr))
	d := net.Dialer{Timeout: timeout}
	if s.sec == nil {
		return d.Dial("tcp", hostport)
	}
	if id == "" {
		return nil, fmt.Errorf("%w (%s)", ErrDialWithoutID, addr)
	}
	raw, err := d.Dial("tcp", hostport)
	if err != nil {
		return nil, err
	}
	reached := false // the server presented a certificate
	cfg := s.sec.src.IdentityClientConfig(tls.VersionTLS13, func(p certs.Identity) error {
		if p.Role != certs.RoleNode {
			return fmt.Errorf("role %q is not %s", p.Role, certs.RoleNode)
		}
		if p.Name != id {
			return fmt.Errorf("dialled member %s, certificate names %s", id, p.Name)
		}
		return nil
	})
	verify := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error { reached = true; return verify(cs) }
	cfg.MaxVersion = tls.VersionTLS13
	hs := handshakeTimeout
	if timeout > 0 && timeout < hs {
		hs = timeout
	}
	raw.SetDeadline(time.Now().Add(hs))
	tc := tls.Client(raw, cfg)
	if err := tc.Handshake(); err != nil {
		raw.Close()
		if s.sec.acceptPlain && !reached && notTLSPeer(err) {
			s.sec.log.Debug("raft peer does not speak TLS; dialling plaintext (accept-both phase)", "id", id, "addr", hostport, "error", err)
			return d.Dial("tcp", hostport)
		}
		return nil, fmt.Errorf("raft TLS to %s at %s: %w", id, hostport, err)
	}
	raw.SetDeadline(time.Time{})
	return s.track(tc, raw, id, x509.ExtKeyUsageServerAuth, false), nil
}

// notTLSPeer reports whether a handshake error says the peer closed or
// reset the connection, or answered with something that is not TLS: what a
// plaintext raft transport does with a ClientHello (0x16 is no rpc type).
func notTLSPeer(err error) bool {
	var rh tls.RecordHeaderError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.As(err, &rh)
}

// Accept returns the next connection; in TLS mode only a verified one.
func (s *streamLayer) Accept() (net.Conn, error) {
	if s.sec == nil {
		return s.Listener.Accept()
	}
	s.startOnce.Do(func() { go s.acceptLoop() })
	select {
	case c := <-s.acceptCh:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes the TLS connections still open, as a
// process exit would (raft's NetworkTransport leaves accepted ones open).
func (s *streamLayer) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	err := s.Listener.Close()
	s.mu.Lock()
	open := make([]*peerConn, 0, len(s.conns))
	for c := range s.conns {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
	return err
}

func (s *streamLayer) acceptLoop() {
	for {
		raw, err := s.Listener.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond) // EMFILE and the like
			continue
		}
		s.mu.Lock()
		busy := s.pending >= maxHandshakes
		if !busy {
			s.pending++
		}
		s.mu.Unlock()
		if busy {
			raw.Close()
			s.refuse("busy", raw, nil)
			continue
		}
		go func() {
			defer func() { s.mu.Lock(); s.pending--; s.mu.Unlock() }()
			if c := s.handshake(raw); c != nil {
				select {
				case s.acceptCh <- c:
				case <-s.done:
					c.Close()
				}
			}
		}()
	}
}

func (s *streamLayer) refuse(reason string, c net.Conn, err error) {
	if s.sec.refused != nil {
		s.sec.refused.WithLabelValues(reason).Inc()
	}
	s.sec.log.Warn("refused raft connection", "reason", reason, "remote", c.RemoteAddr().String(), "error", err)
}

// handshake sniffs, handshakes and checks one inbound connection; nil
// means it was refused (and closed).
func (s *streamLayer) handshake(raw net.Conn) net.Conn {
	raw.SetDeadline(time.Now().Add(handshakeTimeout))
	var first [1]byte
	if _, err := io.ReadFull(raw, first[:]); err != nil {
		raw.Close()
		s.refuse("handshake", raw, err)
		return nil
	}
	pc := &prefixConn{Conn: raw, prefix: first[:]}
	if first[0] != tlsRecordHandshake {
		if s.sec.acceptPlain && first[0] <= maxRPCType {
			raw.SetDeadline(time.Time{})
			return pc
		}
		raw.Close()
		s.refuse("plaintext", raw, nil)
		return nil
	}
	var reason string
	cfg := s.sec.src.ServerConfig(tls.VersionTLS13, true, func(p certs.Identity) error {
		switch {
		case p.Role != certs.RoleNode:
			reason = "role"
			return fmt.Errorf("role %q is not %s", p.Role, certs.RoleNode)
		case s.sec.removed != nil && s.sec.removed(p.Name):
			reason = "removed"
			return fmt.Errorf("member %s was removed from the cluster", p.Name)
		}
		return nil
	})
	verify := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		err := verify(cs)
		if err != nil && reason == "" {
			reason = "certificate"
		}
		return err
	}
	cfg.MaxVersion = tls.VersionTLS13
	tc := tls.Server(pc, cfg)
	if err := tc.Handshake(); err != nil {
		raw.Close()
		if reason == "" {
			reason = "handshake"
		}
		s.refuse(reason, raw, err)
		return nil
	}
	id := tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	c := s.track(tc, raw, id, x509.ExtKeyUsageClientAuth, true)
	if c == nil {
		raw.Close()
		s.refuse("limit", raw, fmt.Errorf("member %s has %d open raft connections already", id, s.sec.maxPerPeer))
		return nil
	}
	raw.SetDeadline(time.Time{})
	return c
}

// track registers an established TLS connection for the per-peer cap and
// for recheck; Close unregisters it. It is nil when an inbound one would
// pass the cap.
func (s *streamLayer) track(tc *tls.Conn, raw net.Conn, id string, usage x509.ExtKeyUsage, inbound bool) *peerConn {
	c := &peerConn{Conn: tc, raw: raw, s: s, id: id, chain: tc.ConnectionState().PeerCertificates, usage: usage, inbound: inbound}
	s.mu.Lock()
	defer s.mu.Unlock()
	if inbound {
		if s.perPeer[id] >= s.sec.maxPerPeer {
			return nil
		}
		s.perPeer[id]++
	}
	s.conns[c] = struct{}{}
	return c
}

// recheck closes connections whose peer chain no longer verifies against
// the reloaded trust pool. It runs in the Source's reload hook.
func (s *streamLayer) recheck() {
	s.mu.Lock()
	var stale []*peerConn
	for c := range s.conns {
		if !s.sec.src.Trusted(c.chain, c.usage) {
			stale = append(stale, c)
		}
	}
	s.mu.Unlock()
	for _, c := range stale {
		s.sec.log.Warn("closing raft connection: its peer certificate is no longer trusted", "id", c.id, "inbound", c.inbound)
		if s.sec.refused != nil {
			s.sec.refused.WithLabelValues("untrusted").Inc()
		}
		c.Close()
	}
}

// openConns is the number of tracked TLS connections (inbound, outbound).
func (s *streamLayer) openConns() (in, out int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.inbound {
			in++
		} else {
			out++
		}
	}
	return in, out
}

// peerConn is an established, verified TLS connection with its peer.
type peerConn struct {
	net.Conn // *tls.Conn
	raw      net.Conn
	s        *streamLayer
	id       string
	chain    []*x509.Certificate
	usage    x509.ExtKeyUsage
	inbound  bool
	once     sync.Once
}

// Close closes the socket itself: a close_notify could block on a peer
// that does not read.
func (c *peerConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		if c.inbound {
			if c.s.perPeer[c.id]--; c.s.perPeer[c.id] <= 0 {
				delete(c.s.perPeer, c.id)
			}
		}
		c.s.mu.Unlock()
	})
	return c.raw.Close()
}

// prefixConn replays the sniffed bytes before reading on.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// Addr is the advertised address; raft stores it as this node's address.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// peerTransport wraps raft's NetworkTransport. Every call that names a
// peer records id → address in a book that the NetworkTransport's
// ServerAddressProvider reads, so the stream layer dials "ID@ADDR" and can
// check the id under TLS. AppendEntries and InstallSnapshot to a peer that
// refuses connections retry the dial every 5–50 ms up to the transport
// timeout instead of failing at once: raft backs off replication to a peer
// per failure (doubling to ~10 s, reset only by a success), which made a
// restarted follower wait seconds for its leader. Nothing was sent when a
// dial is refused, so a retry is safe. The retries stop when the node
// closes (stopRetries).
type peerTransport struct {
	*raft.NetworkTransport
	book    *addrBook
	timeout time.Duration

	stop     chan struct{}
	stopOnce sync.Once
}

var (
	_ raft.Transport   = (*peerTransport)(nil)
	_ raft.WithClose   = (*peerTransport)(nil)
	_ raft.WithPreVote = (*peerTransport)(nil)
)

// addrBook is the ServerAddressProvider of the wrapped NetworkTransport.
type addrBook struct {
	mu sync.RWMutex
	m  map[raft.ServerID]raft.ServerAddress
}

func (b *addrBook) record(id raft.ServerID, addr raft.ServerAddress) {
	if id == "" {
		return
	}
	b.mu.RLock()
	same := b.m[id] == addr
	b.mu.RUnlock()
	if !same {
		b.mu.Lock()
		b.m[id] = addr
		b.mu.Unlock()
	}
}

// ServerAddr is the id-qualified target for id.
func (b *addrBook) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	b.mu.RLock()
	addr, ok := b.m[id]
	b.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("no raft address recorded for member %q", id)
	}
	return peerTarget(id, addr), nil
}

const (
	retryMin = 5 * time.Millisecond
	retryMax = 50 * time.Millisecond
)

func newPeerTransport(stream *streamLayer, maxPool int, timeout time.Duration, log hclog.Logger) *peerTransport {
	book := &addrBook{m: map[raft.ServerID]raft.ServerAddress{}}
	nt := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: maxPool, Timeout: timeout, Logger: log, ServerAddressProvider: book,
	})
	return &peerTransport{NetworkTransport: nt, book: book, timeout: timeout, stop: make(chan struct{})}
}

// stopRetries ends dial retries at once (before raft's Shutdown, which
// waits for the replication goroutines that may be retrying).
func (t *peerTransport) stopRetries() { t.stopOnce.Do(func() { close(t.stop) }) }

// Close stops retries, closes the pooled connections and the transport.
func (t *peerTransport) Close() error {
	t.stopRetries()
	t.NetworkTransport.CloseStreams()
	return t.NetworkTransport.Close()
}

func refusedDial(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

func (t *peerTransport) retryRefused(call func() error) error {
	deadline := time.Now().Add(t.timeout)
	wait := retryMin
	for {
		err := call()
		if err == nil || !refusedDial(err) || time.Now().Add(wait).After(deadline) {
			return err
		}
		timer := time.NewTimer(wait)
		select {
		case <-t.stop:
			timer.Stop()
			return err
		case <-timer.C:
		}
		wait = min(2*wait, retryMax)
	}
}

func (t *peerTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	t.book.record(id, target)
	return t.NetworkTransport.AppendEntriesPipeline(id, target)
}

func (t *peerTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	t.book.record(id, target)
	return t.retryRefused(func() error { return t.NetworkTransport.AppendEntries(id, target, args, resp) })
}

func (t *peerTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	t.book.record(id, target)
	return t.NetworkTransport.RequestVote(id, target, args, resp)
}

func (t *peerTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	t.book.record(id, target)
	return t.NetworkTransport.RequestPreVote(id, target, args, resp)
}

// InstallSnapshot retries only a refused dial: the NetworkTransport dials
// before it reads data.
func (t *peerTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	t.book.record(id, target)
	return t.retryRefused(func() error { return t.NetworkTransport.InstallSnapshot(id, target, args, resp, data) })
}

func (t *peerTransport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	t.book.record(id, target)
	return t.NetworkTransport.TimeoutNow(id, target, args, resp)
}

// EncodePeer is the plain address: it travels in every RPC header as the
// leader's address, which followers report and store. (NetworkTransport's
// own would apply the address provider.)
func (t *peerTransport) EncodePeer(id raft.ServerID, addr raft.ServerAddress) []byte {
	return []byte(addr)
}
