package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metasrv/metasrv/server/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fakeAPI serves canned answers of the metasrv API.
type fakeAPI struct {
	srv     *httptest.Server
	mu      sync.Mutex
	answers map[string]fakeAnswer // by "METHOD /path"
	seen    []string              // "METHOD /path?query" and Authorization
	peer    *fakeAPI              // a second member, named PEER in answers
}

type fakeAnswer struct {
	status int
	body   string
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{answers: map[string]fakeAnswer{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization"))
		a, ok := f.answers[r.Method+" "+r.URL.Path]
		f.mu.Unlock()
		if !ok {
			a = fakeAnswer{http.StatusNotFound, `{"code":"not_found","error":"no route"}`}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		body := a.body
		if f.peer != nil {
			body = strings.ReplaceAll(body, "PEER", f.peer.addr())
		}
		fmt.Fprint(w, strings.ReplaceAll(body, "SELF", f.addr()))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeAPI) set(key string, status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[key] = fakeAnswer{status, body}
}

func (f *fakeAPI) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

// runCLI runs metactl in process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb, false)
	return code, out.String(), errb.String()
}

// A cluster of three members (the second a follower that is not ready,
// the third unreachable), maintenance on, three datanodes (one failed)
// and six regions.
func (f *fakeAPI) healthy(t *testing.T) {
	f.peer = newFakeAPI(t)
	f.peer.set("GET /admin/raft", 200, `{"node_id":"m2","state":"follower","term":4,"leader_id":"m1","commit_index":120,"applied_index":97}`)
	f.peer.set("GET /admin/ready", 503, `{"code":"not_ready","error":"applied index 97 is behind the leader's 120","ready":false}`)
	f.set("GET /admin/cluster", 200, `{"cluster_id":"c-1","node_id":"m1","leader_id":"m1","leader_rpc_addr":"SELF","state":"leader","term":4,
"members":[{"id":"m1","raft_addr":"10.0.0.1:3003","rpc_addr":"SELF","suffrage":"voter","version":"v1.2.0","leader":true,"reachable":true},
{"id":"m2","raft_addr":"10.0.0.2:3003","rpc_addr":"PEER","suffrage":"voter","version":"v1.2.0","reachable":true},
{"id":"m3","raft_addr":"10.0.0.3:3003","rpc_addr":"127.0.0.1:1","suffrage":"voter","version":"v1.1.0"}]}`)
	f.set("GET /admin/raft", 200, `{"node_id":"m1","state":"leader","term":4,"leader_id":"m1","commit_index":120,"applied_index":120}`)
	f.set("GET /admin/ready", 200, `{"applied_index":120,"leader_id":"m1","node_id":"m1","ready":true}`)
	f.set("GET /admin/maintenance/status", 200, `{"enabled":true,"epoch":7,"reason":"kernel upgrade","by":"alice","since":"2026-01-02T03:04:05Z","expires_at":"2026-01-02T05:04:05Z"}`)
	f.set("GET /admin/datanodes", 200, `[{"id":1,"addr":"10.0.1.1:4001","status":"alive","regions":3,"admin_state":"active","seconds_since_heartbeat":0.5},
{"id":2,"addr":"10.0.1.2:4001","status":"failed","regions":2,"admin_state":"active","seconds_since_heartbeat":31,"lease_expired":true,"failover_deferred":true},
{"id":3,"addr":"10.0.1.3:4001","status":"alive","regions":1,"admin_state":"cordoned","seconds_since_heartbeat":0.2}]`)
	f.set("GET /admin/regions", 200, `[{"id":1,"table":"t","datanode":1},{"id":2,"table":"t","datanode":1},{"id":3,"table":"t","datanode":1},
{"id":4,"table":"t","datanode":2,"in_flight":true},{"id":5,"table":"u","datanode":2,"in_flight":true},{"id":6,"table":"u","datanode":3}]`)
}

// loopbackPort matches the fakes' addresses: their ports change from run
// to run (always five digits in Linux's ephemeral range, so the columns
// keep their width).
var loopbackPort = regexp.MustCompile(`127\.0\.0\.1:[0-9]{2,}`)

// normalize replaces what changes from run to run.
func normalize(s string) string {
	return loopbackPort.ReplaceAllStringFunc(s, func(m string) string {
		return "127.0.0.1:" + strings.Repeat("X", len(m)-len("127.0.0.1:"))
	})
}

func TestStatusTableGolden(t *testing.T) {
	f := newFakeAPI(t)
	f.healthy(t)
	code, out, errOut := runCLI(t, "--endpoints", f.addr(), "status")
	if code != exitOK {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	got := normalize(out)
	golden := filepath.Join("testdata", "status.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestStatusTableGolden -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("status table differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
	}
}

func TestStatusJSONIsTheAPIBodies(t *testing.T) {
	f := newFakeAPI(t)
	f.healthy(t)
	code, out, errOut := runCLI(t, "--endpoints", f.addr(), "-o", "json", "status")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Cluster     wire.Cluster               `json:"cluster"`
		Raft        map[string]wire.RaftStatus `json:"raft"`
		Maintenance wire.Maintenance           `json:"maintenance"`
		Datanodes   []wire.Datanode            `json:"datanodes"`
		Regions     []wire.Route               `json:"regions"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if got.Cluster.ClusterID != "c-1" || len(got.Raft) != 2 || got.Raft["m2"].AppliedIndex != 97 || !got.Maintenance.Enabled || len(got.Datanodes) != 3 || len(got.Regions) != 6 {
		t.Fatalf("json status: %+v", got)
	}
}

func TestExitCodesAndErrors(t *testing.T) {
	f := newFakeAPI(t)
	f.healthy(t)
	f.set("POST /admin/datanodes/9/cordon", 404, `{"code":"not_found","error":"no datanode 9"}`)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	twoLines := filepath.Join(t.TempDir(), "two")
	if err := os.WriteFile(twoLines, []byte("admin:s3cret\nother\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ep := f.addr()
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"bad output", []string{"-o", "yaml", "status"}, exitUsage, `-o "yaml": want table or json`},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"unknown subcommand", []string{"maintenance", "toggle"}, exitUsage, `maintenance: unknown command "toggle"`},
		{"missing subcommand", []string{"datanode"}, exitUsage, "datanode: want a command"},
		{"unknown flag", []string{"status", "--colour"}, exitUsage, "unknown flag: --colour"},
		{"bad datanode id", []string{"datanode", "cordon", "zero"}, exitUsage, `datanode id "zero": want a positive integer`},
		{"missing id", []string{"datanode", "drain"}, exitUsage, "datanode drain: want ID, got 0 arguments"},
		{"migrate without to", []string{"region", "migrate", "4"}, exitUsage, "--to N"},
		{"bad ttl", []string{"maintenance", "enable", "--ttl", "-1h"}, exitUsage, "--ttl -1h0m0s: must be positive"},
		{"bad limit", []string{"events", "--limit", "0"}, exitUsage, "--limit 0"},
		{"bad endpoint", []string{"--endpoints", "nohost", "status"}, exitUsage, `endpoint "nohost": want host:port`},
		{"token file of two lines", []string{"--token-file", twoLines, "status"}, exitError, "want the secret alone on one line"},
		{"missing token file", []string{"--token-file", "/nonexistent/token", "status"}, exitError, "token file:"},
		{"server error shows its code", []string{"datanode", "cordon", "9"}, exitError, "404 not_found: no datanode 9"},
		{"nothing reachable", []string{"--endpoints", "127.0.0.1:1", "status"}, exitError, "no endpoint reachable"},
		{"token sent", []string{"--token-file", tokenFile, "maintenance", "status"}, exitOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !strings.HasPrefix(strings.Join(args, " "), "--endpoints") {
				args = append([]string{"--endpoints", ep}, args...)
			}
			code, _, errOut := runCLI(t, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, errOut)
			}
			first, _, _ := strings.Cut(errOut, "\n")
			if !strings.Contains(first, tc.wantErr) || (tc.wantErr != "" && !strings.HasPrefix(first, "metactl: ")) {
				t.Fatalf("stderr %q: want one line with %q", errOut, tc.wantErr)
			}
		})
	}
	var sawToken bool
	for _, r := range f.requests() {
		sawToken = sawToken || strings.HasSuffix(r, " Bearer s3cret")
	}
	if !sawToken {
		t.Fatalf("the token was never sent as Bearer: %q", f.requests())
	}
}

func TestEndpointsTriedInTurn(t *testing.T) {
	f := newFakeAPI(t)
	f.healthy(t)
	t.Setenv("METACTL_ENDPOINTS", "127.0.0.1:1,"+f.addr())
	code, out, errOut := runCLI(t, "maintenance", "status")
	if code != exitOK || !strings.Contains(out, `maintenance: on, by alice, reason "kernel upgrade"`) {
		t.Fatalf("exit %d, out %q, err %q", code, out, errOut)
	}
}

func TestDisable(t *testing.T) {
	notReady := `{"ready":false,"checks":[{"name":"voters_caught_up","ok":true,"detail":"all 3 voters"},
{"name":"datanodes_alive","ok":false,"detail":"1 of 3 datanodes not alive: 2 (10.0.1.2:4001, failed, 2 regions)"}],
"would_move":2,"move_from":[{"datanode":2,"addr":"10.0.1.2:4001","regions":2}]}`
	refused := `{"code":"preflight_failed","error":"maintenance stays on: preflight failed: datanodes_alive: 1 of 3 datanodes not alive",
"checks":[{"name":"datanodes_alive","ok":false,"detail":"1 of 3 datanodes not alive: 2 (10.0.1.2:4001, failed, 2 regions)"}],"would_move":2}`
	for _, tc := range []struct {
		name      string
		args      []string
		disable   fakeAnswer
		code      int
		wantQuery string
		wantOut   []string
	}{
		{"refused", nil, fakeAnswer{409, refused}, exitNotReady, "require_ready=true",
			[]string{"datanodes_alive", "would fail over 2 regions at once, from datanode 2 (10.0.1.2:4001): 2", "refused by the leader"}},
		{"forced", []string{"--force"}, fakeAnswer{200, `{"enabled":false}`}, exitOK, "",
			[]string{"datanodes_alive", "maintenance: off (forced)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t)
			f.set("GET /admin/maintenance/preflight", 200, notReady)
			f.set("POST /admin/maintenance/disable", tc.disable.status, tc.disable.body)
			code, out, errOut := runCLI(t, append([]string{"--endpoints", f.addr(), "maintenance", "disable"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
			}
			var post string
			for _, r := range f.requests() {
				if strings.HasPrefix(r, "POST ") {
					post = r
				}
			}
			if tc.wantQuery != "" && !strings.Contains(post, tc.wantQuery) || tc.wantQuery == "" && strings.Contains(post, "require_ready") {
				t.Fatalf("disable sent as %q, want query %q", post, tc.wantQuery)
			}
			if tc.code == exitNotReady && (strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "409 preflight_failed")) {
				t.Fatalf("refusal: stderr %q, want one line with 409 preflight_failed", errOut)
			}
		})
	}
}

func TestHealthTableGolden(t *testing.T) {
	f := newFakeAPI(t)
	f.set("GET /admin/health/report", 200, `{"status":"red","indicators":{
"quorum":{"status":"green","symptom":"all 3 voters reachable","details":{},"impacts":[],"actions":[]},
"leader_stability":{"status":"green","symptom":"1 leader changes in the last 30m0s","details":{},"impacts":[],"actions":[]},
"raft_storage":{"status":"green","symptom":"writes take 4ms to commit (99th percentile of the last 40)","details":{},"impacts":[],"actions":[]},
"maintenance":{"status":"yellow","symptom":"maintenance is on (by \"alice\", reason \"kernel upgrade\") for 1h2m0s, longer than --maintenance-warn-after (1h0m0s) and without a TTL","details":{},"impacts":["no failover: regions of a failed datanode stay unserved","no automatic balancing"],"actions":["if the work is done: metactl maintenance disable","else set a TTL: metactl maintenance enable --reason R --ttl D"]},
"datanodes":{"status":"red","symptom":"1 of 3 datanodes failed: 2 (10.0.1.2:4001)","details":{},"impacts":["their regions are unserved until failover moves them (not during maintenance)"],"actions":["restart or replace the failed datanodes","metactl datanode list"]},
"regions":{"status":"red","symptom":"2 regions sit on failed datanodes","details":{},"impacts":["reads and writes to those regions fail"],"actions":["see the datanodes and failover indicators","metactl region list"]},
"failover":{"status":"yellow","symptom":"failover of 1 failed datanodes is deferred (maintenance)","details":{},"impacts":["their regions stay unserved until failover resumes"],"actions":["end the maintenance window once the datanodes are back (metactl maintenance disable)"]},
"balancer":{"status":"green","symptom":"the balancer is paused: maintenance","details":{},"impacts":["no automatic rebalancing or drains"],"actions":[]},
"certificates":{"status":"green","symptom":"TLS is off","details":{},"impacts":[],"actions":[]}}}`)
	code, out, errOut := runCLI(t, "--endpoints", f.addr(), "health")
	if code != exitNotReady || !strings.Contains(errOut, "health: red") {
		t.Fatalf("health: exit %d (%s), want %d", code, errOut, exitNotReady)
	}
	golden := filepath.Join("testdata", "health.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestHealthTableGolden -update to create it)", err)
	}
	if out != string(want) {
		t.Fatalf("health table differs from %s:\n--- got\n%s--- want\n%s", golden, out, want)
	}
}
