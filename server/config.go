package server

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/metasrv/metasrv/server/certs"
	"github.com/metasrv/metasrv/server/leader"
	"github.com/metasrv/metasrv/server/raftnode"
	"github.com/metasrv/metasrv/server/wire"
)

// Peer is one member of the initial cluster (--peers).
type Peer struct {
	ID       string
	RaftAddr string
}

// Initial cluster states (--initial-cluster-state).
const (
	ClusterStateNew      = raftnode.ClusterStateNew
	ClusterStateExisting = raftnode.ClusterStateExisting
)

// LeaderWorker is leader-only work. It is started after the leadership
// barrier and must return soon after ctx is cancelled (on step-down).
type LeaderWorker = raftnode.Worker

// Config configures a Node. Zero durations take the defaults below.
type Config struct {
	NodeID            string
	RPCAddr           string // HTTP listen address
	RaftAddr          string // raft TCP listen address
	AdvertiseRPCAddr  string // what others dial; default RPCAddr
	AdvertiseRaftAddr string // default RaftAddr; may be a host name
	DataDir           string
	// HTTPAddr, when set, is the GreptimeDB-style HTTP port: GreptimeDB
	// v0.17+'s maintenance, procedure and health routes only.
	HTTPAddr string
	// HTTPGreptimeCompat makes that port plaintext and credential-free for
	// GreptimeDB's operator; its writes record the identity greptime-compat.
	HTTPGreptimeCompat bool

	Peers               []Peer
	InitialClusterState string
	Join                []string // RPC addresses of running members
	// BootstrapWait, when positive, makes a new node with an empty data dir
	// wait this long for an existing leader before bootstrapping from Peers.
	BootstrapWait time.Duration

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	LeaderWait         time.Duration // how long a request waits for a leader
	ApplyTimeout       time.Duration // bound on one raft apply

	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	SnapshotRetain    int

	AdminToken string
	// Credentials from files (NAME:SECRET lines), re-read on SIGHUP.
	AdminTokenFile, ReadTokenFile, DatanodeTokenFile string
	// MetricsPublic leaves /metrics open when reads need a credential.
	MetricsPublic bool
	// MaintenanceWarnAfter: maintenance on this long without a TTL turns
	// the health report yellow (--maintenance-warn-after, 1 h; 0: never).
	MaintenanceWarnAfter time.Duration
	// Datanode registration: at most MaxDatanodes, at RegisterRate per
	// second (burst RegisterBurst).
	// DatanodeApproval registers new datanodes cordoned until an operator
	// uncordons them.
	DatanodeApproval      bool
	MaxDatanodes          int
	DatanodeRegisterRate  float64
	DatanodeRegisterBurst int

	// TLS. A nil source means plaintext on that surface, allowed only on
	// loopback addresses unless Insecure.
	PeerTLS             *certs.Source // raft port, mutual TLS (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file)
	PeerAcceptPlaintext bool          // also accept plaintext raft connections (turning TLS on in a running cluster)
	ServerTLS           *certs.Source // HTTPS API (--cert-file, --key-file, --trusted-ca-file)
	ClientCertAuth      bool          // every route but the open ones needs a verified client certificate
	Insecure            bool          // allow plaintext off loopback
	// MaxConnections caps open API connections (both ports together);
	// RequestTimeout bounds one request (raised to cover LeaderWait plus
	// ApplyTimeout).
	MaxConnections int
	RequestTimeout time.Duration
	// CertPollInterval is how often certificate files are checked for new
	// content (Kubernetes swaps a Secret's files without a signal).
	CertPollInterval time.Duration

	Version string
	// Commit and Branch are the build's, shown by GET /status.
	Commit, Branch string

	Logger hclog.Logger
	// Now is the clock for command timestamps and timers; default time.Now.
	Now func() time.Time
	// OnFatal is called when this node must stop (an unknown command in the
	// log). The default exits the process.
	OnFatal func(err error)
	// Protocol is the command protocol this member advertises; 0 means
	// fsm.Protocol. It is for tests that play an older binary in process.
	Protocol int
	// Datanode heartbeats and failover (GreptimeDB's defaults).
	HeartbeatInterval        time.Duration
	FailureThreshold         float64
	MinStdDeviation          time.Duration
	AcceptableHeartbeatPause time.Duration
	FirstHeartbeatEstimate   time.Duration
	FailoverTick             time.Duration
	FailoverMaxRegions       int
	RegionLease              time.Duration // default 3 × HeartbeatInterval + 1 s

	// Balancer. BalancerInterval 0 disables automatic balancing (drain
	// still runs); the flag's default is DefaultBalancerInterval.
	BalancerInterval        time.Duration
	BalancerTolerance       int
	BalancerMaxMoves        int
	BalancerMaxMovesPerNode int
	BalancerCooldown        time.Duration

	// LeaderWorkers run on the leader only, after the barrier.
	LeaderWorkers []LeaderWorker
}

