package httpapi

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metasrv/metasrv/server/health"
	"github.com/metasrv/metasrv/server/raftnode"
)

// runHealthReport is GET /admin/health/report, answered by the leader
// (only it sees the datanodes, failover and the balancer).
func (s *Server) runHealthReport(_ context.Context, w http.ResponseWriter, _ *http.Request, _ any) error {
	in, err := s.healthInputs()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, health.Evaluate(in))
	return nil
}

// healthInputs gathers what the report reads; on a node that is not the
// leader it fails with ErrNotLeader.
func (s *Server) healthInputs() (health.Inputs, error) {
	if !s.node.IsLeader() {
		return health.Inputs{}, raftnode.ErrNotLeader
	}
	now := s.cfg.Now()
	in := health.Inputs{Now: now, WarnAfter: s.cfg.MaintenanceWarnAfter,
		Unreachable:   s.node.Unreachable(),
		LeaderChanges: s.node.LeaderChangesSince(now.Add(-health.LeaderWindow)),
		Maintenance:   toVerbose(s.fsm.Maintenance()),
		Datanodes:     s.lead.Datanodes(),
	}
	in.CommitP99, in.CommitSamples = s.node.CommitLatency()
	servers, err := s.node.Servers()
	if err != nil {
		return health.Inputs{}, err
	}
	for _, sv := range servers {
		if sv.Voter {
			in.Voters = append(in.Voters, sv.ID)
		}
	}
	for _, r := range s.lead.Routes(s.fsm.Regions()) {
		if r.InFlight {
			in.InFlight = append(in.InFlight, r.ID)
		}
	}
	if in.FailoverPaused, err = s.lead.FailoverPaused(); err != nil {
		return health.Inputs{}, err
	}
	st, err := s.lead.BalancerStatus()
	if err != nil {
		return health.Inputs{}, err
	}
	in.BalancerPaused = st.PausedReason
	for use, src := range s.cfg.CertSources {
		for _, e := range src.Expiry() {
			in.Certificates = append(in.Certificates, health.Cert{Use: use, Subject: e.Subject, File: e.File, NotAfter: e.NotAfter})
		}
	}
	return in, nil
}

// healthCollector exports each indicator as metasrv_health_indicator
// (0 green, 1 yellow, 2 red) on the leader, so alerts follow the report.
type healthCollector struct{ s *Server }

var healthDesc = prometheus.NewDesc("metasrv_health_indicator",
	"The health report's indicators on the leader: 0 green, 1 yellow, 2 red (GET /admin/health/report explains them).",
	[]string{"indicator"}, nil)

func (c healthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- healthDesc }

func (c healthCollector) Collect(ch chan<- prometheus.Metric) {
	in, err := c.s.healthInputs()
	if err != nil {
		return // followers export nothing: the leader's series is the one
	}
	r := health.Evaluate(in)
	for _, name := range health.Names {
		ch <- prometheus.MustNewConstMetric(healthDesc, prometheus.GaugeValue, float64(health.Rank(r.Indicators[name].Status)), name)
	}
	ch <- prometheus.MustNewConstMetric(healthDesc, prometheus.GaugeValue, float64(health.Rank(r.Status)), "overall")
}
