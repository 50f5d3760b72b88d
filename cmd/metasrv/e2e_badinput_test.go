package main

// End-to-end tests of rejected input: bad parameters and bodies, unknown
// routes, wrong methods, the admin token, and bad command-line flags.
// After every rejected request nothing may have been applied.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
	"github.com/metasrv/metasrv/server/certs/certstest"
	"github.com/metasrv/metasrv/server/wire"
)

// TestBadInputIsRejectedAndNothingApplied sends every kind of bad request
// to the leader and to a follower (input is checked before forwarding).
func TestBadInputIsRejectedAndNothingApplied(t *testing.T) {
	c := startCluster(t)
	leader := c.waitReady(c.Nodes()...)
	f := localcluster.Followers(leader, c.Nodes())[0]
	// Start from a known, non-default state so a stray write shows.
	wantEnabled(t, "setup", c.must(http.MethodPost, leader.URL("/admin/maintenance?enable=true&reason=setup&by=test"), nil), true)

	joinBody := func(s string) []byte { return []byte(s) }
	huge := bytes.Repeat([]byte("x"), 1<<20+10)
	hugeJSON := append(append([]byte(`{"id":"n9","raft_addr":"127.0.0.1:1","rpc_addr":"127.0.0.1:2","pad":"`), huge...), '"', '}')
	cases := []struct {
		name         string
		method, path string
		body         []byte
		status       int
	}{
		{"enable=foo", http.MethodPost, "/admin/maintenance?enable=foo", nil, 400},
		{"enable= (empty)", http.MethodPost, "/admin/maintenance?enable=", nil, 400},
		{"enable=1", http.MethodPost, "/admin/maintenance?enable=1", nil, 400},
		{"enable=TRUE", http.MethodPost, "/admin/maintenance?enable=TRUE", nil, 400},
		{"bare enable", http.MethodPost, "/admin/maintenance?enable", nil, 400},
		{"POST without enable", http.MethodPost, "/admin/maintenance", nil, 400},
		{"PUT without enable", http.MethodPut, "/admin/maintenance", nil, 400},
		{"PUT enable=yes", http.MethodPut, "/admin/maintenance?enable=yes", nil, 400},
		{"legacy GET enable=foo", http.MethodGet, "/admin/maintenance?enable=foo", nil, 400},
		{"ttl=banana", http.MethodPost, "/admin/maintenance?enable=true&ttl=banana", nil, 400},
		{"ttl=-1s", http.MethodPost, "/admin/maintenance?enable=true&ttl=-1s", nil, 400},
		{"ttl=0s", http.MethodPost, "/admin/maintenance?enable=true&ttl=0s", nil, 400},
		{"ttl= (empty)", http.MethodPost, "/admin/maintenance?enable=true&ttl=", nil, 400},
		{"ttl on disable", http.MethodPost, "/admin/maintenance?enable=false&ttl=1h", nil, 400},
		{"ttl on /disable", http.MethodPost, "/admin/maintenance/disable?ttl=1h", nil, 400},
		{"ttl=-1s on /enable", http.MethodPost, "/admin/maintenance/enable?ttl=-1s", nil, 400},
		{"if_epoch=abc", http.MethodPost, "/admin/maintenance?enable=false&if_epoch=abc", nil, 400},
		{"if_epoch=-1", http.MethodPost, "/admin/maintenance?enable=false&if_epoch=-1", nil, 400},
		{"empty by", http.MethodPost, "/admin/maintenance?enable=false&by=", nil, 400},
		{"verbose=maybe", http.MethodGet, "/admin/maintenance?verbose=maybe", nil, 400},
		{"stale=maybe", http.MethodGet, "/admin/maintenance?stale=maybe", nil, 400},
		{"events since=x", http.MethodGet, "/admin/events?since=x", nil, 400},
		{"join: oversized body", http.MethodPost, "/admin/cluster/join", hugeJSON, 413},
		{"join: not JSON", http.MethodPost, "/admin/cluster/join", joinBody("id=n9&raft_addr=x"), 400},
		{"join: empty body", http.MethodPost, "/admin/cluster/join", nil, 400},
		{"join: truncated JSON", http.MethodPost, "/admin/cluster/join", joinBody(`{"id":"n9",`), 400},
		{"join: trailing data", http.MethodPost, "/admin/cluster/join", joinBody(`{"id":"n9","raft_addr":"127.0.0.1:1","rpc_addr":"127.0.0.1:2"} {}`), 400},
		{"join: missing addresses", http.MethodPost, "/admin/cluster/join", joinBody(`{"id":"n9"}`), 400},
		{"join: bad id", http.MethodPost, "/admin/cluster/join", joinBody(`{"id":"a b","raft_addr":"127.0.0.1:1","rpc_addr":"127.0.0.1:2"}`), 400},
		{"unknown route", http.MethodGet, "/admin/nope", nil, 404},
		{"unknown route POST", http.MethodPost, "/admin/maintenance/toggle?enable=true", nil, 404},
		{"trailing slash", http.MethodPost, "/admin/maintenance/?enable=false", nil, 404},
		{"root", http.MethodGet, "/", nil, 404},
		{"remove unknown member", http.MethodDelete, "/admin/cluster/members/n9", nil, 404},
		{"remove the leader", http.MethodDelete, "/admin/cluster/members/" + leader.ID, nil, 409},
	}
	for _, n := range []*localcluster.Node{leader, f} {
		for _, tc := range cases {
			before := c.verbose(leader)
			r := c.must(tc.method, n.URL(tc.path), tc.body, "Content-Type", "application/json")
			what := fmt.Sprintf("%s %s %s (%s)", n.ID, tc.method, tc.path, tc.name)
			if r.Code != tc.status {
				t.Fatalf("%s: %s, want %d", what, r, tc.status)
			}
			if _, err := errorBodyOf(r); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("%s: Content-Type %q", what, ct)
			}
			if after := c.verbose(leader); !sameMaintenance(after, before) {
				t.Fatalf("%s: a rejected request changed the state: %+v → %+v", what, before, after)
			}
		}
	}
	// Nothing joined, nothing removed.
	v, err := c.clusterView(leader)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Members) != 3 {
		t.Fatalf("members after rejected joins: %+v", v.Members)
	}

	// Wrong method on a known route: 405 with Allow, nothing applied.
	methodCases := []struct {
		method, path, allow string
	}{
		{http.MethodDelete, "/admin/maintenance?enable=false", "GET, HEAD, POST, PUT"},
		{http.MethodPatch, "/admin/maintenance?enable=false", "GET, HEAD, POST, PUT"},
		{http.MethodGet, "/admin/maintenance/enable", "POST"},
		{http.MethodPut, "/admin/maintenance/disable", "POST"},
		{http.MethodPost, "/admin/maintenance/status", "GET, HEAD"},
		{http.MethodPost, "/admin/health", "GET, HEAD"},
		{http.MethodDelete, "/admin/leader", "GET, HEAD"},
		{http.MethodGet, "/admin/cluster/join", "POST"},
		{http.MethodPost, "/admin/cluster/members/n2", "DELETE, PUT"},
		{http.MethodPost, "/admin/events", "GET, HEAD"},
		{http.MethodPost, "/metrics", "GET, HEAD"},
	}
	for _, n := range []*localcluster.Node{leader, f} {
		for _, mc := range methodCases {
			before := c.verbose(leader)
			r := c.must(mc.method, n.URL(mc.path), nil)
			what := fmt.Sprintf("%s %s %s", n.ID, mc.method, mc.path)
			if r.Code != http.StatusMethodNotAllowed {
				t.Fatalf("%s: %s, want 405", what, r)
			}
			if got := r.Header.Get("Allow"); got != mc.allow {
				t.Fatalf("%s: Allow %q, want %q", what, got, mc.allow)
			}
			if _, err := errorBodyOf(r); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if after := c.verbose(leader); !sameMaintenance(after, before) {
				t.Fatalf("%s: changed the state: %+v → %+v", what, before, after)
			}
		}
	}

	// Unknown parameter names are ignored: the write applies.
	before := c.verbose(leader)
	wantEnabled(t, "unknown parameters", c.must(http.MethodPost, f.URL("/admin/maintenance?enable=false&foo=bar&Enable=true&force"), nil), false)
	if after := c.verbose(leader); after.Epoch != before.Epoch+1 || after.Enabled {
		t.Fatalf("write with unknown parameters: %+v → %+v", before, after)
	}
	wantEnabled(t, "unknown parameters on a read", c.must(http.MethodGet, f.URL("/admin/maintenance?foo=bar"), nil), false)
}

