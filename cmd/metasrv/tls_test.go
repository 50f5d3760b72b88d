package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/server/certs"
)

// runTLS runs `metasrv tls args...` in-process.
func runTLS(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"tls"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// mustTLS runs `metasrv tls args...` and fails unless it exits 0.
func mustTLS(t *testing.T, args ...string) []string {
	t.Helper()
	code, out, errs := runTLS(t, args...)
	if code != 0 {
		t.Fatalf("metasrv tls %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return strings.Fields(out)
}

func tlsCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("%s: want exactly one PEM certificate", file)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tlsKey(t *testing.T, file string) *ecdsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		t.Fatalf("%s: want a PKCS #8 PEM key", file)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		t.Fatalf("%s: key %T, want ECDSA P-256", file, k)
	}
	return ek
}

func tlsMode(t *testing.T, file string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestTLSCommandIssues(t *testing.T) {
	dir := t.TempDir()
	files := mustTLS(t, "ca", "--dir", dir)
	caCrt, caKey := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if !slices.Equal(files, []string{caCrt, caKey}) {
		t.Fatalf("ca printed %q", files)
	}
	ca := tlsCert(t, caCrt)
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatalf("ca.crt is not a CA: IsCA %v usage %v", ca.IsCA, ca.KeyUsage)
	}
	if !strings.HasPrefix(ca.Subject.CommonName, "metasrv CA ") {
		t.Errorf("CA name %q", ca.Subject.CommonName)
	}
	if d := time.Until(ca.NotAfter); d < 3649*24*time.Hour || d > 3651*24*time.Hour {
		t.Errorf("CA valid for %v, want 3650 days", d)
	}
	if !tlsKey(t, caKey).PublicKey.Equal(ca.PublicKey) {
		t.Error("ca.key is not ca.crt's key")
	}
	if m := tlsMode(t, caKey); m != 0o600 {
		t.Errorf("ca.key mode %v", m)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	anyEKU := x509.ExtKeyUsageAny
	server, client := x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth
	for _, tc := range []struct {
		name  string
		args  []string
		base  string
		role  string
		cn    string
		dns   []string
		ips   []string
		usage []x509.ExtKeyUsage
		days  int
	}{
		{"node", []string{"node", "--node-id", "n1", "--host", "meta-1.example,10.0.0.1", "--host", "META-1.internal"},
			"n1", certs.RoleNode, "n1", []string{"meta-1.example", "meta-1.internal", "localhost"},
			[]string{"10.0.0.1", "127.0.0.1", "::1"}, []x509.ExtKeyUsage{server, client}, 365},
		{"node, loopback only, duplicates once", []string{"node", "--node-id", "meta-b", "--host", "localhost,[::1],127.0.0.1", "--days", "30"},
			"meta-b", certs.RoleNode, "meta-b", []string{"localhost"}, []string{"127.0.0.1", "::1"}, []x509.ExtKeyUsage{server, client}, 30},
		{"datanode", []string{"datanode", "--id", "7", "--host", "dn-7.example"},
			"datanode-7", certs.RoleDatanode, "datanode-7", []string{"dn-7.example", "localhost"},
			[]string{"127.0.0.1", "::1"}, []x509.ExtKeyUsage{server, client}, 365},
		{"datanode, decimal id", []string{"datanode", "--id", "0012"},
			"datanode-12", certs.RoleDatanode, "datanode-12", []string{"localhost"},
			[]string{"127.0.0.1", "::1"}, []x509.ExtKeyUsage{server, client}, 365},
		{"client", []string{"client", "--name", "alice", "--days", "7"},
			"alice", certs.RoleClient, "alice", nil, nil, []x509.ExtKeyUsage{client}, 7},
		{"client, email-like", []string{"client", "--name", "ops.bot@example.com"},
			"ops.bot@example.com", certs.RoleClient, "ops.bot@example.com", nil, nil, []x509.ExtKeyUsage{client}, 365},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := mustTLS(t, append(tc.args, "--dir", dir)...)
			crt, key := filepath.Join(dir, tc.base+".crt"), filepath.Join(dir, tc.base+".key")
			if !slices.Equal(files, []string{crt, key}) {
				t.Fatalf("printed %q, want %q", files, []string{crt, key})
			}
			c := tlsCert(t, crt)
			if !slices.Equal(c.Subject.Organization, []string{tc.role}) || c.Subject.CommonName != tc.cn {
				t.Errorf("subject %v, want O=%s CN=%s", c.Subject, tc.role, tc.cn)
			}
			if id := certs.IdentityOf(c); id != (certs.Identity{Role: tc.role, Name: tc.cn}) {
				t.Errorf("identity %v", id)
			}
			if !slices.Equal(c.DNSNames, tc.dns) {
				t.Errorf("DNS SANs %q, want %q", c.DNSNames, tc.dns)
			}
			var ips []string
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			slices.Sort(ips)
			if !slices.Equal(ips, slices.Sorted(slices.Values(tc.ips))) {
				t.Errorf("IP SANs %q, want %q", ips, tc.ips)
			}
			if !slices.Equal(c.ExtKeyUsage, tc.usage) || slices.Contains(c.ExtKeyUsage, anyEKU) {
				t.Errorf("extended key usage %v, want %v", c.ExtKeyUsage, tc.usage)
			}
			if c.IsCA || c.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("IsCA %v, key usage %v", c.IsCA, c.KeyUsage)
			}
			if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
				t.Errorf("public key %T, want ECDSA P-256", c.PublicKey)
			}
			if !tlsKey(t, key).PublicKey.Equal(c.PublicKey) {
				t.Error("the key is not the certificate's")
			}
			want := time.Now().Add(time.Duration(tc.days) * 24 * time.Hour)
			if d := c.NotAfter.Sub(want); d < -time.Minute || d > time.Minute {
				t.Errorf("NotAfter %v, want about %v", c.NotAfter, want)
			}
			if time.Now().Before(c.NotBefore) {
				t.Errorf("not valid yet: NotBefore %v", c.NotBefore)
			}
			if m := tlsMode(t, key); m != 0o600 {
				t.Errorf("key mode %v, want 0600", m)
			}
			if m := tlsMode(t, crt); m != 0o644 {
				t.Errorf("certificate mode %v, want 0644", m)
			}
			for _, u := range tc.usage {
				if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
					t.Errorf("does not verify against ca.crt for %v: %v", u, err)
				}
			}
			for _, h := range append(tc.dns, tc.ips...) {
				if err := c.VerifyHostname(h); err != nil {
					t.Errorf("host %s: %v", h, err)
				}
			}
		})
	}
}

