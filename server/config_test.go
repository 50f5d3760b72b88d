package server

import (
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/server/certs"
)

func TestParsePeers(t *testing.T) {
	cases := []struct {
		in      string
		want    []Peer
		wantErr bool
	}{
		{"", nil, false},
		{"n1=h:1", []Peer{{"n1", "h:1"}}, false},
		{" n1=h:1 , n2=h:2,", []Peer{{"n1", "h:1"}, {"n2", "h:2"}}, false},
		{"n1", nil, true},
		{"=h:1", nil, true},
		{"n1=", nil, true},
	}
	for _, tc := range cases {
		got, err := ParsePeers(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParsePeers(%q) error = %v, want error %t", tc.in, err, tc.wantErr)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("ParsePeers(%q) = %v, want %v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("ParsePeers(%q)[%d] = %v, want %v", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		return Config{NodeID: "n1", DataDir: "/tmp/x", Peers: []Peer{{"n1", DefaultRaftAddr}, {"n2", "10.0.0.2:3003"}}}
	}
	cases := []struct {
		name    string
		mutate  func(c *Config)
		wantErr string // substring; "" means valid
	}{
		{"defaults are valid", func(*Config) {}, ""},
		{"node id required", func(c *Config) { c.NodeID = "" }, "--node-id"},
		{"bad rpc addr", func(c *Config) { c.RPCAddr = "nohost" }, "--rpc-addr"},
		{"0.0.0.0 needs advertise", func(c *Config) { c.RPCAddr = "0.0.0.0:3002" }, "--advertise-rpc-addr"},
		{"0.0.0.0 with advertise", func(c *Config) { c.RPCAddr, c.AdvertiseRPCAddr, c.Insecure = "0.0.0.0:3002", "meta1:3002", true }, ""},
		{"off loopback without authentication", func(c *Config) {
			c.RPCAddr, c.AdvertiseRPCAddr, c.ServerTLS = "0.0.0.0:3002", "meta1:3002", &certs.Source{}
		}, "--client-cert-auth, or --admin-token-file and --datanode-token-file"},
		{"off loopback with admin tokens only", func(c *Config) {
			c.RPCAddr, c.AdvertiseRPCAddr, c.ServerTLS, c.AdminTokenFile = "0.0.0.0:3002", "meta1:3002", &certs.Source{}, "/x"
		}, "--datanode-token-file"},
		{"off loopback with both token files", func(c *Config) {
			c.RPCAddr, c.AdvertiseRPCAddr, c.ServerTLS, c.AdminTokenFile, c.DatanodeTokenFile = "0.0.0.0:3002", "meta1:3002", &certs.Source{}, "/x", "/y"
		}, ""},
		{"off loopback with client certificates", func(c *Config) {
			c.RPCAddr, c.AdvertiseRPCAddr, c.ServerTLS, c.ClientCertAuth = "0.0.0.0:3002", "meta1:3002", &certs.Source{}, true
		}, ""},
		{"plaintext API off loopback", func(c *Config) { c.RPCAddr, c.AdvertiseRPCAddr = "0.0.0.0:3002", "meta1:3002" }, "--cert-file and --key-file"},
		{"plaintext raft off loopback", func(c *Config) { c.RaftAddr, c.AdvertiseRaftAddr = "10.0.0.1:3003", "10.0.0.1:3003" }, "--peer-cert-file, --peer-key-file and --peer-trusted-ca-file"},
		{"empty host is not loopback", func(c *Config) { c.RaftAddr, c.AdvertiseRaftAddr = ":3003", "meta1:3003" }, "--peer-cert-file"},
		{"[::] is not loopback", func(c *Config) { c.RPCAddr, c.AdvertiseRPCAddr = "[::]:3002", "meta1:3002" }, "--cert-file"},
		{"::1 is loopback", func(c *Config) { c.RPCAddr = "[::1]:3002" }, ""},
		{"127.0.0.2 is loopback", func(c *Config) { c.RaftAddr = "127.0.0.2:3003" }, ""},
		{"localhost is loopback", func(c *Config) { c.RaftAddr = "localhost:3003" }, ""},
		{"client cert auth needs https", func(c *Config) { c.ClientCertAuth = true }, "--client-cert-auth needs HTTPS"},
		{"plaintext HTTP port off loopback", func(c *Config) { c.HTTPAddr = "0.0.0.0:4000" }, "--http-greptime-compat (--http-addr"},
		{"compat HTTP port off loopback", func(c *Config) { c.HTTPAddr, c.HTTPGreptimeCompat = "0.0.0.0:4000", true }, ""},
		{"HTTP port on loopback", func(c *Config) { c.HTTPAddr = "127.0.0.1:4000" }, ""},
		{"bad HTTP port", func(c *Config) { c.HTTPAddr = "4000" }, "--http-addr"},
		{"compat without HTTP port", func(c *Config) { c.HTTPGreptimeCompat = true }, "--http-greptime-compat needs --http-addr"},
		{"bad cluster state", func(c *Config) { c.InitialClusterState = "maybe" }, "--initial-cluster-state"},
		{"duplicate peer", func(c *Config) { c.Peers = append(c.Peers, Peer{"n2", "h:1"}) }, "duplicate"},
		{"self not in peers", func(c *Config) { c.Peers = []Peer{{"n2", "h:1"}} }, "does not list this node"},
		{"lease over heartbeat", func(c *Config) { c.LeaderLeaseTimeout = time.Second }, "--raft-leader-lease-timeout"},
		{"region lease not above heartbeat", func(c *Config) { c.HeartbeatInterval, c.RegionLease = time.Second, time.Second }, "--region-lease"},
		{"negative balancer interval", func(c *Config) { c.BalancerInterval = -time.Second }, "--balancer-interval"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(&c)
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want valid", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate() = %v, want an error naming %q", err, tc.wantErr)
			}
		})
	}
}

// The lease margin must cover a deposed leader that keeps granting leases
// until its own lease check fires.
func TestLeaseMargin(t *testing.T) {
	cases := []struct {
		hb, lease, heartbeat time.Duration
		want                 time.Duration
	}{
		{3 * time.Second, 300 * time.Millisecond, 300 * time.Millisecond, 1500 * time.Millisecond},
		{500 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond, 550 * time.Millisecond},
		{500 * time.Millisecond, 500 * time.Millisecond, 1000 * time.Millisecond, 250 * time.Millisecond},
	}
	for _, tc := range cases {
		c := Config{HeartbeatInterval: tc.hb, LeaderLeaseTimeout: tc.lease, HeartbeatTimeout: tc.heartbeat}
		if got := leaseMargin(c); got != tc.want {
			t.Errorf("leaseMargin(hb %s, lease %s, raft hb %s) = %s, want %s", tc.hb, tc.lease, tc.heartbeat, got, tc.want)
		}
	}
}
