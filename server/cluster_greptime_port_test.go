package server

import (
	"net/http"
	"testing"

	"github.com/metasrv/metasrv/server/certs"
	"github.com/metasrv/metasrv/server/certs/certstest"
)

// onHTTPPort sends a request to tn's GreptimeDB-style port (--http-addr).
func (c *tcluster) onHTTPPort(tn *tnode, scheme, method, path, body string, hdr ...string) reply {
	c.t.Helper()
	rpc := &tnode{id: tn.id + "-http", node: tn.node, url: scheme + tn.node.HTTPAddr()}
	return c.do(rpc, method, path, body, hdr...)
}

func withHTTPPort(compat bool, token string) func(*Config) {
	return func(c *Config) {
		c.HTTPAddr, c.HTTPGreptimeCompat, c.AdminToken = "127.0.0.1:0", compat, token
	}
}

func (c *tcluster) wantMaintenance(enabled bool) {
	c.t.Helper()
	for _, tn := range c.nodes {
		if got := tn.node.FSM().Maintenance().Enabled; got != enabled {
			eventually(c.t, tn.id+" applies maintenance", func() error {
				if tn.node.FSM().Maintenance().Enabled != enabled {
					return errorf("enabled = %t", !enabled)
				}
				return nil
			})
		}
	}
}

// GreptimeDB's operator: POST /admin/maintenance/enable with a JSON
// content type and no body on the HTTP port; the legacy
// GET /admin/maintenance?enable=true on the RPC port. Both on every node.
func TestGreptimePortOperatorShapesOnEveryNode(t *testing.T) {
	c := startCluster(t, 3, withHTTPPort(false, ""))
	for _, tn := range c.nodes {
		r := c.onHTTPPort(tn, "http://", http.MethodPost, "/admin/maintenance/enable", "", "Content-Type", "application/json")
		if r.status != http.StatusOK || string(r.body) != `{"enabled":true}` {
			t.Fatalf("enable on %s's HTTP port: %s", tn.id, r)
		}
		c.wantMaintenance(true)
		// GET /admin/maintenance only reads here, whatever its query; a
		// follower must not forward it as the RPC port's legacy setter.
		r = c.onHTTPPort(tn, "http://", http.MethodGet, "/admin/maintenance?enable=false", "")
		if r.status != http.StatusOK || string(r.body) != `{"enabled":true}` {
			t.Fatalf("GET /admin/maintenance?enable=false on %s's HTTP port: %s, want a read", tn.id, r)
		}
		c.wantMaintenance(true)
		r = c.onHTTPPort(tn, "http://", http.MethodPost, "/admin/maintenance/disable", "", "Content-Type", "application/json")
		if r.status != http.StatusOK || string(r.body) != `{"enabled":false}` {
			t.Fatalf("disable on %s's HTTP port: %s", tn.id, r)
		}
		c.wantMaintenance(false)
		// The operator's older shape on the RPC port still sets.
		r = c.do(tn, http.MethodGet, "/admin/maintenance?enable=true", nil)
		if r.status != http.StatusOK || string(r.body) != `{"enabled":true}` {
			t.Fatalf("legacy GET setter on %s's RPC port: %s", tn.id, r)
		}
		c.wantMaintenance(true)
		c.mustJSON(tn, http.MethodPost, "/admin/maintenance?enable=false", nil, http.StatusOK, nil)
		c.wantMaintenance(false)
	}
	f := c.follower()
	for _, tc := range []struct {
		method, path string
		want         int
		body         string
	}{
		{http.MethodPost, "/admin/maintenance", http.StatusMethodNotAllowed, ""},
		{http.MethodPut, "/admin/maintenance", http.StatusMethodNotAllowed, ""},
		{http.MethodGet, "/admin/maintenance/enable", http.StatusMethodNotAllowed, ""},
		{http.MethodGet, "/admin/maintenance/status", http.StatusOK, `{"enabled":false}`},
		{http.MethodGet, "/admin/procedure-manager/status", http.StatusOK, `{"status":"running"}`},
		{http.MethodGet, "/admin/procedure-manager/pause", http.StatusMethodNotAllowed, ""},
		{http.MethodGet, "/health", http.StatusOK, `{}`},
		{http.MethodPost, "/v1/health", http.StatusOK, `{}`},
		{http.MethodGet, "/ready", http.StatusOK, `{}`},
		// Only GreptimeDB's routes: nothing of metasrv's own API.
		{http.MethodGet, "/admin/cluster", http.StatusNotFound, ""},
		{http.MethodGet, "/admin/leader", http.StatusNotFound, ""},
		{http.MethodPost, "/v1/heartbeat", http.StatusNotFound, ""},
		{http.MethodGet, "/metrics", http.StatusNotFound, ""},
	} {
		r := c.onHTTPPort(f, "http://", tc.method, tc.path, "")
		if r.status != tc.want || (tc.body != "" && string(r.body) != tc.body) {
			t.Errorf("%s %s on a follower's HTTP port: %s, want %d %s", tc.method, tc.path, r, tc.want, tc.body)
		}
	}
	if r := c.onHTTPPort(f, "http://", http.MethodPost, "/admin/procedure-manager/pause", ""); r.status != http.StatusOK || string(r.body) != `{"status":"paused"}` {
		t.Fatalf("pause through a follower's HTTP port: %s", r)
	}
	if r := c.onHTTPPort(f, "http://", http.MethodPost, "/admin/procedure-manager/resume", ""); r.status != http.StatusOK || string(r.body) != `{"status":"running"}` {
		t.Fatalf("resume through a follower's HTTP port: %s", r)
	}
}