func TestTLSCommandCAFlagsAndClamping(t *testing.T) {
	caDir, dir := t.TempDir(), t.TempDir()
	mustTLS(t, "ca", "--dir", caDir, "--days", "10", "--name", "test CA")
	ca := tlsCert(t, filepath.Join(caDir, "ca.crt"))
	if ca.Subject.CommonName != "test CA" {
		t.Errorf("CA name %q", ca.Subject.CommonName)
	}

	// The CA is elsewhere: refused without --ca-cert/--ca-key.
	code, out, errs := runTLS(t, "node", "--dir", dir, "--node-id", "n1")
	if code != 1 || out != "" || !strings.Contains(errs, "no CA") || !strings.Contains(errs, filepath.Join(dir, "ca.crt")) {
		t.Fatalf("no CA: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	assertNoFiles(t, dir)
	code, _, errs = runTLS(t, "node", "--dir", dir, "--node-id", "n1", "--ca-cert", filepath.Join(caDir, "ca.crt"))
	if code != 1 || !strings.Contains(errs, "ca.key") {
		t.Fatalf("--ca-cert without the key beside it: exit %d, %q", code, errs)
	}

	// A leaf never outlives its CA: 365 days are cut to the CA's 10, with a
	// warning.
	code, out, errs = runTLS(t, "node", "--dir", dir, "--node-id", "n1",
		"--ca-cert", filepath.Join(caDir, "ca.crt"), "--ca-key", filepath.Join(caDir, "ca.key"))
	if code != 0 || !strings.Contains(errs, "warning") || strings.Count(out, "\n") != 2 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if c := tlsCert(t, filepath.Join(dir, "n1.crt")); !c.NotAfter.Equal(ca.NotAfter) {
		t.Errorf("NotAfter %v, want the CA's %v", c.NotAfter, ca.NotAfter)
	}

	// A key that is not the CA's is refused.
	other := t.TempDir()
	mustTLS(t, "ca", "--dir", other)
	code, _, errs = runTLS(t, "client", "--dir", dir, "--name", "alice",
		"--ca-cert", filepath.Join(caDir, "ca.crt"), "--ca-key", filepath.Join(other, "ca.key"))
	if code != 1 || !strings.Contains(errs, "does not belong") {
		t.Fatalf("mismatched CA key: exit %d, %q", code, errs)
	}
	// A leaf certificate is no CA.
	code, _, errs = runTLS(t, "client", "--dir", dir, "--name", "alice",
		"--ca-cert", filepath.Join(dir, "n1.crt"), "--ca-key", filepath.Join(dir, "n1.key"))
	if code != 1 || !strings.Contains(errs, "not a CA") {
		t.Fatalf("leaf as CA: exit %d, %q", code, errs)
	}
}

// assertNoFiles fails if dir holds anything but a CA.
func assertNoFiles(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "ca.crt" && e.Name() != "ca.key" {
			t.Errorf("%s written", e.Name())
		}
	}
}

func readAll(t *testing.T, files ...string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestTLSCommandOverwriteNeedsForce(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		base string
	}{
		{"ca", []string{"ca"}, "ca"},
		{"node", []string{"node", "--node-id", "n1"}, "n1"},
		{"datanode", []string{"datanode", "--id", "3"}, "datanode-3"},
		{"client", []string{"client", "--name", "alice"}, "alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.name != "ca" {
				mustTLS(t, "ca", "--dir", dir)
			}
			args := append(tc.args, "--dir", dir)
			mustTLS(t, args...)
			files := []string{filepath.Join(dir, tc.base+".crt"), filepath.Join(dir, tc.base+".key")}
			before := readAll(t, files...)

			code, out, errs := runTLS(t, args...)
			if code != 1 || out != "" {
				t.Fatalf("again without --force: exit %d, stdout %q", code, out)
			}
			if !strings.HasPrefix(errs, "metasrv tls: ") || strings.Count(errs, "\n") != 1 ||
				!strings.Contains(errs, "file exists") || !strings.Contains(errs, "--force") {
				t.Errorf("stderr %q", errs)
			}
			if after := readAll(t, files...); !slices.EqualFunc(before, after, bytes.Equal) {
				t.Fatal("files changed without --force")
			}
			// Only the key exists (the certificate was lost): still refused.
			if err := os.Remove(files[0]); err != nil {
				t.Fatal(err)
			}
			if code, _, _ := runTLS(t, args...); code != 1 {
				t.Fatalf("with the key left: exit %d", code)
			}
			if _, err := os.Stat(files[0]); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("the certificate was written beside a key it does not match")
			}

			if got := mustTLS(t, append(args, "--force")...); !slices.Equal(got, files) {
				t.Fatalf("--force printed %q", got)
			}
			after := readAll(t, files...)
			if bytes.Equal(before[1], after[1]) {
				t.Fatal("--force kept the old key")
			}
			if !tlsKey(t, files[1]).PublicKey.Equal(tlsCert(t, files[0]).PublicKey) {
				t.Fatal("the new certificate is not the new key's")
			}
			if m := tlsMode(t, files[1]); m != 0o600 {
				t.Errorf("key mode %v after --force", m)
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.Contains(e.Name(), ".tmp") {
					t.Errorf("temporary file %s left", e.Name())
				}
			}
		})
	}
}