// Defaults. The raft timeouts (heartbeat = election = leader lease =
// 300ms) are tuned for a LAN and justified by `make bench`
// (docs/benchmarks.md; 2-core machine, 3 nodes and the load on it).
// kill -9 of the leader → next acknowledged write, median (max) of 10
// trials, in 1-3 runs each: 150ms 0.30-0.33 s (0.46 s), 200ms 0.47 s
// (0.55 s), 300ms 0.66-0.74 s (0.87 s), 500ms 0.82-1.23 s (1.42 s),
// hashicorp/raft's 1s/1s/500ms 1.7-2.2 s (2.9 s). Failover takes about
// 2-2.5 heartbeat timeouts: the first follower to time out is refused by
// the other, which still has a leader (pre-vote), until it times out too.
// 60 s of writes at concurrency 64 on the leader caused no leader change at
// 150, 200 or 300ms, but single writes stalled for up to 330 ms in those
// runs, and a leader that stalls longer than the heartbeat timeout (CPU
// throttling, VM steal) is deposed. 300ms is the largest value measured
// whose every trial stays under the 1 s target, so it leaves the most room
// for such stalls; 500ms misses it. Side by side with etcd 3.4 (defaults
// 100ms/1s; `make bench-compare`, 20 trials each, same run): etcd 1.51 s
// median, 300ms 0.63-0.75 s (0.42-0.49x etcd, within the 0.5x target), 200ms
// 0.42-0.46 s (0.28-0.30x), hashicorp's defaults 1.66-1.78 s.
const (
	DefaultRPCAddr            = "127.0.0.1:3002"
	DefaultRaftAddr           = "127.0.0.1:3003"
	DefaultHeartbeatTimeout   = 300 * time.Millisecond
	DefaultElectionTimeout    = 300 * time.Millisecond
	DefaultLeaderLeaseTimeout = 300 * time.Millisecond
	DefaultLeaderWait         = 5 * time.Second
	DefaultApplyTimeout       = 5 * time.Second
	DefaultSnapshotThreshold  = 8192
	DefaultSnapshotInterval   = 2 * time.Minute
	DefaultSnapshotRetain     = 2

	DefaultHeartbeatInterval        = 3 * time.Second
	DefaultFailureThreshold         = 8.0
	DefaultMinStdDeviation          = 100 * time.Millisecond
	DefaultAcceptableHeartbeatPause = 10 * time.Second
	DefaultFirstHeartbeatEstimate   = time.Second
	DefaultFailoverTick             = time.Second
	DefaultFailoverMaxRegions       = 100

	DefaultBalancerInterval        = 30 * time.Second
	DefaultBalancerTolerance       = 1
	DefaultBalancerMaxMoves        = 8
	DefaultBalancerMaxMovesPerNode = 4
	DefaultBalancerCooldown        = 5 * time.Minute

	DefaultCertPollInterval = 30 * time.Second
	DefaultMaxConnections   = 16384
	DefaultRequestTimeout   = 10 * time.Second
	// datanodeConnBudget is how many API connections the datanodes of a
	// large cluster may hold (one each), warned about below.
	datanodeConnBudget = 10000 + 1024
)

