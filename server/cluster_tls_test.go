package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metasrv/metasrv/server/certs"
	"github.com/metasrv/metasrv/server/certs/certstest"
)

// tlsConfig puts a test node's API under HTTPS with --client-cert-auth and
// its raft port under mutual TLS, with certificates from pki.
func tlsConfig(t *testing.T, pki *certstest.PKI) func(*Config) {
	return func(c *Config) {
		files := pki.Node(c.NodeID)
		c.PeerTLS = certstest.Source(t, files)
		c.ServerTLS = certstest.Source(t, files)
		c.ClientCertAuth = true
	}
}

// httpsClient presents files' certificate (none when Cert is empty) and
// trusts files' CA.
func httpsClient(t *testing.T, files certs.Files) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: certstest.Source(t, files).Transport(5 * time.Second)}
}

func TestTLSClientCertAuthSeedCurlsOnEveryNode(t *testing.T) {
	pki := certstest.New(t, "cluster")
	alice := httpsClient(t, pki.Client("alice"))
	c := startClusterWith(t, 3, alice, tlsConfig(t, pki))
	// The seed's three calls, each through every node (followers forward
	// over HTTPS with their member certificate).
	for _, tn := range c.nodes {
		for _, enable := range []bool{true, false} {
			var got struct {
				Enabled bool `json:"enabled"`
			}
			c.mustJSON(tn, http.MethodPost, fmt.Sprintf("/admin/maintenance?enable=%t", enable), nil, http.StatusOK, &got)
			if got.Enabled != enable {
				t.Fatalf("set %t through %s: %+v", enable, tn.id, got)
			}
			for _, reader := range c.nodes {
				c.mustJSON(reader, http.MethodGet, "/admin/maintenance", nil, http.StatusOK, &got)
				if got.Enabled != enable {
					t.Fatalf("read through %s after a write through %s: %+v", reader.id, tn.id, got)
				}
			}
		}
	}
	// A client's own X-Metasrv-Forwarded-By is not a member's forward: the
	// follower forwards the write as any other.
	var got struct {
		Enabled bool `json:"enabled"`
	}
	c.mustJSON(c.follower(), http.MethodPost, "/admin/maintenance?enable=true", nil, http.StatusOK, &got, "X-Metasrv-Forwarded-By", "n9")
	if !got.Enabled {
		t.Fatalf("a write with a client's X-Metasrv-Forwarded-By: %+v", got)
	}
}

func TestTLSClientCertAuthRefusals(t *testing.T) {
	pki := certstest.New(t, "cluster")
	other := certstest.New(t, "other")
	c := startClusterWith(t, 3, httpsClient(t, pki.Client("alice")), tlsConfig(t, pki))
	f := c.follower()
	noCert := &tcluster{t: t, client: httpsClient(t, certs.Files{CA: []string{pki.CAFile}})}
	datanode := &tcluster{t: t, client: httpsClient(t, pki.Datanode(7))}

	for _, path := range []string{"/admin/health", "/admin/ready", "/health", "/ready", "/v1/health", "/status"} {
		if r := noCert.do(f, http.MethodGet, path, nil); r.status != http.StatusOK {
			t.Errorf("open route %s without a certificate: %s, want 200", path, r)
		}
	}
	for _, tc := range []struct {
		method, path string
	}{
		{http.MethodGet, "/admin/maintenance"},
		{http.MethodPost, "/admin/maintenance?enable=true"},
		{http.MethodPost, "/admin/maintenance/enable"},
		{http.MethodGet, "/admin/cluster"},
		{http.MethodGet, "/metrics"},
		{http.MethodPost, "/v1/heartbeat"},
		// A wrong method tells nothing (no 405, no Allow) before the caller
		// is authenticated.
		{http.MethodDelete, "/admin/maintenance"},
		{http.MethodPut, "/admin/cluster"},
		{http.MethodGet, "/v1/heartbeat"},
	} {
		r := noCert.do(f, tc.method, tc.path, nil)
		if r.status != http.StatusUnauthorized || r.code() != "unauthorized" || r.header.Get("Allow") != "" {
			t.Errorf("%s %s without a certificate: %s (Allow %q), want 401 unauthorized", tc.method, tc.path, r, r.header.Get("Allow"))
		}
	}
	if r := c.do(f, http.MethodDelete, "/admin/maintenance", nil); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") == "" {
		t.Errorf("a wrong method with a certificate: %s, want 405 with Allow", r)
	}
	// A datanode's certificate heartbeats and does nothing else.
	if r := datanode.do(f, http.MethodPost, "/admin/maintenance?enable=true", nil); r.status != http.StatusForbidden {
		t.Errorf("maintenance with a datanode certificate: %s, want 403", r)
	}
	l := c.leader()
	if r := datanode.do(l, http.MethodPost, "/v1/heartbeat", `{"id":7,"addr":"127.0.0.1:1","start_time_ms":1,"seq":1}`); r.status != http.StatusOK {
		t.Errorf("heartbeat with datanode-7's certificate as 7: %s", r)
	}
	// Its certificate cannot speak for another datanode, nor move one.
	dn2 := &tcluster{t: t, client: httpsClient(t, pki.Datanode(2))}
	if r := dn2.do(l, http.MethodPost, "/v1/heartbeat", `{"id":7,"addr":"127.0.0.1:6666","start_time_ms":1,"seq":2}`); r.status != http.StatusForbidden {
		t.Errorf("heartbeat for 7 with datanode-2's certificate: %s, want 403", r)
	}
	if d, ok := c.regDatanodes(l)[7]; !ok || d.Addr != "127.0.0.1:1" {
		t.Errorf("datanode 7 after a forged heartbeat: %+v", d)
	}
	// A certificate of another CA fails the handshake; so does plain HTTP.
	foreign := &tcluster{t: t, client: httpsClient(t, certs.Files{Cert: other.Client("mallory").Cert, Key: other.Client("mallory").Key, CA: []string{pki.CAFile}})}
	if r := foreign.do(f, http.MethodGet, "/admin/health", nil); r.status != 0 {
		t.Errorf("a client certificate of another CA: %s, want a refused handshake", r)
	}
	plain := &tcluster{t: t}
	if r := plain.do(f, http.MethodGet, "/admin/health", nil); r.status == http.StatusOK {
		t.Errorf("plain HTTP to the HTTPS API: %s", r)
	}
	// The write refused above changed nothing.
	var got struct {
		Enabled bool `json:"enabled"`
	}
	c.mustJSON(f, http.MethodGet, "/admin/maintenance", nil, http.StatusOK, &got)
	if got.Enabled {
		t.Fatal("a refused write enabled maintenance")
	}
	if !strings.HasPrefix(f.url, "https://") {
		t.Fatalf("url %s", f.url)
	}
}