func TestTLSCommandRefusedNames(t *testing.T) {
	dir := t.TempDir()
	mustTLS(t, "ca", "--dir", dir)
	mustTLS(t, "node", "--dir", dir, "--node-id", "meta-a")
	for _, tc := range []struct {
		args []string
		why  string // in the error
	}{
		{[]string{"client", "--name", "n1"}, "looks like a node id"},
		{[]string{"client", "--name", "n42"}, "looks like a node id"},
		{[]string{"client", "--name", "meta-a"}, "certificate of node meta-a"},
		{[]string{"client", "--name", "META-A"}, "certificate of node"},
		{[]string{"client", "--name", "datanode-3"}, "datanode"},
		{[]string{"client", "--name", "datanode-x"}, "datanode"},
		{[]string{"client", "--name", "ca"}, "CA"},
		{[]string{"client", "--name", "../evil"}, "letters, digits"},
		{[]string{"client", "--name", ".hidden"}, "letters, digits"},
		{[]string{"client", "--name", "a b"}, "letters, digits"},
		{[]string{"client", "--name", ""}, "letters, digits"},
		{[]string{"client", "--name", strings.Repeat("a", 65)}, "at most 64"},
		{[]string{"node", "--node-id", "ca"}, "CA"},
		{[]string{"node", "--node-id", "datanode-1"}, "datanode"},
		{[]string{"node", "--node-id", "a/b"}, "letters, digits"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errs := runTLS(t, append(tc.args, "--dir", dir)...)
			if code != 1 || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
			}
			if !strings.HasPrefix(errs, "metasrv tls: ") || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, tc.why) {
				t.Errorf("stderr %q, want one line with %q", errs, tc.why)
			}
		})
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 4 { // ca.crt ca.key meta-a.crt meta-a.key
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("files written: %q", names)
	}
	// Names near the refused ones are fine.
	for _, name := range []string{"n1x", "node1", "nadia", "datanode"} {
		mustTLS(t, "client", "--dir", dir, "--name", name)
	}
}

