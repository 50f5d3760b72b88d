package server

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/server/wire"
)

const (
	secretAlice  = "alice-secret-0123456789abcdef0123456789"
	secretAlice2 = "alice-secret-rotated-0123456789abcdef01"
	secretBob    = "bob-read-secret-0123456789abcdef012345"
	secretDN1    = "datanode-1-secret-0123456789abcdef0123"
	secretFleet  = "fleet-secret-0123456789abcdef0123456789"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func bearerHdr(secret string) []string { return []string{"Authorization", "Bearer " + secret} }

func TestTokenFilesScopesAndRotation(t *testing.T) {
	dir := t.TempDir()
	adminFile := writeFile(t, filepath.Join(dir, "admin"), "# operators\nalice:"+secretAlice+"\nalice:"+secretAlice2+"\n")
	readFile := writeFile(t, filepath.Join(dir, "read"), "bob:"+secretBob+"\n")
	dnFile := writeFile(t, filepath.Join(dir, "datanodes"), "datanode-1:"+secretDN1+"\nfleet:"+secretFleet+"\n")
	c := startCluster(t, 3, func(cfg *Config) {
		cfg.AdminTokenFile, cfg.ReadTokenFile, cfg.DatanodeTokenFile = adminFile, readFile, dnFile
	})
	f := c.follower()
	for _, tc := range []struct {
		name, method, path string
		hdr                []string
		want               int
	}{
		{"open route, no credential", http.MethodGet, "/admin/health", nil, http.StatusOK},
		{"status, no credential", http.MethodGet, "/status", nil, http.StatusOK},
		{"read, no credential", http.MethodGet, "/admin/cluster", nil, http.StatusUnauthorized},
		{"read maintenance, no credential", http.MethodGet, "/admin/maintenance", nil, http.StatusUnauthorized},
		{"metrics, no credential", http.MethodGet, "/metrics", nil, http.StatusUnauthorized},
		{"read with a read token", http.MethodGet, "/admin/cluster", bearerHdr(secretBob), http.StatusOK},
		{"read through a follower with a read token", http.MethodGet, "/admin/maintenance", bearerHdr(secretBob), http.StatusOK},
		{"read with an admin token", http.MethodGet, "/admin/datanodes", bearerHdr(secretAlice), http.StatusOK},
		{"write with a read token", http.MethodPost, "/admin/maintenance?enable=true", bearerHdr(secretBob), http.StatusForbidden},
		{"write with a datanode token", http.MethodPost, "/admin/maintenance?enable=true", bearerHdr(secretDN1), http.StatusForbidden},
		{"write, no credential", http.MethodPost, "/admin/maintenance?enable=true", nil, http.StatusUnauthorized},
		{"write with a wrong token", http.MethodPost, "/admin/maintenance?enable=true", bearerHdr("nope-nope-nope-nope-nope-nope-nope"), http.StatusUnauthorized},
		{"write with an admin token", http.MethodPost, "/admin/maintenance?enable=true", bearerHdr(secretAlice), http.StatusOK},
		{"write with the rotated admin token", http.MethodPost, "/admin/maintenance?enable=false", bearerHdr(secretAlice2), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := c.do(f, tc.method, tc.path, nil, tc.hdr...); r.status != tc.want {
				t.Fatalf("%s", r)
			}
		})
	}
	// Rotation: alice's first secret is dropped and the files re-read.
	writeFile(t, adminFile, "alice:"+secretAlice2+"\n")
	for _, tn := range c.nodes {
		if err := tn.node.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	if r := c.do(f, http.MethodPost, "/admin/maintenance?enable=true", nil, bearerHdr(secretAlice)...); r.status != http.StatusUnauthorized {
		t.Fatalf("a dropped secret after reload: %s", r)
	}
	if r := c.do(f, http.MethodPost, "/admin/maintenance?enable=true", nil, bearerHdr(secretAlice2)...); r.status != http.StatusOK {
		t.Fatalf("the kept secret after reload: %s", r)
	}
}

func TestDatanodesProveWhoTheyAre(t *testing.T) {
	dir := t.TempDir()
	dnFile := writeFile(t, filepath.Join(dir, "datanodes"), "datanode-1:"+secretDN1+"\nfleet:"+secretFleet+"\n")
	adminFile := writeFile(t, filepath.Join(dir, "admin"), "alice:"+secretAlice+"\n")
	c := startCluster(t, 1, func(cfg *Config) { cfg.AdminTokenFile, cfg.DatanodeTokenFile = adminFile, dnFile })
	l := c.leader()
	start := time.Now().UnixMilli()
	hb := func(id uint64, addr string, seq uint64, hdr ...string) reply {
		return c.do(l, http.MethodPost, "/v1/heartbeat", wire.Heartbeat{ID: id, Addr: addr, StartTimeMs: start, Seq: seq, IncarnationKey: "k"}, hdr...)
	}
	// 200 unauthenticated heartbeats register nothing and record no event.
	datanodeEvents := func() int {
		var page wire.EventsPage
		c.mustJSON(l, http.MethodGet, "/admin/events", nil, http.StatusOK, &page, bearerHdr(secretAlice)...)
		n := 0
		for _, e := range page.Events {
			if strings.HasPrefix(e.Type, "datanode") && !isWatchEvent(e.Type) {
				n++
			}
		}
		return n
	}
	before := datanodeEvents()
	for i := uint64(1); i <= 200; i++ {
		if r := hb(100+i, fmt.Sprintf("127.0.0.1:%d", 5000+i), 1); r.status != http.StatusUnauthorized {
			t.Fatalf("unauthenticated heartbeat %d: %s", i, r)
		}
	}
	if after := datanodeEvents(); after != before {
		t.Fatalf("unauthenticated heartbeats recorded %d datanode events", after-before)
	}
	if dns := c.regDatanodesAs(l, secretAlice); len(dns) != 0 {
		t.Fatalf("unauthenticated heartbeats registered %d datanodes", len(dns))
	}
	if r := hb(1, "127.0.0.1:4001", 1, bearerHdr(secretDN1)...); r.status != http.StatusOK {
		t.Fatalf("datanode-1's own heartbeat: %s", r)
	}
	if r := hb(2, "127.0.0.1:4002", 1, bearerHdr(secretDN1)...); r.status != http.StatusForbidden {
		t.Fatalf("datanode-1's credential heartbeating as 2: %s", r)
	}
	if r := hb(5, "127.0.0.1:4005", 1, bearerHdr(secretFleet)...); r.status != http.StatusOK {
		t.Fatalf("a fleet token registering 5: %s", r)
	}
	if r := hb(1, "127.0.0.1:6666", 2, bearerHdr(secretFleet)...); r.status != http.StatusForbidden {
		t.Fatalf("a fleet token taking datanode 1's address: %s", r)
	}
	if r := hb(1, "127.0.0.1:4001", 3, bearerHdr(secretAlice)...); r.status != http.StatusForbidden {
		t.Fatalf("an operator token heartbeating: %s", r)
	}
	dns := c.regDatanodesAs(l, secretAlice)
	if len(dns) != 2 || dns[1].Addr != "127.0.0.1:4001" || dns[5].Addr != "127.0.0.1:4005" {
		t.Fatalf("datanodes: %+v", dns)
	}
}

// regDatanodesAs lists datanodes with a credential.
func (c *tcluster) regDatanodesAs(tn *tnode, secret string) map[uint64]wire.Datanode {
	c.t.Helper()
	var list []wire.Datanode
	c.mustJSON(tn, http.MethodGet, "/admin/datanodes", nil, http.StatusOK, &list, bearerHdr(secret)...)
	out := map[uint64]wire.Datanode{}
	for _, d := range list {
		out[d.ID] = d
	}
	return out
}

func TestDatanodeRegistrationLimits(t *testing.T) {
	c := startCluster(t, 1, func(cfg *Config) {
		cfg.MaxDatanodes, cfg.DatanodeRegisterRate, cfg.DatanodeRegisterBurst = 3, 0.001, 100
	})
	l := c.leader()
	start := time.Now().UnixMilli()
	for id := uint64(1); id <= 3; id++ {
		if _, r := regPostHB(c, l, wire.Heartbeat{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", 4000+id), StartTimeMs: start, Seq: 1}); r.status != http.StatusOK {
			t.Fatalf("datanode %d: %s", id, r)
		}
	}
	_, r := regPostHB(c, l, wire.Heartbeat{ID: 4, Addr: "127.0.0.1:4004", StartTimeMs: start, Seq: 1})
	regWantErr(t, r, http.StatusConflict, "datanode_limit")
	if _, r := regPostHB(c, l, wire.Heartbeat{ID: 3, Addr: "127.0.0.1:4003", StartTimeMs: start, Seq: 2}); r.status != http.StatusOK {
		t.Fatalf("a known datanode at the limit: %s", r)
	}

	c2 := startCluster(t, 1, func(cfg *Config) { cfg.DatanodeRegisterRate, cfg.DatanodeRegisterBurst = 0.001, 2 })
	l2 := c2.leader()
	for id := uint64(1); id <= 2; id++ {
		if _, r := regPostHB(c2, l2, wire.Heartbeat{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", 4000+id), StartTimeMs: start, Seq: 1}); r.status != http.StatusOK {
			t.Fatalf("datanode %d within the burst: %s", id, r)
		}
	}
	_, r = regPostHB(c2, l2, wire.Heartbeat{ID: 3, Addr: "127.0.0.1:4003", StartTimeMs: start, Seq: 1})
	if r.status != http.StatusTooManyRequests || r.code() != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Fatalf("a registration beyond the burst: %s", r)
	}
}

// With --datanode-approval a new datanode registers cordoned and takes no
// region until an operator uncordons it.
func TestDatanodeApproval(t *testing.T) {
	c := startCluster(t, 1, func(cfg *Config) { cfg.DatanodeApproval = true })
	l := c.leader()
	start := time.Now().UnixMilli()
	// Until the member has recorded its own protocol level the cluster
	// counts as the lowest, and a cordoned registration waits (503).
	for id := uint64(1); id <= 2; id++ {
		seq := uint64(0)
		eventually(t, fmt.Sprintf("datanode %d registers", id), func() error {
			seq++
			if _, r := regPostHB(c, l, wire.Heartbeat{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", 4000+id), StartTimeMs: start, Seq: seq}); r.status != http.StatusOK {
				return errorf("%s", r)
			}
			return nil
		})
	}
	for id, d := range c.regDatanodes(l) {
		if d.AdminState != "cordoned" {
			t.Fatalf("datanode %d registered %s, want cordoned", id, d.AdminState)
		}
	}
	// No datanode may take regions yet.
	r := c.do(l, http.MethodPost, "/admin/tables", `{"name":"t","regions":2}`)
	if r.status == http.StatusCreated {
		t.Fatalf("a table was placed on unapproved datanodes: %s", r)
	}
	c.mustJSON(l, http.MethodPost, "/admin/datanodes/1/uncordon", nil, http.StatusOK, nil)
	var created regCreated
	c.mustJSON(l, http.MethodPost, "/admin/tables", `{"name":"t","regions":2}`, http.StatusCreated, &created)
	for _, reg := range created.Regions {
		if reg.Datanode != 1 {
			t.Fatalf("region placed on datanode %d, want only the approved 1: %+v", reg.Datanode, created)
		}
	}
	// A known datanode's heartbeat does not cordon it again.
	if _, r := regPostHB(c, l, wire.Heartbeat{ID: 1, Addr: "127.0.0.1:4001", StartTimeMs: start, Seq: 1000}); r.status != http.StatusOK {
		t.Fatal(r)
	}
	if d := c.regDatanodes(l)[1]; d.AdminState != "active" {
		t.Fatalf("approved datanode %+v", d)
	}
}
