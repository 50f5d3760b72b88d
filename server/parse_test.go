package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/fsm"
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
		{"0.0.0.0 with advertise", func(c *Config) { c.RPCAddr, c.AdvertiseRPCAddr = "0.0.0.0:3002", "meta1:3002" }, ""},
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

func TestParseMaintenanceSet(t *testing.T) {
	n := &Node{}
	cases := []struct {
		query   string
		fixed   *bool
		wantErr bool
		check   func(c fsm.SetMaintenance) bool
	}{
		{"enable=true", nil, false, func(c fsm.SetMaintenance) bool { return c.Enabled }},
		{"enable=false", nil, false, func(c fsm.SetMaintenance) bool { return !c.Enabled }},
		{"enable=foo", nil, true, nil},
		{"enable=", nil, true, nil},
		{"enable=1", nil, true, nil},
		{"enable=TRUE", nil, true, nil},
		{"", nil, true, nil},
		{"", ptr(true), false, func(c fsm.SetMaintenance) bool { return c.Enabled }},
		{"enable=true&ttl=2h&reason=upgrade&by=ops", nil, false, func(c fsm.SetMaintenance) bool {
			return c.TTL == 2*time.Hour && c.Reason == "upgrade" && c.By == "ops"
		}},
		{"enable=true&ttl=banana", nil, true, nil},
		{"enable=true&ttl=-1s", nil, true, nil},
		{"enable=true&ttl=0s", nil, true, nil},
		{"enable=false&ttl=1h", nil, true, nil},
		{"enable=true&if_epoch=7", nil, false, func(c fsm.SetMaintenance) bool { return c.IfEpoch != nil && *c.IfEpoch == 7 }},
		{"enable=true&if_epoch=-1", nil, true, nil},
		{"enable=true&by=", nil, true, nil},
		{"enable=true&unknown=1", nil, false, func(c fsm.SetMaintenance) bool { return c.Enabled }},
		{"enable=true", nil, false, func(c fsm.SetMaintenance) bool { return c.By == "192.0.2.1" }},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodPost, "/admin/maintenance?"+tc.query, nil)
		in, err := n.parseMaintenanceSet(tc.fixed)(r, nil)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: error = %v, want error %t", tc.query, err, tc.wantErr)
			continue
		}
		if err == nil && tc.check != nil && !tc.check(in.(fsm.SetMaintenance)) {
			t.Errorf("%q: parsed %+v", tc.query, in)
		}
	}
}

func TestStaleParamAndRetryableCode(t *testing.T) {
	for q, want := range map[string]bool{"": false, "stale": true, "stale=true": true, "stale=false": false} {
		got, err := staleParam(httptest.NewRequest(http.MethodGet, "/x?"+q, nil))
		if err != nil || got != want {
			t.Errorf("staleParam(%q) = %t, %v; want %t", q, got, err, want)
		}
	}
	if _, err := staleParam(httptest.NewRequest(http.MethodGet, "/x?stale=yes", nil)); err == nil {
		t.Errorf("staleParam(stale=yes) accepted")
	}
	for body, want := range map[string]bool{
		`{"code":"not_leader"}`: true, `{"code":"no_leader"}`: true,
		`{"code":"outcome_unknown"}`: false, `{"code":"timeout"}`: false, `not json`: false,
	} {
		if got := retryableCode([]byte(body)); got != want {
			t.Errorf("retryableCode(%s) = %t, want %t", body, got, want)
		}
	}
}

func TestClientAddrHonoursOnlyForwardedRequests(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.RemoteAddr = "10.0.0.5:5555"
	r.Header.Set(hdrClientAddr, "1.2.3.4")
	if got := clientAddr(r); got != "10.0.0.5" {
		t.Errorf("client addr header honoured on a direct request: %s", got)
	}
	r.Header.Set(hdrForwardedBy, "n2")
	if got := clientAddr(r); got != "1.2.3.4" {
		t.Errorf("forwarded request: client addr %s, want 1.2.3.4", got)
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
