package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Authority is a CA that issues metasrv certificates.
type Authority struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewAuthority makes a self-signed ECDSA P-256 CA.
func NewAuthority(name string, validity time.Duration) (*Authority, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("validity %v: must be positive", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"metasrv"}},
		NotBefore:             now.Add(-time.Hour), // tolerate clock skew between hosts
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Authority{Cert: c, Key: key}, nil
}

// LoadAuthority reads a CA: its certificate (PEM; in a bundle of several,
// the one whose public key is keyFile's) and its key (PEM: PKCS #8, or EC or
// RSA in their own forms, as openssl writes them).
func LoadAuthority(certFile, keyFile string) (*Authority, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	certs, err := parseCerts(cb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certFile, err)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", certFile)
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	signer, err := parseKey(kb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return nil, fmt.Errorf("%s: unsupported key type %T", keyFile, signer)
	}
	for _, c := range certs {
		if !pub.Equal(c.PublicKey) {
			continue
		}
		if !c.IsCA || !c.BasicConstraintsValid {
			return nil, fmt.Errorf("%s is not a CA certificate", certFile)
		}
		if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0 {
			return nil, fmt.Errorf("%s: the CA certificate may not sign certificates (no certSign key usage)", certFile)
		}
		return &Authority{Cert: c, Key: signer}, nil
	}
	return nil, fmt.Errorf("%s does not belong to %s (no certificate there has its public key)", keyFile, certFile)
}

// parseKey reads the first private key in PEM b.
func parseKey(b []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM private key")
		}
		var k any
		var err error
		switch blk.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		default:
			continue // e.g. the EC PARAMETERS block openssl writes first
		}
		if err != nil {
			return nil, err
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return nil, errors.New("not a signing key")
		}
		return signer, nil
	}
}

// Request describes a certificate to issue.
type Request struct {
	Role     string   // Organization
	Name     string   // CommonName
	Unit     string   // OrganizationalUnit: an operator's scope ("read" or "admin"), optional
	Hosts    []string // DNS names and IP addresses (SANs)
	Validity time.Duration
	Server   bool // usable by a server (ExtKeyUsageServerAuth)
	Client   bool // usable by a client (ExtKeyUsageClientAuth)
}

// Issue signs a new ECDSA P-256 key's certificate. It returns both in PEM.
// A certificate never outlives the CA: its validity ends with the CA's at
// the latest (see Clamped).
func (a *Authority) Issue(r Request) (certPEM, keyPEM []byte, err error) {
	if r.Name == "" {
		return nil, nil, errors.New("a certificate needs a name")
	}
	if r.Validity <= 0 {
		return nil, nil, fmt.Errorf("validity %v: must be positive", r.Validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: r.Name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     a.notAfter(now, r.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if r.Role != "" {
		tmpl.Subject.Organization = []string{r.Role}
		if r.Unit != "" {
			tmpl.Subject.OrganizationalUnit = []string{r.Unit}
		}
	}
	if r.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if r.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	for _, h := range r.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if h != "" && !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, &key.PublicKey, a.Key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

func (a *Authority) notAfter(now time.Time, validity time.Duration) time.Time {
	t := now.Add(validity)
	if a.Cert != nil && t.After(a.Cert.NotAfter) {
		return a.Cert.NotAfter
	}
	return t
}

// Clamped reports whether a certificate of validity issued now would be cut
// short to end with the CA, and when the CA ends.
func (a *Authority) Clamped(validity time.Duration) (bool, time.Time) {
	now := time.Now()
	return a.notAfter(now, validity).Before(now.Add(validity)), a.Cert.NotAfter
}

// CertPEM is the CA's certificate in PEM.
func (a *Authority) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Cert.Raw})
}

// KeyPEM is the CA's key in PEM (PKCS #8).
func (a *Authority) KeyPEM() ([]byte, error) { return encodeKey(a.Key) }

func encodeKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

// ErrExists is returned by WriteFiles when a file exists and force is off.
var ErrExists = errors.New("file exists")

// WriteFiles writes a certificate (0644) and its key (0600). Without force
// it refuses, writing nothing, when either file exists.
func WriteFiles(certFile string, certPEM []byte, keyFile string, keyPEM []byte, force bool) error {
	if !force {
		for _, f := range []string{certFile, keyFile} {
			if _, err := os.Lstat(f); err == nil {
				return fmt.Errorf("%s: %w (use --force to replace it)", f, ErrExists)
			}
		}
	}
	if err := writeAtomic(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return writeAtomic(certFile, certPEM, 0o644)
}

// writeAtomic writes through a temporary file and a rename, so a reader
// (a node reloading its files) never sees half a file. The temporary file
// is new (mode 0600 until the content is in), so a key is never readable by
// others, even for a moment.
func writeAtomic(name string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename there is nothing to remove
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
