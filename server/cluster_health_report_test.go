package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/server/wire"
)

// The health report through real faults: maintenance left on without a
// TTL, a datanode that stops heartbeating during it (failed, its failover
// deferred, its regions unserved), and a voter that stops. A follower
// forwards the question to the leader; the leader exports the same
// verdicts as metasrv_health_indicator.
func TestHealthReportThroughFaults(t *testing.T) {
	c := startCluster(t, 3, func(cfg *Config) {
		cfg.MaintenanceWarnAfter = time.Second
		cfg.HeartbeatInterval = 200 * time.Millisecond
	})
	l := c.leader()
	f := c.follower()
	report := func() wire.HealthReport {
		t.Helper()
		var r wire.HealthReport
		c.mustJSON(f, http.MethodGet, "/admin/health/report", nil, http.StatusOK, &r)
		return r
	}
	want := func(what string, cond func(wire.HealthReport) error) {
		t.Helper()
		eventually(t, what, func() error { return cond(report()) })
	}
	indicator := func(name, status string) func(wire.HealthReport) error {
		return func(r wire.HealthReport) error {
			if got := r.Indicators[name]; got.Status != status {
				return fmt.Errorf("%s is %s (%s), want %s", name, got.Status, got.Symptom, status)
			}
			return nil
		}
	}
	// Datanodes 1-3 heartbeat every 100 ms until told to stop.
	start := time.Now().UnixMilli()
	stops := map[uint64]chan struct{}{}
	done := make(chan struct{})
	defer close(done)
	for id := uint64(1); id <= 3; id++ {
		stop := make(chan struct{})
		stops[id] = stop
		go func() {
			serving := []uint64{}
			for seq := uint64(1); ; seq++ {
				hb := wire.Heartbeat{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", 4000+id), StartTimeMs: start, Seq: seq, Regions: serving}
				for _, tn := range c.nodes {
					if tn.node.raft.IsReadyLeader() {
						// It serves what it owns from the next heartbeat on.
						if r := c.do(tn, http.MethodPost, "/v1/heartbeat", hb); r.status == http.StatusOK {
							var hr wire.HeartbeatResponse
							if json.Unmarshal(r.body, &hr) == nil {
								serving = hr.Regions
							}
						}
					}
				}
				select {
				case <-stop:
					return
				case <-done:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
	}
	eventually(t, "3 datanodes", func() error {
		if n := len(l.node.FSM().Datanodes()); n != 3 {
			return fmt.Errorf("%d", n)
		}
		return nil
	})
	c.regCreateTable(l, "t", 6)
	want("green", func(r wire.HealthReport) error {
		if r.Status != wire.HealthGreen {
			return fmt.Errorf("%+v", r)
		}
		return nil
	})
	c.regMaintenance(l, true)
	want("maintenance on without a TTL past --maintenance-warn-after", indicator("maintenance", wire.HealthYellow))
	// Datanode 1 stops: it fails, its failover waits for maintenance, and
	// its regions are unserved.
	close(stops[1])
	want("datanode 1 failed, its regions unserved, its failover deferred", func(r wire.HealthReport) error {
		if r.Status != wire.HealthRed || r.Indicators["datanodes"].Status != wire.HealthRed || r.Indicators["regions"].Status != wire.HealthRed ||
			r.Indicators["failover"].Status != wire.HealthYellow || !strings.Contains(r.Indicators["failover"].Symptom, "deferred") {
			return fmt.Errorf("%+v", r)
		}
		return nil
	})
	// The leader's metrics say the same.
	m := c.do(l, http.MethodGet, "/metrics", nil)
	for _, line := range []string{`metasrv_health_indicator{indicator="datanodes"} 2`, `metasrv_health_indicator{indicator="maintenance"} 1`, `metasrv_health_indicator{indicator="overall"} 2`} {
		if !strings.Contains(string(m.body), line) {
			t.Fatalf("leader /metrics lacks %s", line)
		}
	}
	if fm := c.do(f, http.MethodGet, "/metrics", nil); strings.Contains(string(fm.body), "metasrv_health_indicator{") {
		t.Fatal("a follower exports health indicators")
	}
	// A voter stops: quorum turns yellow.
	var stopped *tnode
	for _, tn := range c.nodes {
		if tn != l && tn != f {
			stopped = tn
		}
	}
	c.stop(stopped)
	want("a voter unreachable", indicator("quorum", wire.HealthYellow))
}
