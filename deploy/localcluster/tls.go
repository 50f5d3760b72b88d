package localcluster

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/metasrv/metasrv/server/certs"
)

// PKI is a cluster's certificates (Options.TLS): a CA in Dir and, for each
// member, datanode and the operator, a certificate and key named for them.
// The nodes read CAFile, which a test may turn into a bundle to rotate the
// CA; they re-read every file on SIGHUP.
type PKI struct {
	Dir    string
	CA     *certs.Authority
	CAFile string // what every process trusts
	// Client is the operator certificate the cluster's Client presents.
	Client certs.Files
	client *certs.Source
}

func newPKI(dir string) (*PKI, error) {
	p := &PKI{Dir: dir, CAFile: filepath.Join(dir, "ca.crt")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := p.NewCA("localcluster-ca"); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.CAFile, p.CA.CertPEM(), 0o644); err != nil {
		return nil, err
	}
	var err error
	if p.Client, err = p.Issue(certs.Request{Role: certs.RoleClient, Name: "operator", Client: true}, "operator"); err != nil {
		return nil, err
	}
	p.client, err = certs.Load(p.Client)
	return p, err
}

// NewCA replaces the CA that Issue signs with (CAFile is left alone).
func (p *PKI) NewCA(name string) error {
	ca, err := certs.NewAuthority(name, 24*time.Hour)
	if err != nil {
		return err
	}
	p.CA = ca
	return nil
}

// Issue writes DIR/file.crt and .key signed by the current CA, replacing
// them atomically, with the loopback names as hosts unless r has some.
func (p *PKI) Issue(r certs.Request, file string) (certs.Files, error) {
	if r.Validity == 0 {
		r.Validity = 24 * time.Hour
	}
	if r.Hosts == nil {
		r.Hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	c, k, err := p.CA.Issue(r)
	if err != nil {
		return certs.Files{}, err
	}
	f := certs.Files{Cert: filepath.Join(p.Dir, file+".crt"), Key: filepath.Join(p.Dir, file+".key"), CA: []string{p.CAFile}}
	return f, certs.WriteFiles(f.Cert, c, f.Key, k, true)
}

// IssueNode (re)issues member id's certificate for host.
func (p *PKI) IssueNode(id, host string) (certs.Files, error) {
	return p.Issue(certs.Request{Role: certs.RoleNode, Name: id, Server: true, Client: true,
		Hosts: []string{host, "localhost", "127.0.0.1", "::1"}}, id)
}

// IssueDatanode (re)issues datanode id's certificate for host.
func (p *PKI) IssueDatanode(id uint64, host string) (certs.Files, error) {
	name := certs.DatanodeName(id)
	return p.Issue(certs.Request{Role: certs.RoleDatanode, Name: name, Server: true, Client: true,
		Hosts: []string{host, "localhost", "127.0.0.1"}}, name)
}

// IssueClient (re)issues the operator's certificate.
func (p *PKI) IssueClient() error {
	_, err := p.Issue(certs.Request{Role: certs.RoleClient, Name: "operator", Client: true}, "operator")
	return err
}

// WriteCABundle makes CAFile hold exactly these CAs (PEM, in order).
func (p *PKI) WriteCABundle(cas ...*certs.Authority) error {
	var b []byte
	for _, ca := range cas {
		b = append(b, ca.CertPEM()...)
	}
	tmp := p.CAFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p.CAFile)
}

// ReloadClient re-reads the operator's files into the cluster's Client.
func (p *PKI) ReloadClient() error {
	_, err := p.client.Reload()
	return err
}

// clientTransport is an HTTPS transport presenting the operator's
// certificate and trusting CAFile, both re-read by ReloadClient.
func (p *PKI) clientTransport() *http.Transport {
	tr := p.client.Transport(5 * time.Second)
	tr.MaxIdleConnsPerHost, tr.IdleConnTimeout = 64, 30*time.Second
	return tr
}

func (c *Cluster) nodeTLSArgs(n *Node) ([]string, error) {
	f, err := c.PKI.IssueNode(n.ID, n.Host)
	if err != nil {
		return nil, err
	}
	return []string{"--peer-cert-file", f.Cert, "--peer-key-file", f.Key, "--peer-trusted-ca-file", c.PKI.CAFile,
		"--cert-file", f.Cert, "--key-file", f.Key, "--trusted-ca-file", c.PKI.CAFile, "--client-cert-auth"}, nil
}

func (c *Cluster) datanodeTLSArgs(d *Datanode) ([]string, error) {
	f, err := c.PKI.IssueDatanode(d.ID, d.Host)
	if err != nil {
		return nil, fmt.Errorf("datanode %d certificate: %w", d.ID, err)
	}
	return []string{"--metasrv-ca-file", c.PKI.CAFile, "--cert-file", f.Cert, "--key-file", f.Key}, nil
}

// Env of a TLS node, so its health/ready/step-down subcommands speak HTTPS.
func (c *Cluster) nodeTLSEnv(n *Node) []string {
	f := filepath.Join(c.PKI.Dir, n.ID)
	return []string{"METASRV_CERT_FILE=" + f + ".crt", "METASRV_TRUSTED_CA_FILE=" + c.PKI.CAFile,
		"METASRV_PEER_CERT_FILE=" + f + ".crt", "METASRV_PEER_KEY_FILE=" + f + ".key"}
}