// After a reload that drops a CA, an open connection whose client
// certificate that CA signed is closed, not left to serve.
func TestTLSReloadClosesConnectionsOfDroppedCA(t *testing.T) {
	pki := certstest.New(t, "cluster")
	old := certstest.New(t, "old")
	// The node trusts a bundle of both CAs for clients.
	bundle := filepath.Join(t.TempDir(), "clients.crt")
	writeBundle := func(files ...string) {
		var b []byte
		for _, f := range files {
			pem, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, pem...)
		}
		if err := os.WriteFile(bundle, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeBundle(pki.CAFile, old.CAFile)
	c := startClusterWith(t, 1, httpsClient(t, pki.Client("alice")), func(cfg *Config) {
		files := pki.Node(cfg.NodeID)
		cfg.PeerTLS = certstest.Source(t, files)
		cfg.ServerTLS = certstest.Source(t, certs.Files{Cert: files.Cert, Key: files.Key, CA: []string{bundle, pki.CAFile}})
		cfg.ClientCertAuth = true
	})
	n := c.nodes[0]
	mallory := old.Client("mallory")
	oldClient := &tcluster{t: t, client: httpsClient(t, certs.Files{Cert: mallory.Cert, Key: mallory.Key, CA: []string{pki.CAFile}})}
	if r := oldClient.do(n, http.MethodGet, "/admin/maintenance", nil); r.status != http.StatusOK {
		t.Fatalf("old CA's client before the rotation: %s", r)
	}
	// Its keep-alive connection is open; drop the old CA and reload.
	var closed atomic.Int32
	oldClient.client.Transport.(*http.Transport).DialTLSContext = countClose(oldClient.client.Transport.(*http.Transport).DialTLSContext, &closed)
	oldClient.client.CloseIdleConnections()
	if r := oldClient.do(n, http.MethodGet, "/admin/maintenance", nil); r.status != http.StatusOK {
		t.Fatalf("old CA's client on a new connection: %s", r)
	}
	writeBundle(pki.CAFile)
	if err := n.node.ReloadCertificates(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the old CA's connection closed", func() error {
		if closed.Load() == 0 {
			return errorf("still open")
		}
		return nil
	})
	if r := oldClient.do(n, http.MethodGet, "/admin/maintenance", nil); r.status != 0 {
		t.Fatalf("old CA's client after the rotation: %s, want a refused handshake", r)
	}
}

// countClose wraps a TLS dialer so the test sees when the server closes
// the connection (a read returns an error).
func countClose(dial func(ctx context.Context, network, addr string) (net.Conn, error), closed *atomic.Int32) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &closeWatch{Conn: c, closed: closed}, nil
	}
}

type closeWatch struct {
	net.Conn
	closed *atomic.Int32
}

func (c *closeWatch) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		c.closed.Add(1)
	}
	return n, err
}
