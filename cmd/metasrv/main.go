// Command metasrv runs one node of the metasrv control plane.
//
// Every flag can also be set from the environment: --rpc-addr is
// METASRV_RPC_ADDR, and so on. Flags on the command line win.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/metasrv/metasrv/cmd/internal/cli"
	"github.com/metasrv/metasrv/server"
	"github.com/metasrv/metasrv/server/certs"
	"github.com/metasrv/metasrv/server/leader"
)

// version, commit and branch are set at build time with
// -ldflags "-X main.version=... -X main.commit=... -X main.branch=...".
var (
	version = "dev"
	commit  = ""
	branch  = ""
)

func main() {
	// The raft log, snapshots and member file are the cluster's state, and
	// key files are secrets: nothing this process creates is for others.
	syscall.Umask(0o077)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "health" || args[0] == "ready") {
		return probe(args[0], args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "step-down" {
		return stepDown(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "tls" {
		return tlsCommand(args[1:], stdout, stderr)
	}
	cfg, opts, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "metasrv: %v\n", err)
		return 2
	}
	if opts.version {
		fmt.Fprintf(stdout, "metasrv %s\n", version)
		return 0
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "metasrv", Level: hclog.LevelFromString(opts.logLevel),
		JSONFormat: opts.logJSON, Output: stderr, TimeFormat: "2006-01-02T15:04:05.000Z07:00"})
	cfg.Logger = log
	cfg.Version, cfg.Commit, cfg.Branch = version, commit, branch

	checkFileLimit(log, cfg.MaxConnections)
	node, err := server.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "metasrv: %v\n", err)
		return 1
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			log.Info("SIGHUP: re-reading certificate and token files")
			_ = node.Reload()
		}
	}()
	served := make(chan error, 1)
	go func() { served <- node.Serve() }()
	select {
	case err := <-served:
		log.Error("HTTP server stopped", "error", err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = node.Close(ctx)
		return 1
	case s := <-sigs:
		log.Info("shutting down", "signal", s.String())
	}
	go func() {
		<-sigs
		log.Warn("second signal: exiting now")
		os.Exit(1)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.Close(ctx); err != nil {
		log.Error("unclean shutdown", "error", err)
		return 1
	}
	return 0
}

type options struct {
	version  bool
	logLevel string
	logJSON  bool
}

// tlsFlags are the certificate flags (etcd's names).
type tlsFlags struct {
	peerCert, peerKey, peerCA string
	cert, key, trustedCA      string
}

func parseFlags(args []string, out io.Writer) (server.Config, options, error) {
	var cfg server.Config
	var o options
	fs := flag.NewFlagSet("metasrv", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var peers, join string
	fs.StringVar(&cfg.NodeID, "node-id", "", "this node's unique id (required)")
	fs.StringVar(&cfg.RPCAddr, "rpc-addr", server.DefaultRPCAddr, "HTTP API listen address (the admin API, GreptimeDB's RPC port)")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", server.DefaultRaftAddr, "raft TCP listen address")
	fs.StringVar(&cfg.AdvertiseRPCAddr, "advertise-rpc-addr", "", "HTTP address other nodes and clients dial (default --rpc-addr; required when listening on 0.0.0.0; host names allowed)")
	fs.StringVar(&cfg.AdvertiseRaftAddr, "advertise-raft-addr", "", "raft address other nodes dial (default --raft-addr; required when listening on 0.0.0.0; host names resolved at each dial)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "", "GreptimeDB-style HTTP port (GreptimeDB's :4000): only GreptimeDB v0.17+'s maintenance, procedure-manager and health routes, with their semantics; off when empty")
	fs.BoolVar(&cfg.HTTPGreptimeCompat, "http-greptime-compat", false, "serve --http-addr in plain HTTP with no credentials, for GreptimeDB's operator (writes record greptime-compat); restrict who reaches it in the network (a NetworkPolicy)")
	fs.StringVar(&cfg.DataDir, "data-dir", "./data", "directory for the raft log, snapshots and member directory")
	fs.StringVar(&peers, "peers", "", "initial cluster, the same on every initial member: ID=RAFTADDR,ID=RAFTADDR,...")
	fs.StringVar(&cfg.InitialClusterState, "initial-cluster-state", server.ClusterStateNew, "new: bootstrap from --peers if the data dir is empty; existing: never bootstrap (wait to be added)")
	fs.DurationVar(&cfg.BootstrapWait, "bootstrap-wait", 0, "with --initial-cluster-state new and an empty data dir, first wait this long for an existing leader (a node that lost its disk then rejoins instead of bootstrapping); 0 bootstraps at once")
	fs.StringVar(&join, "join", "", "join a running cluster through any member: RPCADDR[,RPCADDR...] (wins over --peers)")
	fs.DurationVar(&cfg.HeartbeatTimeout, "raft-heartbeat-timeout", server.DefaultHeartbeatTimeout, "follower starts an election after this long without a leader")
	fs.DurationVar(&cfg.ElectionTimeout, "raft-election-timeout", server.DefaultElectionTimeout, "candidate election timeout")
	fs.DurationVar(&cfg.LeaderLeaseTimeout, "raft-leader-lease-timeout", server.DefaultLeaderLeaseTimeout, "leader steps down after this long without a quorum (<= heartbeat timeout)")
	fs.DurationVar(&cfg.LeaderWait, "leader-wait", server.DefaultLeaderWait, "how long a request waits for a leader before answering 503")
	fs.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", server.DefaultSnapshotThreshold, "raft entries between snapshots")
	fs.DurationVar(&cfg.SnapshotInterval, "snapshot-interval", server.DefaultSnapshotInterval, "how often to check whether a snapshot is due")
	fs.IntVar(&cfg.SnapshotRetain, "snapshot-retain", server.DefaultSnapshotRetain, "snapshots kept on disk")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", server.DefaultHeartbeatInterval, "datanode heartbeat interval the leader asks for")
	fs.Float64Var(&cfg.FailureThreshold, "failure-threshold", server.DefaultFailureThreshold, "phi above which a datanode counts as failed")
	fs.DurationVar(&cfg.MinStdDeviation, "min-std-deviation", server.DefaultMinStdDeviation, "floor on the heartbeat interval std-dev in the phi detector")
	fs.DurationVar(&cfg.AcceptableHeartbeatPause, "acceptable-heartbeat-pause", server.DefaultAcceptableHeartbeatPause, "heartbeat pause tolerated before phi rises")
	fs.DurationVar(&cfg.FirstHeartbeatEstimate, "first-heartbeat-estimate", server.DefaultFirstHeartbeatEstimate, "interval assumed before real heartbeats arrive")
	fs.DurationVar(&cfg.FailoverTick, "failover-tick", server.DefaultFailoverTick, "how often the leader checks for failed datanodes")
	fs.IntVar(&cfg.FailoverMaxRegions, "failover-max-regions", server.DefaultFailoverMaxRegions, "regions moved per failover tick at most")
	fs.DurationVar(&cfg.RegionLease, "region-lease", 0, "how long a heartbeat answer lets a datanode serve its regions (default 3 x --heartbeat-interval + 1s)")
	fs.DurationVar(&cfg.BalancerInterval, "balancer-interval", server.DefaultBalancerInterval, "how often the leader balances regions across datanodes (0 disables)")
	fs.IntVar(&cfg.BalancerTolerance, "balancer-tolerance", server.DefaultBalancerTolerance, "a spread (max - min regions per datanode) up to this counts as balanced")
	fs.IntVar(&cfg.BalancerMaxMoves, "balancer-max-moves", server.DefaultBalancerMaxMoves, "region moves per balancing (and drain) round at most")
	fs.IntVar(&cfg.BalancerMaxMovesPerNode, "balancer-max-moves-per-datanode", server.DefaultBalancerMaxMovesPerNode, "moves out of, and into, one datanode per balancing round at most")
	fs.DurationVar(&cfg.BalancerCooldown, "balancer-cooldown", server.DefaultBalancerCooldown, "no balancing move of a region within this of its last move (a region that never moved, e.g. of a new table, may move at once)")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "when set, every /admin write needs 'Authorization: Bearer TOKEN'")
	fs.StringVar(&cfg.AdminTokenFile, "admin-token-file", "", "operators' tokens, one NAME:SECRET per line (# comments; a NAME may appear twice while its secret rotates): any of them may write and read; re-read on SIGHUP")
	fs.StringVar(&cfg.ReadTokenFile, "read-token-file", "", "read-only tokens (NAME:SECRET lines); when set, every GET but the open routes (and /metrics with --metrics-public) needs a read or admin credential")
	fs.StringVar(&cfg.DatanodeTokenFile, "datanode-token-file", "", "datanodes' tokens (NAME:SECRET lines): NAME datanode-<id> may heartbeat only as that id; any other NAME is a fleet token that may register datanodes but never change a known one's address")
	fs.BoolVar(&cfg.MetricsPublic, "metrics-public", false, "leave /metrics open when reads need a credential")
	fs.DurationVar(&cfg.MaintenanceWarnAfter, "maintenance-warn-after", time.Hour, "maintenance on this long without a TTL turns the health report (and metasrv_health_indicator) yellow; 0: never")
	fs.BoolVar(&cfg.DatanodeApproval, "datanode-approval", false, "register new datanodes cordoned: they take no region until an operator uncordons them (POST /admin/datanodes/ID/uncordon)")
	fs.IntVar(&cfg.MaxDatanodes, "max-datanodes", leader.DefaultMaxDatanodes, "registered datanodes at most; a new one beyond it is refused (409 datanode_limit)")
	fs.Float64Var(&cfg.DatanodeRegisterRate, "datanode-register-rate", leader.DefaultRegisterRate, "datanode registrations per second at most (429 rate_limited beyond, with Retry-After)")
	fs.IntVar(&cfg.DatanodeRegisterBurst, "datanode-register-burst", leader.DefaultRegisterBurst, "registrations allowed at once above --datanode-register-rate")
	var tf tlsFlags
	fs.StringVar(&tf.peerCert, "peer-cert-file", "", "this member's certificate (role metasrv-node, CN = --node-id) for mutual TLS on the raft port, and for calls to other members' APIs")
	fs.StringVar(&tf.peerKey, "peer-key-file", "", "key of --peer-cert-file")
	fs.StringVar(&tf.peerCA, "peer-trusted-ca-file", "", "CA (bundle) that signs the members' certificates; one per cluster")
	fs.BoolVar(&cfg.PeerAcceptPlaintext, "peer-accept-plaintext", false, "with the --peer-* files, also accept plaintext raft connections and fall back to plaintext towards members without TLS (only while turning TLS on in a running cluster)")
	fs.StringVar(&tf.cert, "cert-file", "", "certificate of the HTTPS API; when set the API is HTTPS only")
	fs.StringVar(&tf.key, "key-file", "", "key of --cert-file")
	fs.StringVar(&tf.trustedCA, "trusted-ca-file", "", "CA (bundle) that signs client certificates (operators, tools, datanodes)")
	fs.BoolVar(&cfg.ClientCertAuth, "client-cert-auth", false, "every route but /admin/health, /admin/ready, /health, /ready, /v1/health and /status needs a client certificate from --trusted-ca-file or the peer CA")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "allow plaintext HTTP and raft on addresses other than loopback")
	fs.IntVar(&cfg.MaxConnections, "max-connections", server.DefaultMaxConnections, "open API connections at most (both ports); each datanode holds one")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", server.DefaultRequestTimeout, "bound on one API request (raised to cover --leader-wait plus the apply timeout)")
	fs.DurationVar(&cfg.CertPollInterval, "cert-poll-interval", server.DefaultCertPollInterval, "how often certificate files are checked for new content (they are also re-read on SIGHUP)")
	fs.StringVar(&o.logLevel, "log-level", "info", "trace, debug, info, warn or error")
	fs.BoolVar(&o.logJSON, "log-json", false, "log as JSON lines")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.Usage = func() {} // errors are reported in one line; --help prints usage below

	if err := cli.ApplyEnv(fs, "METASRV_", "version"); err != nil {
		return cfg, o, err
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(out, fs)
			return cfg, o, err
		}
		return cfg, o, fmt.Errorf("%v (see metasrv --help)", err)
	}
	if fs.NArg() > 0 {
		return cfg, o, fmt.Errorf("unexpected argument %q (flags look like --name value)", fs.Arg(0))
	}
	if o.version {
		return cfg, o, nil
	}
	if cfg.SnapshotRetain < 1 {
		return cfg, o, fmt.Errorf("--snapshot-retain %d: must be at least 1", cfg.SnapshotRetain)
	}
	switch strings.ToLower(o.logLevel) {
	case "trace", "debug", "info", "warn", "error":
	default:
		return cfg, o, fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", o.logLevel)
	}
	var err error
	if cfg.PeerTLS, cfg.ServerTLS, err = loadTLS(tf); err != nil {
		return cfg, o, err
	}
	if cfg.PeerTLS != nil && certs.IdentityOf(cfg.PeerTLS.Leaf()).Name != cfg.NodeID {
		return cfg, o, fmt.Errorf("--peer-cert-file is for %q, not --node-id %q: other members would refuse it", certs.IdentityOf(cfg.PeerTLS.Leaf()).Name, cfg.NodeID)
	}
	if cfg.PeerAcceptPlaintext && cfg.PeerTLS == nil {
		return cfg, o, fmt.Errorf("--peer-accept-plaintext needs --peer-cert-file, --peer-key-file and --peer-trusted-ca-file")
	}
	if cfg.Peers, err = server.ParsePeers(peers); err != nil {
		return cfg, o, err
	}
	for _, j := range strings.Split(join, ",") {
		if j = strings.TrimSpace(j); j != "" {
			cfg.Join = append(cfg.Join, j)
		}
	}
	return cfg, o, cfg.Validate()
}

// checkFileLimit warns when the open-file limit cannot hold
// --max-connections (Go raises the soft limit to the hard one at start).
func checkFileLimit(log hclog.Logger, maxConns int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if need := uint64(maxConns) + 256; lim.Cur < need {
		log.Warn("the open-file limit is below --max-connections; raise it (ulimit -n, LimitNOFILE=) or lower the flag",
			"limit", lim.Cur, "hard_limit", lim.Max, "max_connections", maxConns)
	}
}

// loadTLS reads the certificate files the flags name. The API trusts
// clients from --trusted-ca-file and members from the peer CA.
func loadTLS(tf tlsFlags) (peer, api *certs.Source, err error) {
	if tf.peerCert != "" || tf.peerKey != "" || tf.peerCA != "" {
		if tf.peerCert == "" || tf.peerKey == "" || tf.peerCA == "" {
			return nil, nil, fmt.Errorf("mutual TLS on the raft port needs all of --peer-cert-file, --peer-key-file and --peer-trusted-ca-file")
		}
		if peer, err = certs.Load(certs.Files{Cert: tf.peerCert, Key: tf.peerKey, CA: []string{tf.peerCA}}); err != nil {
			return nil, nil, fmt.Errorf("--peer-cert-file: %w", err)
		}
		if id := certs.IdentityOf(peer.Leaf()); id.Role != certs.RoleNode {
			return nil, nil, fmt.Errorf("--peer-cert-file %s has role %q; a member's certificate needs Organization %s", tf.peerCert, id.Role, certs.RoleNode)
		}
	}
	if tf.cert == "" && tf.key == "" {
		if tf.trustedCA != "" {
			return nil, nil, fmt.Errorf("--trusted-ca-file needs --cert-file and --key-file (HTTPS)")
		}
		return peer, nil, nil
	}
	if tf.cert == "" || tf.key == "" {
		return nil, nil, fmt.Errorf("HTTPS needs both --cert-file and --key-file")
	}
	var cas []string
	for _, f := range []string{tf.trustedCA, tf.peerCA} {
		if f != "" {
			cas = append(cas, f)
		}
	}
	if api, err = certs.Load(certs.Files{Cert: tf.cert, Key: tf.key, CA: cas}); err != nil {
		return nil, nil, fmt.Errorf("--cert-file: %w", err)
	}
	return peer, api, nil
}

func usage(out io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(out, `metasrv: a highly available control plane node (raft-replicated maintenance flag).

Usage:
  metasrv --node-id ID [flags]       run a node
  metasrv health [--addr HOST:PORT]  exit 0 if the node answers /admin/health (container health check)
  metasrv ready  [--addr HOST:PORT]  exit 0 if the node answers /admin/ready with 200
  metasrv step-down [--addr HOST:PORT]  if that node is the leader, hand leadership over (preStop hook)
  metasrv tls ca [--dir DIR]         make a CA: DIR/ca.crt, DIR/ca.key (metasrv tls --help for all)
  metasrv tls node --node-id ID --host NAME,IP,...  issue a member's certificate: DIR/ID.crt, DIR/ID.key
  metasrv tls datanode --id N [--host NAME,IP,...]  issue a datanode's certificate: DIR/datanode-N.crt, .key
  metasrv tls client --name NAME     issue an operator's client certificate: DIR/NAME.crt, DIR/NAME.key

Flags (each also from the environment, e.g. --rpc-addr as METASRV_RPC_ADDR):
`)
	fs.VisitAll(func(f *flag.Flag) {
		env := " [" + cli.EnvName("METASRV_", f.Name) + "]"
		if f.Name == "version" {
			env = ""
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0s" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(out, "  --%s\n        %s%s%s\n", f.Name, f.Usage, def, env)
	})
}

// probe implements the health and ready subcommands, for health checks in
// images that have no shell or curl.
func probe(what string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("metasrv "+what, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", cli.EnvOr("METASRV_RPC_ADDR", server.DefaultRPCAddr), "node's HTTP address")
	timeout := fs.Duration("timeout", 3*time.Second, "request timeout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	host := cli.LocalAddr(*addr)
	scheme, c, err := localClient(*timeout)
	if err != nil {
		fmt.Fprintf(stderr, "metasrv %s: %v\n", what, err)
		return 2
	}
	resp, err := c.Get(scheme + host + "/admin/" + what)
	if err != nil {
		fmt.Fprintf(stderr, "metasrv %s: %v\n", what, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	fmt.Fprintf(stdout, "%s\n", strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

// localClient is the client of the health, ready and step-down
// subcommands. They run beside the node (container health check, preStop
// hook) and read its own settings: with METASRV_CERT_FILE the API is
// HTTPS, verified against the node's CAs, and the node's member
// certificate is presented (so --client-cert-auth lets step-down through).
func localClient(timeout time.Duration) (scheme string, c *http.Client, err error) {
	if os.Getenv("METASRV_CERT_FILE") == "" {
		return "http://", &http.Client{Timeout: timeout}, nil
	}
	var files certs.Files
	for _, v := range []string{"METASRV_TRUSTED_CA_FILE", "METASRV_PEER_TRUSTED_CA_FILE"} {
		if f := os.Getenv(v); f != "" {
			files.CA = append(files.CA, f)
		}
	}
	if len(files.CA) == 0 {
		return "", nil, fmt.Errorf("METASRV_CERT_FILE is set but neither METASRV_TRUSTED_CA_FILE nor METASRV_PEER_TRUSTED_CA_FILE names a CA to verify the node with")
	}
	files.Cert, files.Key = os.Getenv("METASRV_PEER_CERT_FILE"), os.Getenv("METASRV_PEER_KEY_FILE")
	src, err := certs.Load(files)
	if err != nil {
		return "", nil, err
	}
	return "https://", &http.Client{Timeout: timeout, Transport: src.Transport(timeout)}, nil
}

// stepDown transfers leadership away from the node at --addr if, and only
// if, it is the leader now (a follower would forward the request and move
// someone else's leadership).
func stepDown(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("metasrv step-down", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", cli.EnvOr("METASRV_RPC_ADDR", server.DefaultRPCAddr), "node's HTTP address")
	token := fs.String("admin-token", os.Getenv("METASRV_ADMIN_TOKEN"), "admin token, if the cluster uses one")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	host := cli.LocalAddr(*addr)
	scheme, c, err := localClient(10 * time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "metasrv step-down: %v\n", err)
		return 2
	}
	resp, err := c.Get(scheme + host + "/admin/raft")
	if err != nil {
		fmt.Fprintf(stderr, "metasrv step-down: %v\n", err)
		return 1
	}
	var st struct {
		State string `json:"state"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.State != "leader" {
		fmt.Fprintf(stdout, "not the leader (%s); nothing to do\n", st.State)
		return 0
	}
	req, _ := http.NewRequest(http.MethodPost, scheme+host+"/admin/cluster/transfer-leadership", nil)
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err = c.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "metasrv step-down: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	fmt.Fprintf(stdout, "%s\n", strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}