// Without compat the port follows the node's credential rules; with it the
// port needs none, the node's own credentials carry its writes through the
// leader, and they record greptime-compat.
func TestGreptimePortCredentials(t *testing.T) {
	const token = "s3cret-token-for-the-test-0123456789"
	t.Run("token", func(t *testing.T) {
		c := startCluster(t, 3, withHTTPPort(false, token))
		f := c.follower()
		if r := c.onHTTPPort(f, "http://", http.MethodPost, "/admin/maintenance/enable", ""); r.status != http.StatusUnauthorized {
			t.Fatalf("enable without the token: %s, want 401", r)
		}
		if r := c.onHTTPPort(f, "http://", http.MethodPost, "/admin/maintenance/enable", "", "Authorization", "Bearer "+token); r.status != http.StatusOK {
			t.Fatalf("enable with the token: %s", r)
		}
		c.wantMaintenance(true)
	})
	t.Run("compat", func(t *testing.T) {
		c := startCluster(t, 3, withHTTPPort(true, token))
		f := c.follower()
		if r := c.do(f, http.MethodPost, "/admin/maintenance?enable=true", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("the RPC port still needs the token: %s", r)
		}
		if r := c.onHTTPPort(f, "http://", http.MethodPost, "/admin/maintenance/enable", "", "Content-Type", "application/json"); r.status != http.StatusOK {
			t.Fatalf("enable on a follower's compat port: %s", r)
		}
		c.wantMaintenance(true)
		if by := c.leader().node.FSM().Maintenance().By; by != "greptime-compat" {
			t.Fatalf("by = %q, want greptime-compat", by)
		}
	})
	t.Run("client certificates", func(t *testing.T) {
		pki := certstest.New(t, "cluster")
		alice := httpsClient(t, pki.Client("alice"))
		c := startClusterWith(t, 3, alice, func(cfg *Config) {
			tlsConfig(t, pki)(cfg)
			withHTTPPort(false, "")(cfg)
		})
		f := c.follower()
		if r := c.onHTTPPort(f, "https://", http.MethodGet, "/admin/maintenance", ""); r.status != http.StatusOK {
			t.Fatalf("HTTPS port with a client certificate: %s", r)
		}
		anon := &tcluster{t: t, client: httpsClient(t, certs.Files{CA: []string{pki.CAFile}})}
		if r := anon.onHTTPPort(f, "https://", http.MethodPost, "/admin/maintenance/enable", ""); r.status != http.StatusUnauthorized {
			t.Fatalf("HTTPS port without a client certificate: %s, want 401", r)
		}
		if r := anon.onHTTPPort(f, "https://", http.MethodGet, "/health", ""); r.status != http.StatusOK {
			t.Fatalf("open route without a certificate: %s", r)
		}
	})
	t.Run("compat with client certificates", func(t *testing.T) {
		pki := certstest.New(t, "cluster")
		c := startClusterWith(t, 3, httpsClient(t, pki.Client("alice")), func(cfg *Config) {
			tlsConfig(t, pki)(cfg)
			withHTTPPort(true, "")(cfg)
		})
		f := c.follower()
		plain := &tcluster{t: t}
		if r := plain.onHTTPPort(f, "http://", http.MethodPost, "/admin/maintenance/enable", "", "Content-Type", "application/json"); r.status != http.StatusOK {
			t.Fatalf("plain compat port forwarding to a --client-cert-auth leader: %s", r)
		}
		c.wantMaintenance(true)
	})
}