func TestTLSCommandUsageErrors(t *testing.T) {
	dir := t.TempDir()
	mustTLS(t, "ca", "--dir", dir)
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"help", "bogus"},
		{"node"},
		{"datanode"},
		{"client"},
		{"node", "--node-id", "n1", "--bogus"},
		{"node", "--node-id", "n1", "--name", "x"},
		{"client", "--name", "alice", "--host", "x"},
		{"ca", "--ca-cert", "x"},
		{"datanode", "--id", "x"},
		{"datanode", "--id", "-1"},
		{"datanode", "--id", "0x10"},
		{"node", "--node-id", "n1", "--days", "0"},
		{"node", "--node-id", "n1", "--days", "-5"},
		{"node", "--node-id", "n1", "--days", "ten"},
		{"node", "--node-id", "n1", "--days", "100000"},
		{"node", "--node-id", "n1", "extra"},
		{"node", "--node-id", "n1", "--host", "meta:7000"},
		{"node", "--node-id", "n1", "--host", "https://meta"},
		{"node", "--node-id", "n1", "--host", "bad_name"},
		{"node", "--node-id", "n1", "--force=maybe"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			a := args
			if len(a) > 0 && a[0] != "help" && a[0] != "bogus" {
				a = append(slices.Clone(a), "--dir", dir)
			}
			code, out, errs := runTLS(t, a...)
			if code != 2 || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2", code, out, errs)
			}
			if !strings.HasPrefix(errs, "metasrv tls: ") || strings.Count(errs, "\n") != 1 {
				t.Errorf("stderr %q, want one line", errs)
			}
		})
	}
	assertNoFiles(t, dir)
}

func TestTLSCommandHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"metasrv tls ca", "metasrv tls node", "metasrv tls datanode", "metasrv tls client", "Exit status"}},
		{[]string{"-h"}, []string{"metasrv tls node"}},
		{[]string{"help"}, []string{"metasrv tls node"}},
		{[]string{"ca", "--help"}, []string{"--days", "3650", "--force"}},
		{[]string{"node", "--help"}, []string{"--node-id", "--host", "--ca-cert", "--ca-key", "--days", "365", "localhost, 127.0.0.1 and ::1"}},
		{[]string{"datanode", "-h"}, []string{"--id", "datanode-N"}},
		{[]string{"client", "--help"}, []string{"--name", "refused", "datanode-", "n followed by digits"}},
		{[]string{"help", "client"}, []string{"--name"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errs := runTLS(t, tc.args...)
			if code != 0 || errs != "" {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("help lacks %q:\n%s", w, out)
				}
			}
		})
	}
	var out bytes.Buffer
	if code := run([]string{"--help"}, &out, &out); code != 0 || !strings.Contains(out.String(), "metasrv tls node") {
		t.Errorf("metasrv --help (exit %d) does not list the tls subcommands:\n%s", code, out.String())
	}
}

// tlsHandshake runs a TLS handshake over TCP on addr and returns each
// side's error and the identity the server saw.
func tlsHandshake(t *testing.T, addr string, srv, cli *tls.Config) (clientErr, serverErr error, peer certs.Identity) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("listen %s: %v", addr, err)
	}
	defer ln.Close()
	type result struct {
		err error
		id  certs.Identity
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		s := tls.Server(c, srv)
		if err := s.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		var id certs.Identity
		if cs := s.ConnectionState(); len(cs.PeerCertificates) > 0 {
			id = certs.IdentityOf(cs.PeerCertificates[0])
		}
		_, err = s.Write([]byte{1}) // TLS 1.3: the client learns of a refusal on its first read
		done <- result{err, id}
	}()
	raw, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, cli)
	clientErr = c.Handshake()
	if clientErr == nil {
		_, clientErr = c.Read(make([]byte, 1))
	}
	raw.Close()
	r := <-done
	return clientErr, r.err, r.id
}