func sameMaintenance(a, b wire.Maintenance) bool {
	eq := func(x, y *time.Time) bool {
		if x == nil || y == nil {
			return x == y
		}
		return x.Equal(*y)
	}
	return a.Enabled == b.Enabled && a.Epoch == b.Epoch && a.Reason == b.Reason && a.By == b.By &&
		eq(a.Since, b.Since) && eq(a.ExpiresAt, b.ExpiresAt)
}

// TestAdminToken checks that with --admin-token every /admin write needs
// the bearer token (401 otherwise, nothing applied), reads do not, and a
// follower forwards the token with the writes it proxies.
func TestAdminToken(t *testing.T) {
	const token = "s3cret-token"
	c := startCluster(t, "--admin-token", token)
	leader := c.waitReady(c.Nodes()...)
	f := localcluster.Followers(leader, c.Nodes())[0]
	auth := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	writes := []struct{ method, path string }{
		{http.MethodPost, "/admin/maintenance?enable=true"},
		{http.MethodPut, "/admin/maintenance?enable=true"},
		{http.MethodGet, "/admin/maintenance?enable=true"}, // the legacy GET setter is a write
		{http.MethodPost, "/admin/maintenance/enable"},
		{http.MethodPost, "/admin/maintenance/disable"},
		{http.MethodDelete, "/admin/cluster/members/" + f.ID},
		{http.MethodPost, "/admin/cluster/transfer-leadership"},
	}
	for _, n := range []*localcluster.Node{leader, f} {
		for _, w := range writes {
			for _, hdrs := range [][]string{nil, auth("wrong"), {"Authorization", token}, {"Authorization", "Basic " + token}} {
				before := c.verbose(leader)
				r := c.must(w.method, n.URL(w.path), nil, hdrs...)
				what := fmt.Sprintf("%s %s %s with %q", n.ID, w.method, w.path, hdrs)
				if r.Code != http.StatusUnauthorized {
					t.Fatalf("%s: %s, want 401", what, r)
				}
				if e, err := errorBodyOf(r); err != nil || e.Code != "unauthorized" {
					t.Fatalf("%s: body %s (%v), want code unauthorized", what, r.Body, err)
				}
				if after := c.verbose(leader); !sameMaintenance(after, before) {
					t.Fatalf("%s: changed the state: %+v → %+v", what, before, after)
				}
			}
		}
	}
	if v, err := c.clusterView(leader); err != nil || len(v.Members) != 3 || v.LeaderID != leader.ID {
		t.Fatalf("cluster after unauthorized writes: %+v %v", v, err)
	}

	// Reads need no token.
	wantEnabled(t, "read without token", c.must(http.MethodGet, f.URL("/admin/maintenance"), nil), false)
	c.mustOK(http.MethodGet, f.URL("/admin/events"), nil)
	c.mustOK(http.MethodGet, f.URL("/admin/cluster"), nil)

	// With the token: on the leader, and through the follower (which must
	// pass the token on, or the leader would answer 401).
	wantEnabled(t, "leader write with token", c.must(http.MethodPost, leader.URL("/admin/maintenance?enable=true&reason=tok"), nil, auth(token)...), true)
	wantEnabled(t, "follower write with token", c.must(http.MethodPost, f.URL("/admin/maintenance?enable=false&reason=tok2"), nil, auth(token)...), false)
	wantEnabled(t, "follower legacy GET with token", c.must(http.MethodGet, f.URL("/admin/maintenance?enable=true"), nil, auth(token)...), true)
	c.everywhereEnabled(true, c.Nodes()...)
	m := c.verbose(f)
	if m.Reason != "" || !m.Enabled {
		t.Fatalf("state after token writes: %+v", m)
	}
	r := c.mustOK(http.MethodGet, f.URL("/metrics"), nil)
	if !strings.Contains(string(r.Body), `metasrv_forwarded_requests_total{outcome="ok"}`) {
		t.Fatalf("follower %s did not count its forwarded writes", f.ID)
	}
}

