package health_test

import (
	"strings"
	"testing"
	"time"

	"github.com/metasrv/metasrv/server/health"
	"github.com/metasrv/metasrv/server/wire"
)

var now = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func base() health.Inputs {
	return health.Inputs{Now: now, Voters: []string{"n1", "n2", "n3"}, CommitP99: 5 * time.Millisecond, CommitSamples: 50,
		WarnAfter: time.Hour,
		Datanodes: []wire.Datanode{{ID: 1, Addr: "dn1:4001", Status: "alive", Regions: 3, AdminState: "active"},
			{ID: 2, Addr: "dn2:4001", Status: "alive", Regions: 3, AdminState: "active"},
			{ID: 3, Addr: "dn3:4001", Status: "alive", Regions: 3, AdminState: "active"}},
		Certificates: []health.Cert{{Use: "server", Subject: "n1", File: "/certs/n1.crt", NotAfter: now.Add(300 * 24 * time.Hour)}}}
}

func at(t time.Time) *time.Time { return &t }

// Each indicator is driven yellow and red through the fault it names; all
// others stay green.
func TestIndicators(t *testing.T) {
	for _, tc := range []struct {
		name      string
		indicator string
		want      string
		symptom   string
		mutate    func(*health.Inputs)
	}{
		{"healthy", "", wire.HealthGreen, "", func(*health.Inputs) {}},
		{"one voter unreachable", health.Quorum, wire.HealthYellow, "1 of 3 voters unreachable: n3", func(in *health.Inputs) { in.Unreachable = []string{"n3"} }},
		{"quorum lost", health.Quorum, wire.HealthRed, "fewer than a quorum", func(in *health.Inputs) { in.Unreachable = []string{"n2", "n3"} }},
		{"leader changes 3", "", wire.HealthGreen, "", func(in *health.Inputs) { in.LeaderChanges = 3 }},
		{"leader flapping", health.LeaderStability, wire.HealthYellow, "4 leader changes", func(in *health.Inputs) { in.LeaderChanges = 4 }},
		{"leader storm", health.LeaderStability, wire.HealthRed, "10 leader changes", func(in *health.Inputs) { in.LeaderChanges = 10 }},
		{"slow commits", health.RaftStorage, wire.HealthYellow, "writes take 250ms", func(in *health.Inputs) { in.CommitP99 = 250 * time.Millisecond }},
		{"stalled disk", health.RaftStorage, wire.HealthRed, "writes take 2s", func(in *health.Inputs) { in.CommitP99 = 2 * time.Second }},
		{"maintenance on with a TTL", "", wire.HealthGreen, "", func(in *health.Inputs) {
			in.Maintenance = wire.Maintenance{Enabled: true, By: "alice", Since: at(now.Add(-2 * time.Hour)), ExpiresAt: at(now.Add(time.Minute))}
		}},
		{"maintenance on too long without a TTL", health.Maintenance, wire.HealthYellow, "longer than --maintenance-warn-after", func(in *health.Inputs) {
			in.Maintenance = wire.Maintenance{Enabled: true, By: "alice", Since: at(now.Add(-61 * time.Minute))}
		}},
		{"maintenance past its TTL", health.Maintenance, wire.HealthRed, "past its TTL", func(in *health.Inputs) {
			in.Maintenance = wire.Maintenance{Enabled: true, By: "alice", Since: at(now.Add(-time.Hour)), ExpiresAt: at(now.Add(-time.Minute))}
		}},
		{"datanode suspect", health.Datanodes, wire.HealthYellow, "1 of 3 datanodes missed heartbeats: 2 (dn2:4001)", func(in *health.Inputs) { in.Datanodes[1].Status = "suspect" }},
		{"cordoned datanode failed", "", wire.HealthGreen, "", func(in *health.Inputs) {
			in.Datanodes[1].Status, in.Datanodes[1].AdminState, in.Datanodes[1].Regions = "failed", "cordoned", 0
		}},
		{"regions moving", health.Regions, wire.HealthYellow, "2 regions are moving", func(in *health.Inputs) { in.InFlight = []uint64{4, 5} }},
		{"failover deferred", health.Failover, wire.HealthYellow, "failover of 1 failed datanodes is deferred (maintenance)", func(in *health.Inputs) {
			in.Datanodes[0].Regions, in.Datanodes[0].FailoverDeferred, in.FailoverPaused = 0, true, "maintenance"
		}},
		{"failover braked", health.Failover, wire.HealthRed, "braked", func(in *health.Inputs) {
			for i := range in.Datanodes {
				in.Datanodes[i].FailoverBraked = true
				in.Datanodes[i].Regions = 0
			}
		}},
		{"balancer paused", "", wire.HealthGreen, "", func(in *health.Inputs) { in.BalancerPaused = "maintenance" }},
		{"certificate expiring in 20 days", health.Certificates, wire.HealthYellow, "expires in 480h", func(in *health.Inputs) {
			in.Certificates[0].NotAfter = now.Add(20 * 24 * time.Hour)
		}},
		{"certificate expired", health.Certificates, wire.HealthRed, "has expired", func(in *health.Inputs) { in.Certificates[0].NotAfter = now.Add(-time.Hour) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.mutate(&in)
			r := health.Evaluate(in)
			if r.Status != tc.want {
				t.Fatalf("status %s, want %s: %+v", r.Status, tc.want, r)
			}
			if len(r.Indicators) != len(health.Names) {
				t.Fatalf("%d indicators, want %d", len(r.Indicators), len(health.Names))
			}
			for name, ind := range r.Indicators {
				want := wire.HealthGreen
				if name == tc.indicator {
					want = tc.want
				}
				if ind.Status != want {
					t.Errorf("%s: %s (%s), want %s", name, ind.Status, ind.Symptom, want)
				}
				if ind.Status != wire.HealthGreen && (len(ind.Actions) == 0 || len(ind.Impacts) == 0) {
					t.Errorf("%s is %s without impacts or actions: %+v", name, ind.Status, ind)
				}
				if ind.Symptom == "" || ind.Details == nil || ind.Impacts == nil || ind.Actions == nil {
					t.Errorf("%s: empty parts: %+v", name, ind)
				}
			}
			if tc.indicator != "" && !strings.Contains(r.Indicators[tc.indicator].Symptom, tc.symptom) {
				t.Errorf("symptom %q, want it to say %q", r.Indicators[tc.indicator].Symptom, tc.symptom)
			}
		})
	}
}

// A failed datanode with regions is red twice over: the datanode and its
// unserved regions.
func TestFailedDatanodeWithRegions(t *testing.T) {
	in := base()
	in.Datanodes[2].Status = "failed"
	r := health.Evaluate(in)
	if r.Status != wire.HealthRed || r.Indicators[health.Datanodes].Status != wire.HealthRed || r.Indicators[health.Regions].Status != wire.HealthRed {
		t.Fatalf("%+v", r)
	}
	if got := r.Indicators[health.Regions].Details["unserved"]; got != 3 {
		t.Fatalf("unserved %v", got)
	}
}
