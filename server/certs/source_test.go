package certs_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metasrv/metasrv/server/certs"
	"github.com/metasrv/metasrv/server/certs/certstest"
)

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// chainOf is the certificates in a PEM file, leaf first.
func chainOf(t *testing.T, name string) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	b := readFile(t, name)
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

func TestTLSSourceReloadReportsOnlyChanges(t *testing.T) {
	pki := certstest.New(t, "cluster")
	f := pki.Node("n1")
	s := certstest.Source(t, f)
	var hooks atomic.Int32
	s.OnChange(func() { hooks.Add(1) })
	first := s.Leaf()

	if changed, err := s.Reload(); changed || err != nil {
		t.Fatalf("reload of the same files: changed %v, err %v", changed, err)
	}
	// Rewritten with the same content (a new mtime, a new inode): no change.
	for _, name := range []string{f.Cert, f.Key, pki.CAFile} {
		b := readFile(t, name)
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
		writeFile(t, name, b)
	}
	if changed, err := s.Reload(); changed || err != nil {
		t.Fatalf("reload of identical content: changed %v, err %v", changed, err)
	}
	if hooks.Load() != 0 || s.Leaf() != first {
		t.Fatal("material swapped without a change")
	}

	pki.Node("n1") // a new key and certificate in the same files
	changed, err := s.Reload()
	if !changed || err != nil {
		t.Fatalf("reload after reissue: changed %v, err %v", changed, err)
	}
	if s.Leaf().SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("Leaf still the old certificate")
	}
	if hooks.Load() != 1 {
		t.Fatalf("hooks ran %d times, want 1", hooks.Load())
	}
	if changed, _ := s.Reload(); changed || hooks.Load() != 1 {
		t.Fatal("a second reload of the new files counted as a change")
	}
}

func TestTLSSourceFailedReloadKeepsOldMaterial(t *testing.T) {
	pki := certstest.New(t, "cluster")
	f := pki.Node("n1")
	s := certstest.Source(t, f)
	var hooks atomic.Int32
	s.OnChange(func() { hooks.Add(1) })
	old := s.Leaf()
	oldCert, oldKey, oldCA := readFile(t, f.Cert), readFile(t, f.Key), readFile(t, pki.CAFile)

	// A new certificate and key, to be written one file at a time.
	next := certstest.New(t, "cluster") // same name, another CA
	nf := next.Node("n1")
	newCert, newKey := readFile(t, nf.Cert), readFile(t, nf.Key)

	client := certstest.Source(t, pki.Node("n2"))
	works := func() {
		t.Helper()
		if cerr, serr := handshake(t, s.ServerConfig(tls.VersionTLS13, true, nil), client.ClientConfig(tls.VersionTLS13, "localhost", nil)); cerr != nil || serr != nil {
			t.Fatalf("old material no longer serves: %v %v", cerr, serr)
		}
	}
	for _, tc := range []struct {
		name             string
		cert, key, ca    []byte
		removeCert, want string
	}{
		{name: "certificate replaced, key not yet", cert: newCert, key: oldKey, ca: oldCA, want: "private key does not match"},
		{name: "key replaced, certificate not yet", cert: oldCert, key: newKey, ca: oldCA, want: "private key does not match"},
		{name: "half a certificate", cert: newCert[:len(newCert)/2], key: newKey, ca: oldCA, want: f.Cert},
		{name: "empty key", cert: newCert, key: nil, ca: oldCA, want: f.Key},
		{name: "CA bundle truncated to nothing", cert: oldCert, key: oldKey, ca: nil, want: "no PEM certificate"},
		{name: "CA bundle half written", cert: oldCert, key: oldKey, ca: oldCA[:len(oldCA)-40], want: "no PEM certificate"},
		{name: "certificate file gone", cert: oldCert, key: oldKey, ca: oldCA, removeCert: f.Cert, want: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeFile(t, f.Cert, tc.cert)
			writeFile(t, f.Key, tc.key)
			writeFile(t, pki.CAFile, tc.ca)
			if tc.removeCert != "" {
				os.Remove(tc.removeCert)
			}
			changed, err := s.Reload()
			if changed || err == nil {
				t.Fatalf("changed %v, err %v; want an error", changed, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if s.Leaf() != old || hooks.Load() != 0 {
				t.Fatal("a failed reload replaced the material or ran the hooks")
			}
			works()
		})
	}
	// The rotation completes.
	writeFile(t, f.Cert, newCert)
	writeFile(t, f.Key, newKey)
	writeFile(t, pki.CAFile, append(oldCA, readFile(t, next.CAFile)...))
	if changed, err := s.Reload(); !changed || err != nil {
		t.Fatalf("completed rotation: changed %v, err %v", changed, err)
	}
	if s.Leaf().SerialNumber.Cmp(old.SerialNumber) == 0 || hooks.Load() != 1 {
		t.Fatal("the completed rotation did not apply")
	}
}

func TestTLSSourceOnChangeHooksRunInOrder(t *testing.T) {
	pki := certstest.New(t, "cluster")
	s := certstest.Source(t, pki.Node("n1"))
	var got []string
	var leafSeen *x509.Certificate
	s.OnChange(func() { got = append(got, "a"); leafSeen = s.Leaf() })
	s.OnChange(func() { got = append(got, "b") })
	pki.Node("n1")
	if _, err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "") != "ab" {
		t.Fatalf("hooks ran %q, want a then b", got)
	}
	if leafSeen != s.Leaf() {
		t.Fatal("a hook saw the old material")
	}
}