func TestTLSCommandCertificatesHandshake(t *testing.T) {
	dir := t.TempDir()
	mustTLS(t, "ca", "--dir", dir)
	mustTLS(t, "node", "--dir", dir, "--node-id", "n1", "--host", "meta-1.example")
	mustTLS(t, "node", "--dir", dir, "--node-id", "n2")
	mustTLS(t, "datanode", "--dir", dir, "--id", "7")
	mustTLS(t, "client", "--dir", dir, "--name", "alice")
	ca := []string{filepath.Join(dir, "ca.crt")}
	load := func(name string) *certs.Source {
		t.Helper()
		s, err := certs.Load(certs.Files{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), CA: ca})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	n1, n2, dn, alice := load("n1"), load("n2"), load("datanode-7"), load("alice")
	anon, err := certs.Load(certs.Files{CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	nodesOnly := func(id certs.Identity) error {
		if id.Role != certs.RoleNode {
			return errors.New("members only")
		}
		return nil
	}
	v := uint16(tls.VersionTLS13)
	for _, tc := range []struct {
		name       string
		addr       string
		server     *tls.Config
		client     *tls.Config
		ok         bool
		serverSees certs.Identity
	}{
		{"member to member over 127.0.0.1", "127.0.0.1:0", n1.ServerConfig(v, true, nodesOnly), n2.ClientConfig(v, "127.0.0.1", nodesOnly), true, certs.Identity{Role: certs.RoleNode, Name: "n2"}},
		{"member to member over ::1", "[::1]:0", n1.ServerConfig(v, true, nodesOnly), n2.ClientConfig(v, "::1", nodesOnly), true, certs.Identity{Role: certs.RoleNode, Name: "n2"}},
		{"member to member by name", "127.0.0.1:0", n1.ServerConfig(v, true, nodesOnly), n2.ClientConfig(v, "localhost", nil), true, certs.Identity{Role: certs.RoleNode, Name: "n2"}},
		{"member by its --host name", "127.0.0.1:0", n1.ServerConfig(v, true, nil), n2.ClientConfig(v, "meta-1.example", nil), true, certs.Identity{Role: certs.RoleNode, Name: "n2"}},
		{"n2 is not meta-1.example", "127.0.0.1:0", n2.ServerConfig(v, true, nil), n1.ClientConfig(v, "meta-1.example", nil), false, certs.Identity{}},
		{"TLS 1.2", "127.0.0.1:0", n1.ServerConfig(tls.VersionTLS12, true, nil), n2.ClientConfig(tls.VersionTLS12, "127.0.0.1", nil), true, certs.Identity{Role: certs.RoleNode, Name: "n2"}},
		{"operator to the API", "127.0.0.1:0", n1.ServerConfig(v, true, nil), alice.ClientConfig(v, "127.0.0.1", nil), true, certs.Identity{Role: certs.RoleClient, Name: "alice"}},
		{"operator to the raft port", "127.0.0.1:0", n1.ServerConfig(v, true, nodesOnly), alice.ClientConfig(v, "127.0.0.1", nil), false, certs.Identity{}},
		{"datanode heartbeat", "127.0.0.1:0", n1.ServerConfig(v, true, nil), dn.ClientConfig(v, "localhost", nil), true, certs.Identity{Role: certs.RoleDatanode, Name: "datanode-7"}},
		{"leader to a datanode's /regions", "127.0.0.1:0", dn.ServerConfig(v, true, nodesOnly), n1.ClientConfig(v, "127.0.0.1", nil), true, certs.Identity{Role: certs.RoleNode, Name: "n1"}},
		{"a client certificate cannot serve", "127.0.0.1:0", alice.ServerConfig(v, false, nil), anon.ClientConfig(v, "127.0.0.1", nil), false, certs.Identity{}},
		{"no client certificate where one is required", "127.0.0.1:0", n1.ServerConfig(v, true, nil), anon.ClientConfig(v, "127.0.0.1", nil), false, certs.Identity{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cerr, serr, id := tlsHandshake(t, tc.addr, tc.server, tc.client)
			if tc.ok {
				if cerr != nil || serr != nil {
					t.Fatalf("refused: client %v, server %v", cerr, serr)
				}
				if id != tc.serverSees {
					t.Errorf("server saw %v, want %v", id, tc.serverSees)
				}
			} else if cerr == nil && serr == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// --role read makes a read-only operator (OrganizationalUnit read).
func TestTLSClientRole(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"tls", "ca", "--dir", dir}, &out, &errb); code != 0 {
		t.Fatalf("ca: %d %s", code, errb.String())
	}
	for _, tc := range []struct {
		role, unit string
		code       int
	}{{"read", "read", 0}, {"admin", "", 0}, {"root", "", 2}} {
		out.Reset()
		errb.Reset()
		name := "op-" + tc.role
		code := run([]string{"tls", "client", "--dir", dir, "--name", name, "--role", tc.role}, &out, &errb)
		if code != tc.code {
			t.Fatalf("--role %s: exit %d, want %d: %s", tc.role, code, tc.code, errb.String())
		}
		if code != 0 {
			continue
		}
		s, err := certs.Load(certs.Files{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")})
		if err != nil {
			t.Fatal(err)
		}
		if ou := strings.Join(s.Leaf().Subject.OrganizationalUnit, ","); ou != tc.unit {
			t.Fatalf("--role %s: OU %q, want %q", tc.role, ou, tc.unit)
		}
	}
}