// TestBadFlagsExitNonZeroWithOneLine runs the binary with bad flags and
// environment: it must exit non-zero at once with one line on stderr.
func TestBadFlagsExitNonZeroWithOneLine(t *testing.T) {
	dir := t.TempDir()
	// Addresses no test cluster uses, so a case that wrongly starts a node
	// cannot disturb anything (and is killed by the context).
	safe := []string{"--data-dir", filepath.Join(dir, "data"), "--rpc-addr", "127.0.0.2:17098", "--raft-addr", "127.0.0.2:17099"}
	cases := []struct {
		name string
		args []string
		env  []string
	}{
		{"unknown flag", append([]string{"--node-id", "n1", "--bogus"}, safe...), nil},
		{"unknown flag with value", append([]string{"--node-id", "n1", "--bogus=3"}, safe...), nil},
		{"missing node id", safe, nil},
		{"bad duration", append([]string{"--node-id", "n1", "--raft-heartbeat-timeout", "banana"}, safe...), nil},
		{"bad duration from env", append([]string{"--node-id", "n1"}, safe...), []string{"METASRV_LEADER_WAIT=soon"}},
		{"bad int", append([]string{"--node-id", "n1", "--snapshot-retain", "many"}, safe...), nil},
		{"negative snapshot retain", append([]string{"--node-id", "n1", "--snapshot-retain", "-1"}, safe...), nil},
		{"bad peers", append([]string{"--node-id", "n1", "--peers", "n1"}, safe...), nil},
		{"peers without self", append([]string{"--node-id", "n1", "--peers", "n2=127.0.0.2:3"}, safe...), nil},
		{"duplicate peers", append([]string{"--node-id", "n1", "--peers", "n1=127.0.0.2:2,n1=127.0.0.2:3"}, safe...), nil},
		{"bad cluster state", append([]string{"--node-id", "n1", "--initial-cluster-state", "old"}, safe...), nil},
		{"bad log level", append([]string{"--node-id", "n1", "--log-level", "loud"}, safe...), nil},
		{"bad rpc addr", []string{"--node-id", "n1", "--data-dir", filepath.Join(dir, "d2"), "--rpc-addr", "nope", "--raft-addr", "127.0.0.2:17099"}, nil},
		{"bad join addr", append([]string{"--node-id", "n1", "--join", "nope"}, safe...), nil},
		{"wildcard without advertise", []string{"--node-id", "n1", "--data-dir", filepath.Join(dir, "d3"), "--rpc-addr", "0.0.0.0:17098", "--raft-addr", "127.0.0.2:17099"}, nil},
		{"lease above heartbeat", append([]string{"--node-id", "n1", "--raft-heartbeat-timeout", "100ms", "--raft-leader-lease-timeout", "1s"}, safe...), nil},
		{"too short timeout", append([]string{"--node-id", "n1", "--leader-wait", "1ns"}, safe...), nil},
		{"stray argument", append([]string{"--node-id", "n1", "extra"}, safe...), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, metasrvBin, tc.args...)
			cmd.Env = append(cleanEnv(), tc.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("metasrv %q did not exit (it must refuse the flags at once)", tc.args)
			}
			if err == nil {
				t.Fatalf("metasrv %q exited 0; stderr %q", tc.args, stderr.String())
			}
			if _, ok := err.(*exec.ExitError); !ok {
				t.Fatalf("run: %v", err)
			}
			msg := stderr.String()
			if strings.Count(msg, "\n") != 1 || !strings.HasSuffix(msg, "\n") || len(strings.TrimSpace(msg)) < 10 {
				t.Fatalf("metasrv %q: stderr must be one clear line, got %q", tc.args, msg)
			}
			if !strings.HasPrefix(msg, "metasrv: ") {
				t.Fatalf("stderr %q: want it to start with \"metasrv: \"", msg)
			}
			if stdout.Len() != 0 {
				t.Fatalf("stdout %q, want nothing", stdout.String())
			}
		})
	}

	// --help and --version succeed.
	for _, args := range [][]string{{"--help"}, {"--version"}} {
		out, err := exec.Command(metasrvBin, args...).Output()
		if err != nil {
			t.Fatalf("metasrv %v: %v", args, err)
		}
		if args[0] == "--version" && !strings.HasPrefix(string(out), "metasrv ") {
			t.Fatalf("--version: %q", out)
		}
		if args[0] == "--help" {
			for _, fl := range []string{"--node-id", "--rpc-addr", "--raft-addr", "--peers", "--join", "--leader-wait", "--admin-token", "METASRV_RPC_ADDR"} {
				if !strings.Contains(string(out), fl) {
					t.Fatalf("--help does not mention %s", fl)
				}
			}
		}
	}
}

