package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The cluster runs with TLS on, as `make up` does: its one-shot service
// `pki` issues the certificates with `metasrv tls` into the project's
// volumes; the suite starts it before any node, then copies out the
// operator's client certificate and the CA and talks HTTPS with them.
const (
	pkiService = "pki"
	// What the one-shot writes into its own volume (deploy/compose).
	pkiClientCert = "/data/client/operator.crt"
	pkiClientKey  = "/data/client/operator.key"
	pkiCA         = "/data/ca.crt"
)

// issueCertificates runs the one-shot `pki` container of a just-created
// project to completion (bounded) and returns a TLS client configuration
// with the operator's certificate, trusting the cluster's CA. Nodes are
// dialled at 127.0.0.1 (published ports, or inside a namespace), which
// every node and datanode certificate carries.
func issueCertificates(ctx context.Context, c *Compose) (*tls.Config, error) {
	name, err := c.Container(ctx, pkiService)
	if err != nil {
		return nil, err
	}
	if _, err := docker(ctx, "start", name); err != nil {
		return nil, err
	}
	out, err := docker(ctx, "wait", name) // docker() bounds it (60 s)
	if err != nil {
		return nil, fmt.Errorf("waiting for %s: %v", pkiService, err)
	}
	if strings.TrimSpace(out) != "0" {
		return nil, fmt.Errorf("%s exited %s: %s", pkiService, out, lastLines(string(c.Logs(ctx, name)), 5))
	}
	dir, err := os.MkdirTemp("", "chaos-certs-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	read := func(from string) ([]byte, error) {
		to := filepath.Join(dir, filepath.Base(from))
		if _, err := docker(ctx, "cp", name+":"+from, to); err != nil {
			return nil, err
		}
		return os.ReadFile(to)
	}
	var pem [3][]byte
	for i, f := range []string{pkiClientCert, pkiClientKey, pkiCA} {
		if pem[i], err = read(f); err != nil {
			return nil, err
		}
	}
	pair, err := tls.X509KeyPair(pem[0], pem[1])
	if err != nil {
		return nil, fmt.Errorf("operator certificate: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem[2]) {
		return nil, fmt.Errorf("%s holds no certificate", pkiCA)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, Certificates: []tls.Certificate{pair}}, nil
}

// useTLS makes the cluster's clients speak HTTPS with cfg. It is called
// before the first request.
func (cl *Cluster) useTLS(cfg *tls.Config) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.tls = cfg
	cl.client.Transport.(*http.Transport).TLSClientConfig = cfg
}

// scheme is the URL scheme of every request.
func (cl *Cluster) scheme() string {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.tls != nil {
		return "https://"
	}
	return "http://"
}

// checkTLS confirms that every up metasrv node runs with TLS on both
// ports, from its expiry metric: a series for its raft certificate
// (use="peer") and for its API certificate (use="server"). That the API
// answered over HTTPS at all is already shown by the request.
func (cl *Cluster) checkTLS(ctx context.Context) error {
	for _, n := range cl.upMetas() {
		r := cl.get(ctx, n, "/metrics", 5*time.Second)
		if !r.ok() {
			return fmt.Errorf("GET /metrics via %s: %s", n.Service, r)
		}
		for _, use := range []string{"peer", "server"} {
			if !bytes.Contains(r.Body, []byte(`use="`+use+`"`)) {
				return fmt.Errorf("%s runs without a %s certificate (no metasrv_tls_cert_expiry_seconds{use=%q})", n.Service, use, use)
			}
		}
	}
	refused, err := cl.raftRefusesPlaintext(ctx)
	if err != nil {
		return err
	}
	cl.logf("  TLS on: every metasrv node has its peer and server certificates; HTTPS with a client certificate; %s", refused)
	return nil
}

// raftRefusesPlaintext sends one plaintext raft byte (the rpc type of
// AppendEntries) to a node's raft port from inside its network namespace.
// A plaintext raft server would wait for the rest of the request; one under
// mutual TLS closes the connection at once and counts it in
// metasrv_raft_conn_refused_total{reason="plaintext"}.
func (cl *Cluster) raftRefusesPlaintext(ctx context.Context) (string, error) {
	up := cl.upMetas()
	if len(up) == 0 {
		return "", fmt.Errorf("no metasrv node is up")
	}
	n := up[0]
	pid, err := cl.compose.Pid(ctx, n.Service)
	if err != nil {
		return "", err
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := netnsDialer(pid)(dctx, "tcp", "127.0.0.1:3003")
	if err != nil {
		return "", fmt.Errorf("raft port of %s: %v", n.Service, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte{0}); err != nil {
		return "", fmt.Errorf("raft port of %s: %v", n.Service, err)
	}
	var b [1]byte
	_, err = c.Read(b[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "", fmt.Errorf("raft port of %s accepts plaintext (a plaintext request was kept open for 3 s): peer TLS is off", n.Service)
	}
	r := cl.get(ctx, n, "/metrics", 5*time.Second)
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, `metasrv_raft_conn_refused_total{reason="plaintext"} `); ok {
			return fmt.Sprintf("raft port of %s refused plaintext (refused_total{reason=plaintext} %s)", n.Service, v), nil
		}
	}
	return fmt.Sprintf("raft port of %s closed a plaintext request (%v)", n.Service, err), nil
}
