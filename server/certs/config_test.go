package certs_test

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"

	"github.com/metasrv/metasrv/server/certs"
	"github.com/metasrv/metasrv/server/certs/certstest"
)

// handshake runs one TLS handshake between a server and a client config
// over a pipe and returns the client's and the server's error.
func handshake(t *testing.T, srv, cli *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() {
		s := tls.Server(b, srv)
		err := s.Handshake()
		if err == nil {
			// TLS 1.3: the client learns of a refused certificate only on
			// its first read.
			_, err = s.Write([]byte{1})
		}
		done <- err
		b.Close()
	}()
	c := tls.Client(a, cli)
	clientErr = c.Handshake()
	if clientErr == nil {
		_, clientErr = c.Read(make([]byte, 1))
	}
	a.Close()
	return clientErr, <-done
}

func TestMutualTLSRolesAndCAs(t *testing.T) {
	pki := certstest.New(t, "cluster")
	other := certstest.New(t, "other")
	n1 := certstest.Source(t, pki.Node("n1"))
	onlyNodes := func(id certs.Identity) error {
		if id.Role != certs.RoleNode {
			return errors.New("not a member")
		}
		return nil
	}
	for _, tc := range []struct {
		name   string
		client certs.Files
		ok     bool
	}{
		{"member", pki.Node("n2"), true},
		{"datanode role", pki.Datanode(7), false},
		{"client role", pki.Client("alice"), false},
		{"member of another CA", certs.Files{Cert: other.Node("n2").Cert, Key: other.Node("n2").Key, CA: []string{pki.CAFile}}, false},
		{"no certificate", certs.Files{CA: []string{pki.CAFile}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := certstest.Source(t, tc.client)
			cerr, serr := handshake(t, n1.ServerConfig(tls.VersionTLS13, true, onlyNodes), cli.ClientConfig(tls.VersionTLS13, "localhost", nil))
			if tc.ok && (cerr != nil || serr != nil) {
				t.Fatalf("refused: client %v, server %v", cerr, serr)
			}
			if !tc.ok && serr == nil {
				t.Fatalf("accepted")
			}
		})
	}
}

func TestClientChecksServerNameAndCA(t *testing.T) {
	pki := certstest.New(t, "cluster")
	other := certstest.New(t, "other")
	srv := certstest.Source(t, pki.Node("n1"))
	good := certstest.Source(t, pki.Client("alice"))
	if cerr, serr := handshake(t, srv.ServerConfig(tls.VersionTLS12, false, nil), good.ClientConfig(tls.VersionTLS12, "127.0.0.1", nil)); cerr != nil || serr != nil {
		t.Fatalf("refused: %v %v", cerr, serr)
	}
	if cerr, _ := handshake(t, srv.ServerConfig(tls.VersionTLS12, false, nil), good.ClientConfig(tls.VersionTLS12, "evil.example", nil)); cerr == nil {
		t.Fatal("a name not in the certificate was accepted")
	}
	wrongCA := certstest.Source(t, certs.Files{CA: []string{other.CAFile}})
	if cerr, _ := handshake(t, srv.ServerConfig(tls.VersionTLS12, false, nil), wrongCA.ClientConfig(tls.VersionTLS12, "localhost", nil)); cerr == nil {
		t.Fatal("a server of another CA was accepted")
	}
}