// cleanEnv is the test's environment without METASRV_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "METASRV_") {
			env = append(env, kv)
		}
	}
	return env
}

// Plaintext is for loopback only: off loopback without TLS or --insecure
// the node exits 2 naming the flags it needs; so do unusable certificates.
func TestPlaintextOffLoopbackAndBadCertificatesExit2(t *testing.T) {
	dir := t.TempDir()
	pki := certstest.New(t, "cluster")
	n1 := pki.Node("n1")
	base := []string{"--node-id", "n1", "--data-dir", filepath.Join(dir, "data")}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"raft on every interface", []string{"--rpc-addr", "127.0.0.2:17198", "--raft-addr", "0.0.0.0:17199", "--advertise-raft-addr", "10.1.1.1:17199"},
			"--peer-cert-file, --peer-key-file and --peer-trusted-ca-file"},
		{"API on every interface", []string{"--rpc-addr", "0.0.0.0:17198", "--advertise-rpc-addr", "10.1.1.1:17198", "--raft-addr", "127.0.0.2:17199"},
			"--cert-file and --key-file"},
		{"peer files incomplete", []string{"--rpc-addr", "127.0.0.2:17198", "--raft-addr", "127.0.0.2:17199", "--peer-cert-file", n1.Cert}, "--peer-key-file"},
		{"peer certificate of another id", []string{"--node-id", "n2", "--rpc-addr", "127.0.0.2:17198", "--raft-addr", "127.0.0.2:17199",
			"--peer-cert-file", n1.Cert, "--peer-key-file", n1.Key, "--peer-trusted-ca-file", pki.CAFile}, "not --node-id"},
		{"missing certificate file", []string{"--rpc-addr", "127.0.0.2:17198", "--raft-addr", "127.0.0.2:17199", "--cert-file", filepath.Join(dir, "none.crt"), "--key-file", n1.Key}, "none.crt"},
		{"client cert auth without HTTPS", []string{"--rpc-addr", "127.0.0.2:17198", "--raft-addr", "127.0.0.2:17199", "--client-cert-auth"}, "--client-cert-auth needs HTTPS"},
		{"accept plaintext without peer TLS", []string{"--rpc-addr", "127.0.0.2:17198", "--raft-addr", "127.0.0.2:17199", "--peer-accept-plaintext"}, "--peer-accept-plaintext needs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, metasrvBin, append(append([]string{}, base...), tc.args...)...)
			cmd.Env = cleanEnv()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want 2; stderr %q", err, stderr.String())
			}
			msg := stderr.String()
			if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, tc.want) {
				t.Fatalf("stderr %q: want one line naming %q", msg, tc.want)
			}
		})
	}
}