// secretDir lays out files the way the kubelet mounts a Secret: each name a
// symlink into ..data, itself a symlink to a timestamped directory.
type secretDir struct {
	t   *testing.T
	dir string
	gen int
}

func (d *secretDir) path(name string) string { return filepath.Join(d.dir, name) }

// update writes a new timestamped directory and swaps ..data to it, the
// way the kubelet does: a new symlink renamed over the old one.
func (d *secretDir) update(files map[string][]byte) {
	t := d.t
	t.Helper()
	d.gen++
	ts := filepath.Join(d.dir, "..2026_12_03_12_00_0"+string(rune('0'+d.gen))+".12345")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		writeFile(t, filepath.Join(ts, name), b)
		if _, err := os.Lstat(d.path(name)); errors.Is(err, os.ErrNotExist) {
			if err := os.Symlink(filepath.Join("..data", name), d.path(name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	old, _ := os.Readlink(d.path("..data"))
	tmp := d.path("..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, d.path("..data")); err != nil {
		t.Fatal(err)
	}
	if old != "" {
		os.RemoveAll(filepath.Join(d.dir, old))
	}
}

func TestTLSSourceWatchFollowsSymlinkSwap(t *testing.T) {
	pki := certstest.New(t, "cluster")
	a := pki.Node("n1")
	sec := &secretDir{t: t, dir: t.TempDir()}
	sec.update(map[string][]byte{"tls.crt": readFile(t, a.Cert), "tls.key": readFile(t, a.Key), "ca.crt": readFile(t, pki.CAFile)})
	s := certstest.Source(t, certs.Files{Cert: sec.path("tls.crt"), Key: sec.path("tls.key"), CA: []string{sec.path("ca.crt")}})
	old := s.Leaf()

	type outcome struct {
		changed bool
		err     error
	}
	reports := make(chan outcome, 16)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		s.Watch(ctx, 10*time.Millisecond, func(changed bool, err error) { reports <- outcome{changed, err} })
		close(stopped)
	}()
	defer func() { cancel(); <-stopped }()

	// Nothing changes: Watch reports nothing.
	select {
	case r := <-reports:
		t.Fatalf("report without a change: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}

	b := pki.Node("n1")
	sec.update(map[string][]byte{"tls.crt": readFile(t, b.Cert), "tls.key": readFile(t, b.Key), "ca.crt": readFile(t, pki.CAFile)})
	deadline := time.After(5 * time.Second)
	for {
		select {
		case r := <-reports:
			if r.err != nil {
				continue // a tick between two files can fail; the next one heals it
			}
			if !r.changed {
				t.Fatalf("report %+v", r)
			}
			if s.Leaf().SerialNumber.Cmp(old.SerialNumber) == 0 {
				t.Fatal("reported a change but kept the old certificate")
			}
			want := chainOf(t, b.Cert)[0]
			if !s.Leaf().Equal(want) {
				t.Fatal("Leaf is not the swapped-in certificate")
			}
			cancel()
			<-stopped
			return
		case <-deadline:
			t.Fatal("Watch did not pick up the symlink swap")
		}
	}
}

func TestTLSSourceWatchStopsWithContext(t *testing.T) {
	pki := certstest.New(t, "cluster")
	s := certstest.Source(t, pki.Node("n1"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Watch(ctx, time.Millisecond, nil); close(done) }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
}

func TestTLSCABundleRotation(t *testing.T) {
	oldCA := certstest.New(t, "cluster") // the same name: a real rotation often keeps it
	newCA := certstest.New(t, "cluster")
	oldLeaf, newLeaf := oldCA.Node("n2"), newCA.Node("n3")
	bundle := filepath.Join(t.TempDir(), "bundle.crt")
	writeFile(t, bundle, append(readFile(t, oldCA.CAFile), readFile(t, newCA.CAFile)...))

	srvFiles := newCA.Node("n1")
	srvFiles.CA = []string{bundle}
	s := certstest.Source(t, srvFiles)
	oldChain, newChain := chainOf(t, oldLeaf.Cert), chainOf(t, newLeaf.Cert)
	for name, chain := range map[string][]*x509.Certificate{"old": oldChain, "new": newChain} {
		id, err := s.Verify(chain, x509.ExtKeyUsageClientAuth)
		if err != nil {
			t.Fatalf("%s CA's leaf refused with both CAs in the bundle: %v", name, err)
		}
		if id.Role != certs.RoleNode {
			t.Errorf("identity %v", id)
		}
	}
	if got := len(s.Expiry()); got != 3 {
		t.Errorf("Expiry lists %d certificates, want the leaf and 2 CAs", got)
	}
	oldClient := certstest.Source(t, certs.Files{Cert: oldLeaf.Cert, Key: oldLeaf.Key, CA: []string{bundle}})
	if cerr, serr := handshake(t, s.ServerConfig(tls.VersionTLS13, true, nil), oldClient.ClientConfig(tls.VersionTLS13, "localhost", nil)); cerr != nil || serr != nil {
		t.Fatalf("old-CA client refused during the rotation: %v %v", cerr, serr)
	}

	// The rotation ends: the bundle holds the new CA only.
	writeFile(t, bundle, readFile(t, newCA.CAFile))
	if changed, err := s.Reload(); !changed || err != nil {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if s.Trusted(oldChain, x509.ExtKeyUsageClientAuth) {
		t.Fatal("an old-CA chain is still trusted after the old CA left the bundle")
	}
	if !s.Trusted(newChain, x509.ExtKeyUsageClientAuth) {
		t.Fatal("a new-CA chain is no longer trusted")
	}
	// The pool is read at each handshake: the running config refuses at once.
	if _, serr := handshake(t, s.ServerConfig(tls.VersionTLS13, true, nil), oldClient.ClientConfig(tls.VersionTLS13, "localhost", nil)); serr == nil {
		t.Fatal("old-CA client accepted after the rotation")
	}
}

func TestTLSLoadErrorsAreClear(t *testing.T) {
	pki := certstest.New(t, "cluster")
	n1 := pki.Node("n1")
	other := certstest.New(t, "other").Node("n1")
	dir := t.TempDir()
	noPEM := filepath.Join(dir, "nopem.crt")
	writeFile(t, noPEM, []byte("this is not PEM\n"))
	keyOnly := filepath.Join(dir, "keyonly.pem")
	writeFile(t, keyOnly, readFile(t, n1.Key))
	missing := filepath.Join(dir, "missing.crt")
	for _, tc := range []struct {
		name string
		f    certs.Files
		want []string // all in the error
	}{
		{"certificate without key", certs.Files{Cert: n1.Cert, CA: []string{pki.CAFile}}, []string{"key file"}},
		{"key without certificate", certs.Files{Key: n1.Key, CA: []string{pki.CAFile}}, []string{"certificate"}},
		{"missing certificate file", certs.Files{Cert: missing, Key: n1.Key}, []string{"certificate file", missing, "no such file"}},
		{"missing key file", certs.Files{Cert: n1.Cert, Key: missing}, []string{"key file", missing, "no such file"}},
		{"missing CA file", certs.Files{Cert: n1.Cert, Key: n1.Key, CA: []string{missing}}, []string{"CA file", missing, "no such file"}},
		{"certificate file without PEM", certs.Files{Cert: noPEM, Key: n1.Key}, []string{noPEM, "PEM"}},
		{"key file without PEM", certs.Files{Cert: n1.Cert, Key: noPEM}, []string{noPEM, "PEM"}},
		{"CA file without PEM", certs.Files{CA: []string{noPEM}}, []string{noPEM, "no PEM certificate"}},
		{"CA file with a key only", certs.Files{CA: []string{keyOnly}}, []string{keyOnly, "no PEM certificate"}},
		{"key of another certificate", certs.Files{Cert: n1.Cert, Key: other.Key}, []string{n1.Cert, other.Key, "does not match"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := certs.Load(tc.f)
			if err == nil || s != nil {
				t.Fatalf("loaded (%v)", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// Only a CA (a client without a certificate of its own).
	s, err := certs.Load(certs.Files{CA: []string{pki.CAFile}})
	if err != nil || s.HasCert() || s.Leaf() != nil {
		t.Fatalf("CA-only source: %v, HasCert %v", err, s != nil && s.HasCert())
	}
}

// gather collects metasrv_tls_cert_expiry_seconds through a pedantic
// registry (which fails on duplicate series) as label set -> value.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "metasrv_tls_cert_expiry_seconds" {
			t.Errorf("unexpected metric %s", mf.GetName())
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				if l.GetName() == "serial" {
					continue // random; checked for uniqueness by the registry
				}
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out[strings.Join(ls, ",")] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestTLSExpiryCollector(t *testing.T) {
	pki := certstest.New(t, "cluster")
	next := certstest.New(t, "cluster") // the same name: told apart by serial
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle.crt")
	writeFile(t, bundle, append(readFile(t, pki.CAFile), readFile(t, next.CAFile)...))
	peerFiles := pki.Node("n1")
	peerFiles.CA = []string{bundle, next.CAFile} // next's CA twice: once in the pool, one series
	peer := certstest.Source(t, peerFiles)
	client := certstest.Source(t, certs.Files{CA: []string{pki.CAFile}})

	now := time.Now().Add(time.Hour)
	c := certs.ExpiryCollector{Sources: map[string]*certs.Source{"peer": peer, "client": client, "unset": nil}, Now: func() time.Time { return now }}
	got := gather(t, c)
	leaf := peer.Leaf()
	want := map[string]float64{
		"ca=false,file=" + peerFiles.Cert + ",subject=n1,use=peer":   leaf.NotAfter.Sub(now).Seconds(),
		"ca=true,file=" + pki.CAFile + ",subject=cluster,use=client": pki.CA.Cert.NotAfter.Sub(now).Seconds(),
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	// The bundle's two CAs of one name are two series (told apart by
	// serial, or the pedantic registry would have failed); next's CA listed
	// a second time is not a third. peer: leaf + 2 CAs; client: 1 CA.
	if n := countSeries(t, c); n != 4 {
		t.Errorf("%d series, want 4", n)
	}
	var files []string
	for _, e := range peer.Expiry() {
		files = append(files, e.File)
	}
	if strings.Join(files, " ") != peerFiles.Cert+" "+bundle+" "+bundle {
		t.Errorf("Expiry files %q: want the leaf's, then the bundle for each of its CAs", files)
	}
	if leaf.NotAfter.Sub(now) <= 0 {
		t.Fatal("test certificates expire too soon")
	}

	// Read at scrape time: a reload shows at once.
	pki.Node("n1")
	if _, err := peer.Reload(); err != nil {
		t.Fatal(err)
	}
	again := gather(t, c)
	k := "ca=false,file=" + peerFiles.Cert + ",subject=n1,use=peer"
	if again[k] != peer.Leaf().NotAfter.Sub(now).Seconds() {
		t.Errorf("after reload %s = %v", k, again[k])
	}
	// Negative once expired.
	past := certs.ExpiryCollector{Sources: map[string]*certs.Source{"peer": peer}, Now: func() time.Time { return leaf.NotAfter.Add(48 * time.Hour) }}
	for k, v := range gather(t, past) {
		if v >= 0 {
			t.Errorf("%s = %v after expiry, want negative", k, v)
		}
	}
}

func countSeries(t *testing.T, c prometheus.Collector) int {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	return n
}

// rootWithIntermediate makes a root that may sign one intermediate CA, and
// that intermediate as an Authority.
func rootWithIntermediate(t *testing.T) (rootPEM []byte, inter *certs.Authority) {
	t.Helper()
	mk := func(tmpl, parent *x509.Certificate, pub any, signer any) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true, MaxPathLen: 1,
	}
	root := mk(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	interKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	interCert := mk(&x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "intermediate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}, root, &interKey.PublicKey, rootKey)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), &certs.Authority{Cert: interCert, Key: interKey}
}

func TestTLSIntermediates(t *testing.T) {
	rootPEM, inter := rootWithIntermediate(t)
	dir := t.TempDir()
	rootFile := filepath.Join(dir, "root.crt")
	writeFile(t, rootFile, rootPEM)
	issue := func(name string) certs.Files {
		c, k, err := inter.Issue(certs.Request{Role: certs.RoleNode, Name: name, Hosts: []string{"localhost", "127.0.0.1"}, Validity: time.Hour, Server: true, Client: true})
		if err != nil {
			t.Fatal(err)
		}
		f := certs.Files{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), CA: []string{rootFile}}
		// The certificate file carries the intermediate after the leaf.
		if err := certs.WriteFiles(f.Cert, append(c, inter.CertPEM()...), f.Key, k, false); err != nil {
			t.Fatal(err)
		}
		return f
	}
	srv, cli := certstest.Source(t, issue("n1")), certstest.Source(t, issue("n2"))
	if cerr, serr := handshake(t, srv.ServerConfig(tls.VersionTLS13, true, nil), cli.ClientConfig(tls.VersionTLS13, "127.0.0.1", nil)); cerr != nil || serr != nil {
		t.Fatalf("chain through an intermediate refused: client %v, server %v", cerr, serr)
	}
	chain := chainOf(t, filepath.Join(dir, "n2.crt"))
	if _, err := srv.Verify(chain, x509.ExtKeyUsageClientAuth); err != nil {
		t.Fatalf("Verify with the intermediate: %v", err)
	}
	if _, err := srv.Verify(chain[:1], x509.ExtKeyUsageClientAuth); err == nil {
		t.Fatal("a leaf without its intermediate verified against the root alone")
	}
}

func TestTLSExtKeyUsageEnforced(t *testing.T) {
	pki := certstest.New(t, "cluster")
	pool := certstest.Source(t, certs.Files{CA: []string{pki.CAFile}})
	chain := func(r certs.Request) []*x509.Certificate {
		c, _ := pki.Issue(r, r.Name)
		return chainOf(t, c)
	}
	srvOnly := certs.Request{Role: certs.RoleNode, Name: "srv-only", Server: true}
	cliOnly := certs.Request{Role: certs.RoleClient, Name: "cli-only", Client: true}
	none := certs.Request{Role: certs.RoleNode, Name: "no-eku"}
	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		usage x509.ExtKeyUsage
		ok    bool
	}{
		{"server certificate as client", chain(srvOnly), x509.ExtKeyUsageClientAuth, false},
		{"server certificate as server", chain(srvOnly), x509.ExtKeyUsageServerAuth, true},
		{"client certificate as server", chain(cliOnly), x509.ExtKeyUsageServerAuth, false},
		{"client certificate as client", chain(cliOnly), x509.ExtKeyUsageClientAuth, true},
		{"no extended key usage as client", chain(none), x509.ExtKeyUsageClientAuth, false},
		{"no extended key usage as server", chain(none), x509.ExtKeyUsageServerAuth, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pool.Verify(tc.chain, tc.usage)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok %v", err, tc.ok)
			}
			if pool.Trusted(tc.chain, tc.usage) != tc.ok {
				t.Fatal("Trusted disagrees with Verify")
			}
		})
	}
	// In a handshake: a certificate without client use is refused as a client.
	srv := certstest.Source(t, pki.Node("n1"))
	for _, r := range []certs.Request{srvOnly, none} {
		c, k := pki.Issue(r, r.Name)
		cli := certstest.Source(t, certs.Files{Cert: c, Key: k, CA: []string{pki.CAFile}})
		if _, serr := handshake(t, srv.ServerConfig(tls.VersionTLS13, true, nil), cli.ClientConfig(tls.VersionTLS13, "localhost", nil)); serr == nil {
			t.Errorf("%s accepted as a client", r.Name)
		}
		// And as a server, one without server use.
	}
	c, k := pki.Issue(none, "no-eku-srv")
	noEKUServer := certstest.Source(t, certs.Files{Cert: c, Key: k, CA: []string{pki.CAFile}})
	anon := certstest.Source(t, certs.Files{CA: []string{pki.CAFile}})
	if cerr, _ := handshake(t, noEKUServer.ServerConfig(tls.VersionTLS13, false, nil), anon.ClientConfig(tls.VersionTLS13, "localhost", nil)); cerr == nil {
		t.Error("a server certificate without extended key usage accepted")
	}
}

func TestTLSClientConfigHostnames(t *testing.T) {
	pki := certstest.New(t, "cluster")
	c, k := pki.Issue(certs.Request{Role: certs.RoleNode, Name: "n1", Hosts: []string{"meta-1.example", "127.0.0.1", "::1", "10.1.2.3"}, Server: true, Client: true}, "")
	srv := certstest.Source(t, certs.Files{Cert: c, Key: k, CA: []string{pki.CAFile}})
	cli := certstest.Source(t, pki.Client("alice"))
	for _, tc := range []struct {
		serverName string
		ok         bool
	}{
		{"127.0.0.1", true},
		{"::1", true},
		{"[::1]", true},
		{"0:0:0:0:0:0:0:1", true},
		{"10.1.2.3", true},
		{"meta-1.example", true},
		{"META-1.example", true},
		{"127.0.0.2", false},
		{"::2", false},
		{"localhost", false}, // not in this certificate
		{"", false},
		{"other.example", false},
	} {
		t.Run(tc.serverName, func(t *testing.T) {
			cerr, serr := handshake(t, srv.ServerConfig(tls.VersionTLS13, false, nil), cli.ClientConfig(tls.VersionTLS13, tc.serverName, nil))
			if tc.ok && (cerr != nil || serr != nil) {
				t.Fatalf("refused: client %v, server %v", cerr, serr)
			}
			if !tc.ok && cerr == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestTLSAcceptRefusalWrapsErrIdentity(t *testing.T) {
	pki := certstest.New(t, "cluster")
	srv := certstest.Source(t, pki.Node("n1"))
	cli := certstest.Source(t, pki.Datanode(7))
	refuse := func(id certs.Identity) error { return errors.New("no datanodes here") }
	cfg := srv.ServerConfig(tls.VersionTLS13, true, refuse)
	_, serr := handshake(t, cfg, cli.ClientConfig(tls.VersionTLS13, "localhost", nil))
	if !errors.Is(serr, certs.ErrIdentity) || !strings.Contains(serr.Error(), "metasrv-datanode/datanode-7") {
		t.Fatalf("server error %v, want ErrIdentity naming the peer", serr)
	}
}

func TestTLSAuthorityLoadAndIssue(t *testing.T) {
	dir := t.TempDir()
	a, err := certs.NewAuthority("ca one", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := certs.NewAuthority("ca two", 24*time.Hour)
	aKey, _ := a.KeyPEM()
	bundle := filepath.Join(dir, "bundle.crt")
	writeFile(t, bundle, append(b.CertPEM(), a.CertPEM()...))

	// A bundle: the certificate that is the key's is the CA.
	keyFile := filepath.Join(dir, "a.key")
	writeFile(t, keyFile, aKey)
	got, err := certs.LoadAuthority(bundle, keyFile)
	if err != nil || !got.Cert.Equal(a.Cert) {
		t.Fatalf("LoadAuthority(bundle): %v", err)
	}
	// openssl's SEC 1 form, after an EC PARAMETERS block.
	der, _ := x509.MarshalECPrivateKey(a.Key.(*ecdsa.PrivateKey))
	sec1 := filepath.Join(dir, "a-sec1.key")
	writeFile(t, sec1, append([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})...))
	if _, err := certs.LoadAuthority(bundle, sec1); err != nil {
		t.Fatalf("SEC 1 key: %v", err)
	}
	// The key of no certificate in the file.
	c, _ := certs.NewAuthority("ca three", time.Hour)
	cKey, _ := c.KeyPEM()
	writeFile(t, keyFile, cKey)
	if _, err := certs.LoadAuthority(bundle, keyFile); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("mismatched key: %v", err)
	}
	if _, err := certs.LoadAuthority(filepath.Join(dir, "missing.crt"), keyFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing CA: %v, want ErrNotExist", err)
	}

	// Validity: positive, and never past the CA.
	if _, _, err := a.Issue(certs.Request{Name: "x", Validity: 0}); err == nil {
		t.Error("zero validity issued")
	}
	if _, err := certs.NewAuthority("x", -time.Hour); err == nil {
		t.Error("negative CA validity accepted")
	}
	cp, _, err := a.Issue(certs.Request{Name: "x", Validity: 365 * 24 * time.Hour, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(cp)
	leaf, _ := x509.ParseCertificate(blk.Bytes)
	if leaf.NotAfter.After(a.Cert.NotAfter) {
		t.Errorf("leaf outlives its CA: %v > %v", leaf.NotAfter, a.Cert.NotAfter)
	}
	if clamped, until := a.Clamped(365 * 24 * time.Hour); !clamped || !until.Equal(a.Cert.NotAfter) {
		t.Errorf("Clamped = %v, %v", clamped, until)
	}
	if clamped, _ := a.Clamped(time.Hour); clamped {
		t.Error("an hour within a day's CA reported clamped")
	}
	// Hosts once each, IPs normalised.
	cp, _, _ = a.Issue(certs.Request{Name: "y", Validity: time.Hour, Hosts: []string{"a.example", "a.example", "::1", "0:0::1", "", "127.0.0.1"}})
	blk, _ = pem.Decode(cp)
	leaf, _ = x509.ParseCertificate(blk.Bytes)
	if len(leaf.DNSNames) != 1 || len(leaf.IPAddresses) != 2 {
		t.Errorf("SANs %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
}

func TestTLSWriteFiles(t *testing.T) {
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "x.crt"), filepath.Join(dir, "x.key")
	// A key file that was world-readable is 0600 after a forced write.
	writeFile(t, key, []byte("old"))
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteFiles(crt, []byte("c"), key, []byte("k"), false); !errors.Is(err, certs.ErrExists) {
		t.Fatalf("without force: %v", err)
	}
	if _, err := os.Stat(crt); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the certificate was written although the key exists")
	}
	if err := certs.WriteFiles(crt, []byte("c"), key, []byte("k"), true); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{crt: 0o644, key: 0o600} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	if !bytes.Equal(readFile(t, key), []byte("k")) {
		t.Error("key not replaced")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("%d files in dir, want 2 (no temporary files left)", len(ents))
	}
}
