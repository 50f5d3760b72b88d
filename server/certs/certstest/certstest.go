// Package certstest issues throw-away certificates for tests: a CA and
// node, datanode and client certificates in a temporary directory.
package certstest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/metasrv/metasrv/server/certs"
)

// PKI is a CA with its files in Dir.
type PKI struct {
	t   testing.TB
	Dir string
	CA  *certs.Authority
	// CAFile is the CA's certificate.
	CAFile string
}

// New makes a CA named name in a fresh temporary directory.
func New(t testing.TB, name string) *PKI {
	t.Helper()
	ca, err := certs.NewAuthority(name, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &PKI{t: t, Dir: t.TempDir(), CA: ca}
	p.CAFile = filepath.Join(p.Dir, "ca.crt")
	key, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteFiles(p.CAFile, ca.CertPEM(), filepath.Join(p.Dir, "ca.key"), key, true); err != nil {
		t.Fatal(err)
	}
	return p
}

// Issue writes NAME.crt and NAME.key for r (file name = r.Name unless file
// is given) and returns their paths. Hosts default to the loopback names.
func (p *PKI) Issue(r certs.Request, file string) (certFile, keyFile string) {
	p.t.Helper()
	if r.Validity == 0 {
		r.Validity = 24 * time.Hour
	}
	if r.Hosts == nil {
		r.Hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	if file == "" {
		file = r.Name
	}
	c, k, err := p.CA.Issue(r)
	if err != nil {
		p.t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(p.Dir, file+".crt"), filepath.Join(p.Dir, file+".key")
	if err := certs.WriteFiles(certFile, c, keyFile, k, true); err != nil {
		p.t.Fatal(err)
	}
	return certFile, keyFile
}

// Node issues a member certificate (server and client use) for id.
func (p *PKI) Node(id string) certs.Files {
	c, k := p.Issue(certs.Request{Role: certs.RoleNode, Name: id, Server: true, Client: true}, "")
	return certs.Files{Cert: c, Key: k, CA: []string{p.CAFile}}
}

// Datanode issues datanode id's certificate.
func (p *PKI) Datanode(id uint64) certs.Files {
	n := certs.DatanodeName(id)
	c, k := p.Issue(certs.Request{Role: certs.RoleDatanode, Name: n, Server: true, Client: true}, "")
	return certs.Files{Cert: c, Key: k, CA: []string{p.CAFile}}
}

// Client issues an operator's client certificate.
func (p *PKI) Client(name string) certs.Files {
	c, k := p.Issue(certs.Request{Role: certs.RoleClient, Name: name, Client: true}, "")
	return certs.Files{Cert: c, Key: k, CA: []string{p.CAFile}}
}

// Source loads f or fails the test.
func Source(t testing.TB, f certs.Files) *certs.Source {
	t.Helper()
	s, err := certs.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
