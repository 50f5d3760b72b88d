package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
	"github.com/metasrv/metasrv/server/certs"
)

// startTLSCluster starts three nodes as production runs them: mutual TLS
// between members, HTTPS with --client-cert-auth.
func startTLSCluster(t *testing.T, args ...string) *tcluster {
	t.Helper()
	tc := &tcluster{localcluster.StartTest(t, localcluster.TestOptions{
		Options: localcluster.Options{Bin: metasrvBin, Args: args, TLS: true},
		LogTail: logTail, Wait: waitLong, Timeout: 20 * time.Second})}
	tc.waitReady(tc.Nodes()...)
	return tc
}

// The seed's three curls, with --cacert/--cert/--key, on every node
// (followers forward the writes); without a client certificate, 401.
func TestE2ETLSSeedCurlsOnEveryNode(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	c := startTLSCluster(t)
	p := c.PKI
	curl := func(withCert bool, args ...string) (string, error) {
		base := []string{"-sS", "--max-time", "20", "--cacert", p.CAFile}
		if withCert {
			base = append(base, "--cert", p.Client.Cert, "--key", p.Client.Key)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "curl", append(base, args...)...).CombinedOutput()
		return string(out), err
	}
	for _, n := range c.Nodes() {
		for _, enable := range []string{"true", "false"} {
			out, err := curl(true, "-X", "POST", n.URL("/admin/maintenance?enable="+enable))
			if err != nil || out != `{"enabled":`+enable+`}` {
				t.Fatalf("curl -X POST %s: %q %v", n.URL("/admin/maintenance?enable="+enable), out, err)
			}
			for _, m := range c.Nodes() {
				out, err := curl(true, "-X", "GET", m.URL("/admin/maintenance"))
				if err != nil || out != `{"enabled":`+enable+`}` {
					t.Fatalf("curl -X GET %s after a write through %s: %q %v", m.URL("/admin/maintenance"), n.ID, out, err)
				}
			}
		}
		out, err := curl(false, "-X", "POST", n.URL("/admin/maintenance?enable=true"))
		if err != nil || !strings.Contains(out, `"code":"unauthorized"`) {
			t.Fatalf("without a client certificate: %q %v, want 401 unauthorized", out, err)
		}
		if out, err := curl(false, n.URL("/admin/health")); err != nil || out != "OK\n" {
			t.Fatalf("open /admin/health without a certificate: %q %v", out, err)
		}
	}
}

// servedSerial is the serial of the certificate the node's API presents.
func servedSerial(t *testing.T, addr string) string {
	conf := &tls.Config{InsecureSkipVerify: true} // only reading what is presented
	conn, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func fileSerial(t *testing.T, file string) string {
	s, err := certs.Load(certs.Files{Cert: file, Key: strings.TrimSuffix(file, ".crt") + ".key"})
	if err != nil {
		t.Fatal(err)
	}
	return s.Leaf().SerialNumber.String()
}

// Replacing every leaf certificate, then rotating the CA through a bundle,
// each applied by SIGHUP, while a client keeps writing and reading through
// every node: no request fails, and afterwards the old CA is refused.
func TestE2ETLSRotationWithoutFailedRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("rotates certificates on a running cluster")
	}
	c := startTLSCluster(t)
	p := c.PKI
	nodes := c.Nodes()

	var done, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		deadline := time.Now().Add(4 * time.Minute)
		for i := 0; i < 200000 && time.Now().Before(deadline); i++ {
			select {
			case <-stop:
				return
			default:
			}
			n := nodes[i%len(nodes)]
			method, url := http.MethodGet, n.URL("/admin/maintenance")
			if i%2 == 0 {
				method, url = http.MethodPost, n.URL(fmt.Sprintf("/admin/maintenance?enable=%t", i%4 == 0))
			}
			r, err := c.Request(20*time.Second, method, url, nil)
			if err != nil || r.Code != http.StatusOK {
				failed.Add(1)
				mu.Lock()
				if len(failures) < 5 {
					failures = append(failures, fmt.Sprintf("%s %s: %v %s", method, url, err, r))
				}
				mu.Unlock()
			}
			done.Add(1)
			if i%20 == 0 {
				// New connections, so handshakes meet the new files.
				c.Client.CloseIdleConnections()
			}
		}
	}()
	// progress waits until the client has made n more requests.
	progress := func(what string, n int64) {
		t.Helper()
		target := done.Load() + n
		if err := localcluster.Eventually(waitLong, func() error {
			if done.Load() < target {
				return fmt.Errorf("%d of %d requests", done.Load(), target)
			}
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	hupAll := func(what string) {
		t.Helper()
		for _, n := range nodes {
			if err := n.Reload(); err != nil {
				t.Fatalf("%s: SIGHUP %s: %v", what, n.ID, err)
			}
		}
		if err := p.ReloadClient(); err != nil {
			t.Fatal(err)
		}
		progress(what, 60)
	}
	reissue := func() {
		t.Helper()
		for _, n := range nodes {
			if _, err := p.IssueNode(n.ID, n.Host); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.IssueClient(); err != nil {
			t.Fatal(err)
		}
	}
	waitServed := func(what string) {
		t.Helper()
		for _, n := range nodes {
			want := fileSerial(t, filepath.Join(p.Dir, n.ID+".crt"))
			if err := localcluster.Eventually(waitLong, func() error {
				if got := servedSerial(t, n.RPCAddr); got != want {
					return fmt.Errorf("%s serves %s, want %s", n.ID, got, want)
				}
				return nil
			}); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
	}
	progress("before rotation", 60)

	// 1. Every leaf replaced under the same CA.
	oldCA := p.CA
	oldClient, err := p.Issue(certs.Request{Role: certs.RoleClient, Name: "old-operator", Client: true}, "old-operator")
	if err != nil {
		t.Fatal(err)
	}
	reissue()
	hupAll("new leaves")
	waitServed("new leaves")

	// 2. The CA: trust old+new, move every leaf to the new CA, drop the old.
	if err := p.NewCA("localcluster-ca-2"); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteCABundle(oldCA, p.CA); err != nil {
		t.Fatal(err)
	}
	hupAll("bundle of old and new CA")
	reissue()
	hupAll("leaves from the new CA")
	waitServed("leaves from the new CA")
	if err := p.WriteCABundle(p.CA); err != nil {
		t.Fatal(err)
	}
	hupAll("new CA only")

	close(stop)
	wg.Wait()
	t.Logf("%d requests, %d failed, during leaf replacement and CA rotation", done.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed: %v", failed.Load(), failures)
	}
	// The old CA's client certificate is refused now; the new one works
	// with the same client (so the refusal is the CA's).
	pool := x509.NewCertPool()
	pool.AddCert(p.CA.Cert)
	post := func(f certs.Files) (*http.Response, error) {
		pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			t.Fatal(err)
		}
		conf := &tls.Config{RootCAs: pool, ServerName: nodes[0].Host, Certificates: []tls.Certificate{pair}}
		cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
		return cl.Post(nodes[0].URL("/admin/maintenance?enable=true"), "", bytes.NewReader(nil))
	}
	resp, err := post(p.Client)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the new CA's client certificate: %v %v", resp, err)
	}
	resp.Body.Close()
	if resp, err := post(oldClient); err == nil {
		resp.Body.Close()
		t.Fatalf("a client certificate of the dropped CA: %s, want a refused handshake", resp.Status)
	}
}
