package certs

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Files names the PEM files of one side of a TLS connection.
type Files struct {
	Cert, Key string   // this side's certificate (chain) and key; both or neither
	CA        []string // bundles of CAs that verify the other side; each may hold several
}

// Source is the certificate and trust pool loaded from Files. Reload swaps
// them atomically, so tls.Configs made by a Source see new files without a
// restart; a reload that fails keeps the last good material.
type Source struct {
	files Files

	mu    sync.Mutex // serialises reloads and hooks
	cur   atomic.Pointer[material]
	hooks []func()
}

type material struct {
	cert    *tls.Certificate // nil without Cert/Key
	leaf    *x509.Certificate
	pool    *x509.CertPool
	cas     []*x509.Certificate
	caFiles []string // the file each of cas came from
	hash    [sha256.Size]byte
}

// Load reads the files once; it fails when any is missing or unusable.
func Load(f Files) (*Source, error) {
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("a certificate file needs its key file, and a key file its certificate")
	}
	s := &Source{files: f}
	m, err := read(f)
	if err != nil {
		return nil, err
	}
	s.cur.Store(m)
	return s, nil
}

// Files returns the files the source reads.
func (s *Source) Files() Files { return s.files }

func read(f Files) (*material, error) {
	h := sha256.New()
	// Each file's length goes into the hash before its content, so bytes
	// moving from one file to the next still count as a change.
	add := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	m := &material{pool: x509.NewCertPool()}
	if f.Cert != "" {
		certPEM, err := readFile("certificate", f.Cert)
		if err != nil {
			return nil, err
		}
		keyPEM, err := readFile("key", f.Key)
		if err != nil {
			return nil, err
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%s with %s: %w", f.Cert, f.Key, err)
		}
		m.cert, m.leaf = &c, c.Leaf
		add(certPEM)
		add(keyPEM)
	}
	for _, name := range f.CA {
		b, err := readFile("CA", name)
		if err != nil {
			return nil, err
		}
		cas, err := parseCerts(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(cas) == 0 {
			return nil, fmt.Errorf("%s holds no PEM certificate", name)
		}
		for _, ca := range cas {
			if slices.ContainsFunc(m.cas, ca.Equal) {
				continue // listed twice: once is enough, and one metric
			}
			m.pool.AddCert(ca)
			m.cas = append(m.cas, ca)
			m.caFiles = append(m.caFiles, name)
		}
		add(b)
	}
	copy(m.hash[:], h.Sum(nil))
	return m, nil
}

// readFile reads a PEM file, saying which file of the set failed.
func readFile(what, name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%s file: %w", what, err)
	}
	return b, nil
}

func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out, nil
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// Reload re-reads the files. It reports whether their content changed; on
// error the previous material stays in use. Hooks run after a change.
func (s *Source) Reload() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := read(s.files)
	if err != nil {
		return false, err
	}
	if m.hash == s.cur.Load().hash {
		return false, nil
	}
	s.cur.Store(m)
	for _, h := range s.hooks {
		h()
	}
	return true, nil
}

// OnChange registers fn to run after each reload that changed the material
// (for closing connections whose certificate is no longer trusted).
func (s *Source) OnChange(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, fn)
}

// Watch reloads every interval until ctx ends: Kubernetes replaces a
// Secret's files by swapping a symlink, which no signal announces. report
// is called with each reload's outcome when something changed or failed.
func (s *Source) Watch(ctx context.Context, every time.Duration, report func(changed bool, err error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			changed, err := s.Reload()
			if (changed || err != nil) && report != nil {
				report(changed, err)
			}
		}
	}
}

// Leaf is this side's certificate, or nil.
func (s *Source) Leaf() *x509.Certificate { return s.cur.Load().leaf }

// HasCert reports whether the source has a certificate of its own.
func (s *Source) HasCert() bool { return s.cur.Load().cert != nil }

func (s *Source) certificate() (*tls.Certificate, error) {
	c := s.cur.Load().cert
	if c == nil {
		return nil, errors.New("no certificate configured")
	}
	return c, nil
}

// Verify checks a presented chain (leaf first) against the current pool for
// usage and returns the leaf's identity. The leaf must name usage (or
// anyExtendedKeyUsage) in its extended key usages: one with none, which
// crypto/x509 would accept for any use, is refused.
func (s *Source) Verify(chain []*x509.Certificate, usage x509.ExtKeyUsage) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, errors.New("no certificate presented")
	}
	if !hasUsage(chain[0], usage) {
		return Identity{}, fmt.Errorf("certificate %q is not for %s (its extended key usage does not name it)",
			chain[0].Subject.CommonName, usageName(usage))
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{
		Roots: s.cur.Load().pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage},
	}); err != nil {
		return Identity{}, err
	}
	return IdentityOf(chain[0]), nil
}

func hasUsage(c *x509.Certificate, usage x509.ExtKeyUsage) bool {
	for _, u := range c.ExtKeyUsage {
		if u == usage || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

func usageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "server authentication"
	case x509.ExtKeyUsageClientAuth:
		return "client authentication"
	}
	return fmt.Sprintf("extended key usage %d", u)
}

// Trusted reports whether a chain verified earlier still verifies against
// the current pool (after a CA rotation).
func (s *Source) Trusted(chain []*x509.Certificate, usage x509.ExtKeyUsage) bool {
	_, err := s.Verify(chain, usage)
	return err == nil
}

// Expiry lists the certificates the source holds (its own first, then the
// CAs) with when each expires.
func (s *Source) Expiry() []Expiring {
	m := s.cur.Load()
	var out []Expiring
	if m.leaf != nil {
		out = append(out, Expiring{Subject: m.leaf.Subject.CommonName, File: s.files.Cert, NotAfter: m.leaf.NotAfter, Serial: m.leaf.SerialNumber.Text(16)})
	}
	for i, ca := range m.cas {
		out = append(out, Expiring{Subject: ca.Subject.CommonName, File: m.caFiles[i], CA: true, NotAfter: ca.NotAfter, Serial: ca.SerialNumber.Text(16)})
	}
	return out
}

// Expiring is one certificate and when it expires.
type Expiring struct {
	Subject  string
	File     string
	CA       bool
	NotAfter time.Time
	Serial   string // hexadecimal; tells apart an old and a new CA of the same name
}