func (c *Config) setDefaults() {
	if c.RPCAddr == "" {
		c.RPCAddr = DefaultRPCAddr
	}
	if c.RaftAddr == "" {
		c.RaftAddr = DefaultRaftAddr
	}
	if c.AdvertiseRPCAddr == "" {
		c.AdvertiseRPCAddr = c.RPCAddr
	}
	if c.AdvertiseRaftAddr == "" {
		c.AdvertiseRaftAddr = c.RaftAddr
	}
	if c.InitialClusterState == "" {
		c.InitialClusterState = ClusterStateNew
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDur(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	setDur(&c.ElectionTimeout, DefaultElectionTimeout)
	setDur(&c.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout)
	setDur(&c.LeaderWait, DefaultLeaderWait)
	setDur(&c.ApplyTimeout, DefaultApplyTimeout)
	setDur(&c.SnapshotInterval, DefaultSnapshotInterval)
	setDur(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	setDur(&c.MinStdDeviation, DefaultMinStdDeviation)
	setDur(&c.AcceptableHeartbeatPause, DefaultAcceptableHeartbeatPause)
	setDur(&c.FirstHeartbeatEstimate, DefaultFirstHeartbeatEstimate)
	setDur(&c.FailoverTick, DefaultFailoverTick)
	setDur(&c.RegionLease, 3*c.HeartbeatInterval+time.Second)
	setDur(&c.CertPollInterval, DefaultCertPollInterval)
	setDur(&c.RequestTimeout, DefaultRequestTimeout)
	if c.MaxDatanodes == 0 {
		c.MaxDatanodes = leader.DefaultMaxDatanodes
	}
	if c.DatanodeRegisterRate == 0 {
		c.DatanodeRegisterRate = leader.DefaultRegisterRate
	}
	if c.DatanodeRegisterBurst == 0 {
		c.DatanodeRegisterBurst = leader.DefaultRegisterBurst
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = DefaultFailureThreshold
	}
	if c.BalancerMaxMoves == 0 {
		c.BalancerMaxMoves = DefaultBalancerMaxMoves
	}
	if c.BalancerMaxMovesPerNode == 0 {
		c.BalancerMaxMovesPerNode = DefaultBalancerMaxMovesPerNode
	}
	if c.FailoverMaxRegions == 0 {
		c.FailoverMaxRegions = DefaultFailoverMaxRegions
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.SnapshotRetain == 0 {
		c.SnapshotRetain = DefaultSnapshotRetain // the flag rejects 0 before this
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the configuration and says what is wrong in one line.
func (c *Config) Validate() error {
	c.setDefaults()
	if c.NodeID == "" {
		return fmt.Errorf("--node-id is required")
	}
	if c.DataDir == "" {
		return fmt.Errorf("--data-dir is required")
	}
	for _, a := range []struct{ flag, listen, adv string }{
		{"rpc", c.RPCAddr, c.AdvertiseRPCAddr},
		{"raft", c.RaftAddr, c.AdvertiseRaftAddr},
	} {
		host, _, err := net.SplitHostPort(a.listen)
		if err != nil {
			return fmt.Errorf("--%s-addr %q: want HOST:PORT: %v", a.flag, a.listen, err)
		}
		if err := wire.CheckHostPort(a.adv); err != nil {
			return fmt.Errorf("--advertise-%s-addr %q: %v", a.flag, a.adv, err)
		}
		advHost, _, _ := net.SplitHostPort(a.adv)
		if unspecified(host) && unspecified(advHost) {
			return fmt.Errorf("--%s-addr %q listens on every interface: set --advertise-%s-addr to an address other nodes can dial", a.flag, a.listen, a.flag)
		}
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			return fmt.Errorf("--http-addr %q: want HOST:PORT: %v", c.HTTPAddr, err)
		}
	} else if c.HTTPGreptimeCompat {
		return fmt.Errorf("--http-greptime-compat needs --http-addr")
	}
	if err := c.checkPlaintext(); err != nil {
		return err
	}
	if c.ClientCertAuth && c.ServerTLS == nil {
		return fmt.Errorf("--client-cert-auth needs HTTPS: set --cert-file, --key-file and --trusted-ca-file")
	}
	switch c.InitialClusterState {
	case ClusterStateNew, ClusterStateExisting:
	default:
		return fmt.Errorf("--initial-cluster-state %q: want new or existing", c.InitialClusterState)
	}
	seen := map[string]bool{}
	selfListed := false
	for _, p := range c.Peers {
		if p.ID == "" || seen[p.ID] {
			return fmt.Errorf("--peers: empty or duplicate id %q", p.ID)
		}
		seen[p.ID] = true
		if err := wire.CheckHostPort(p.RaftAddr); err != nil {
			return fmt.Errorf("--peers %s=%q: %v", p.ID, p.RaftAddr, err)
		}
		if p.ID == c.NodeID {
			selfListed = true
		}
	}
	if len(c.Peers) > 0 && !selfListed && len(c.Join) == 0 {
		return fmt.Errorf("--peers does not list this node (--node-id %s)", c.NodeID)
	}
	for _, j := range c.Join {
		if err := wire.CheckHostPort(j); err != nil {
			return fmt.Errorf("--join %q: %v", j, err)
		}
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		return fmt.Errorf("--raft-leader-lease-timeout (%s) must not exceed --raft-heartbeat-timeout (%s)", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	for name, d := range map[string]time.Duration{
		"--raft-heartbeat-timeout": c.HeartbeatTimeout, "--raft-election-timeout": c.ElectionTimeout,
		"--raft-leader-lease-timeout": c.LeaderLeaseTimeout, "--leader-wait": c.LeaderWait,
		"--snapshot-interval": c.SnapshotInterval,
	} {
		if d < 5*time.Millisecond {
			return fmt.Errorf("%s %s: must be at least 5ms", name, d)
		}
	}
	for name, d := range map[string]time.Duration{
		"--heartbeat-interval": c.HeartbeatInterval, "--min-std-deviation": c.MinStdDeviation,
		"--first-heartbeat-estimate": c.FirstHeartbeatEstimate, "--failover-tick": c.FailoverTick,
		"--region-lease": c.RegionLease,
	} {
		if d < time.Millisecond {
			return fmt.Errorf("%s %s: must be positive", name, d)
		}
	}
	if c.AcceptableHeartbeatPause < 0 {
		return fmt.Errorf("--acceptable-heartbeat-pause %s: must not be negative", c.AcceptableHeartbeatPause)
	}
	if c.RegionLease <= c.HeartbeatInterval {
		return fmt.Errorf("--region-lease (%s) must exceed --heartbeat-interval (%s), or every lease lapses between heartbeats", c.RegionLease, c.HeartbeatInterval)
	}
	if c.FailureThreshold <= 0 || c.FailoverMaxRegions < 1 {
		return fmt.Errorf("--failure-threshold and --failover-max-regions must be positive")
	}
	if c.BalancerInterval < 0 || c.BalancerCooldown < 0 || c.BalancerTolerance < 0 || c.BalancerMaxMoves < 1 || c.BalancerMaxMovesPerNode < 1 {
		return fmt.Errorf("--balancer-interval, --balancer-cooldown and --balancer-tolerance must not be negative; --balancer-max-moves and --balancer-max-moves-per-datanode must be positive")
	}
	if c.SnapshotRetain < 1 {
		return fmt.Errorf("--snapshot-retain %d: must be at least 1", c.SnapshotRetain)
	}
	return nil
}

// checkPlaintext is the rule that plaintext is for loopback only: a
// listener off loopback without TLS needs --insecure.
func (c *Config) checkPlaintext() error {
	if c.Insecure {
		return nil
	}
	var need []string
	// Off loopback, writes and heartbeats must be authenticated.
	authed := c.ClientCertAuth || (c.AdminTokenFile != "" && c.DatanodeTokenFile != "")
	if !authed && !certs.LoopbackAddr(c.RPCAddr) {
		need = append(need, fmt.Sprintf("--client-cert-auth, or --admin-token-file and --datanode-token-file (--rpc-addr %s is not loopback: writes and heartbeats must be authenticated)", c.RPCAddr))
	}
	if c.ServerTLS == nil && !certs.LoopbackAddr(c.RPCAddr) {
		need = append(need, fmt.Sprintf("--cert-file and --key-file (--rpc-addr %s is not loopback)", c.RPCAddr))
	}
	if c.HTTPAddr != "" && c.ServerTLS == nil && !c.HTTPGreptimeCompat && !certs.LoopbackAddr(c.HTTPAddr) {
		need = append(need, fmt.Sprintf("--cert-file and --key-file, or --http-greptime-compat (--http-addr %s is not loopback)", c.HTTPAddr))
	}
	if c.PeerTLS == nil && !certs.LoopbackAddr(c.RaftAddr) {
		need = append(need, fmt.Sprintf("--peer-cert-file, --peer-key-file and --peer-trusted-ca-file (--raft-addr %s is not loopback)", c.RaftAddr))
	}
	if len(need) > 0 {
		return fmt.Errorf("refusing to serve off loopback without TLS and authentication: set %s, or --insecure", strings.Join(need, "; "))
	}
	return nil
}

func unspecified(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// ParsePeers parses "id=host:port,id=host:port".
func ParsePeers(s string) ([]Peer, error) {
	var out []Peer
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("--peers entry %q: want ID=HOST:PORT", part)
		}
		out = append(out, Peer{ID: id, RaftAddr: addr})
	}
	return out, nil
}
