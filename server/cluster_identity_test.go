package server

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/wire"
)

// Writes record the authenticated identity beside by, but only once every
// member speaks fsm.IdentityProtocol: with an older member in the cluster
// no entry carries it (and no node stops); after that member is upgraded,
// every replica records the same identity.
func TestIdentityRecordedOnlyOnceEveryMemberKnowsIt(t *testing.T) {
	dir := t.TempDir()
	adminFile := filepath.Join(dir, "admin")
	if err := os.WriteFile(adminFile, []byte("alice:"+secretAlice+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, 3, func(cfg *Config) {
		cfg.AdminTokenFile = adminFile
		if cfg.NodeID == "n1" {
			// The older binary bootstraps, so the others (newer) may join.
			cfg.Protocol = fsm.IdentityProtocol - 1
		}
	})
	c.procWaitProtocols(c.leader(), map[string]int{"n1": fsm.IdentityProtocol - 1, "n2": fsm.Protocol, "n3": fsm.Protocol})
	wantMaintenance := func(enabled bool, by, identity string) {
		t.Helper()
		for _, tn := range c.nodes {
			eventually(t, tn.id+" applied the write", func() error {
				m := tn.node.FSM().Maintenance()
				if m.Enabled != enabled || m.By != by || m.Identity != identity {
					return errorf("maintenance %+v, want enabled %t by %q identity %q", m, enabled, by, identity)
				}
				return nil
			})
		}
	}
	c.mustJSON(c.follower(), http.MethodPost, "/admin/maintenance?enable=true&by=ops-team", nil, http.StatusOK, nil, bearerHdr(secretAlice)...)
	wantMaintenance(true, "ops-team", "")
	c.procNoFatal()

	// Upgrade n1: restart it at the current protocol.
	n1 := c.nodes[0]
	c.stop(n1)
	c.nodes[0] = c.restartWith(n1, func(cfg *Config) { cfg.Protocol = 0 })
	c.waitReady(c.nodes[0])
	c.procWaitProtocols(c.leader(), map[string]int{"n1": fsm.Protocol, "n2": fsm.Protocol, "n3": fsm.Protocol})

	// by defaults to the identity now; both are recorded everywhere.
	c.mustJSON(c.follower(), http.MethodPost, "/admin/maintenance?enable=false", nil, http.StatusOK, nil, bearerHdr(secretAlice)...)
	wantMaintenance(false, "alice", "alice")
	c.mustJSON(c.nodes[0], http.MethodPost, "/admin/maintenance?enable=true&by=bob-on-call", nil, http.StatusOK, nil, bearerHdr(secretAlice)...)
	wantMaintenance(true, "bob-on-call", "alice")
	var v wire.Maintenance
	c.mustJSON(c.nodes[1], http.MethodGet, "/admin/maintenance?verbose=true", nil, http.StatusOK, &v, bearerHdr(secretAlice)...)
	if v.By != "bob-on-call" || v.Identity != "alice" {
		t.Fatalf("verbose status %+v", v)
	}
	var page wire.EventsPage
	c.mustJSON(c.nodes[2], http.MethodGet, "/admin/events", nil, http.StatusOK, &page, bearerHdr(secretAlice)...)
	last := page.Events[len(page.Events)-1]
	if last.Type != fsm.EventMaintenanceEnabled || last.By != "bob-on-call" || last.Identity != "alice" {
		t.Fatalf("last event %+v", last)
	}
	c.procNoFatal()
}
