package auth_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metasrv/metasrv/server/auth"
)

func TestTokenFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	files := auth.Files{
		Admin:    write("admin", "# operators\n\nalice:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nalice:short\n"),
		Read:     write("read", "bob:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"),
		Datanode: write("dn", "datanode-7:dddddddddddddddddddddddddddddddddddd\nfleet:ffffffffffffffffffffffffffffffffffff\n"),
	}
	tok, err := auth.LoadTokens(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		secret string
		want   auth.Identity
		ok     bool
	}{
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", auth.Identity{Name: "alice", Scope: auth.ScopeAdmin, Via: "token"}, true},
		{"short", auth.Identity{Name: "alice", Scope: auth.ScopeAdmin, Via: "token"}, true},
		{"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", auth.Identity{Name: "bob", Scope: auth.ScopeRead, Via: "token"}, true},
		{"dddddddddddddddddddddddddddddddddddd", auth.Identity{Name: "datanode-7", Scope: auth.ScopeDatanode, DatanodeID: 7, Via: "token"}, true},
		{"ffffffffffffffffffffffffffffffffffff", auth.Identity{Name: "fleet", Scope: auth.ScopeDatanode, Via: "token"}, true},
		{"nope", auth.Identity{}, false},
		{"", auth.Identity{}, false},
	} {
		got, ok := tok.Lookup(tc.secret)
		if ok != tc.ok || got != tc.want {
			t.Errorf("Lookup(%q) = %+v %t, want %+v %t", tc.secret, got, ok, tc.want, tc.ok)
		}
	}
	if w := tok.Warnings(); len(w) != 1 || !strings.Contains(w[0], "alice") {
		t.Errorf("warnings %v, want one about alice's short secret", w)
	}
	if tok.Own() != "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" || tok.OwnRead() != "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" {
		t.Errorf("Own %q OwnRead %q", tok.Own(), tok.OwnRead())
	}
	// A malformed file fails the reload and keeps the old tokens.
	write("admin", "alice\n")
	if err := tok.Reload(); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("reload of a malformed file: %v", err)
	}
	if _, ok := tok.Lookup("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); !ok {
		t.Fatal("a failed reload dropped the old tokens")
	}
	if _, err := auth.LoadTokens(auth.Files{Admin: filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("a missing file loaded")
	}
}

func TestIdentityFromCertificate(t *testing.T) {
	cs := func(org, ou []string, cn string) *tls.ConnectionState {
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{Organization: org, OrganizationalUnit: ou, CommonName: cn}}}}
	}
	for _, tc := range []struct {
		name string
		cs   *tls.ConnectionState
		want auth.Identity
	}{
		{"member", cs([]string{"metasrv-node"}, nil, "n1"), auth.Identity{Name: "n1", Scope: auth.ScopePeer, Via: "certificate"}},
		{"datanode", cs([]string{"metasrv-datanode"}, nil, "datanode-3"), auth.Identity{Name: "datanode-3", Scope: auth.ScopeDatanode, DatanodeID: 3, Via: "certificate"}},
		{"datanode with a bad name", cs([]string{"metasrv-datanode"}, nil, "dn3"), auth.Identity{Name: "dn3", Via: "certificate"}},
		{"operator", cs([]string{"metasrv-client"}, nil, "alice"), auth.Identity{Name: "alice", Scope: auth.ScopeAdmin, Via: "certificate"}},
		{"read-only operator", cs([]string{"metasrv-client"}, []string{"read"}, "bob"), auth.Identity{Name: "bob", Scope: auth.ScopeRead, Via: "certificate"}},
		{"organisation's own PKI", cs([]string{"Example Corp"}, nil, "carol"), auth.Identity{Name: "carol", Scope: auth.ScopeAdmin, Via: "certificate"}},
	} {
		got, ok := auth.FromCertificate(tc.cs)
		if !ok || got != tc.want {
			t.Errorf("%s: %+v %t, want %+v", tc.name, got, ok, tc.want)
		}
	}
	if _, ok := auth.FromCertificate(&tls.ConnectionState{}); ok {
		t.Error("no certificate gave an identity")
	}
}
