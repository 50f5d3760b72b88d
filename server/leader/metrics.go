package leader

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metasrv/metasrv/balancer"
	"github.com/metasrv/metasrv/failover"
)

// metrics are the failover and balancer metrics of this node's terms.
type metrics struct {
	failoverTicks    prometheus.Counter
	failoverMoved    prometheus.Counter
	failoverRejected prometheus.Counter
	failoverDeferred prometheus.Gauge
	failoverBraked   prometheus.Counter
	detectToCommit   prometheus.Histogram

	balancerRounds *prometheus.CounterVec
	balancerMoves  *prometheus.CounterVec
	balancerSpread prometheus.Gauge
	drainLeft      prometheus.Gauge
}

func newMetrics(l *Leader, reg *prometheus.Registry) *metrics {
	m := &metrics{}
	m.failoverTicks = prometheus.NewCounter(prometheus.CounterOpts{Name: "metasrv_failover_ticks_total",
		Help: "Failover loop ticks run by this node as leader."})
	m.failoverMoved = prometheus.NewCounter(prometheus.CounterOpts{Name: "metasrv_failover_regions_moved_total",
		Help: "Regions moved off failed datanodes."})
	m.failoverRejected = prometheus.NewCounter(prometheus.CounterOpts{Name: "metasrv_failover_moves_rejected_total",
		Help: "Failover moves the FSM rejected (maintenance, stale owner)."})
	m.failoverDeferred = prometheus.NewGauge(prometheus.GaugeOpts{Name: "metasrv_failover_deferred_datanodes",
		Help: "Failed datanodes whose failover is held back by maintenance (last tick)."})
	m.failoverBraked = prometheus.NewCounter(prometheus.CounterOpts{Name: "metasrv_failover_braked_ticks_total",
		Help: "Ticks on which failover was braked because more than half the datanodes looked failed."})
	m.detectToCommit = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "metasrv_failover_detect_to_commit_seconds",
		Help: "Time from detecting a datanode failed to committing its regions' moves.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)})
	m.balancerRounds = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metasrv_balancer_rounds_total",
		Help: "Balancer and drain rounds, by kind and whether they were paused."}, []string{"kind", "paused"})
	m.balancerMoves = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metasrv_balancer_moves_total",
		Help: "Balancer and drain moves by kind and outcome (planned, committed, rejected)."}, []string{"kind", "outcome"})
	m.balancerSpread = prometheus.NewGauge(prometheus.GaugeOpts{Name: "metasrv_balancer_spread",
		Help: "Max minus min regions per schedulable datanode at the last balancing round."})
	m.drainLeft = prometheus.NewGauge(prometheus.GaugeOpts{Name: "metasrv_drain_regions_left",
		Help: "Regions still on draining datanodes at the last drain round."})
	for _, c := range []prometheus.Collector{m.failoverTicks, m.failoverMoved, m.failoverRejected, m.failoverDeferred,
		m.failoverBraked, m.detectToCommit, m.balancerRounds, m.balancerMoves, m.balancerSpread, m.drainLeft} {
		reg.MustRegister(c)
	}
	reg.MustRegister(datanodeStatusCollector{l})
	return m
}

func (m *metrics) observeFailoverTick(rep failover.TickReport) {
	m.failoverTicks.Inc()
	m.failoverMoved.Add(float64(rep.Moved))
	m.failoverRejected.Add(float64(rep.Rejected))
	m.failoverDeferred.Set(float64(len(rep.Deferred)))
	if rep.Braked {
		m.failoverBraked.Inc()
	}
	for _, d := range rep.DetectToCommit {
		m.detectToCommit.Observe(d.Seconds())
	}
}

func (m *metrics) observeBalancerRound(rep balancer.Report) {
	kind := "balance"
	if rep.Drain {
		kind = "drain"
		m.drainLeft.Set(float64(rep.DrainLeft))
	} else {
		m.balancerSpread.Set(float64(rep.Spread))
	}
	m.balancerRounds.WithLabelValues(kind, strconv.FormatBool(rep.Paused != "")).Inc()
	m.balancerMoves.WithLabelValues(kind, "planned").Add(float64(rep.Planned))
	m.balancerMoves.WithLabelValues(kind, "committed").Add(float64(rep.Committed))
	m.balancerMoves.WithLabelValues(kind, "rejected").Add(float64(rep.Rejected))
}

var datanodesDesc = prometheus.NewDesc("metasrv_datanodes", "Registered datanodes by status, as this leader sees them.", []string{"status"}, nil)

// datanodeStatusCollector counts datanodes by status at scrape time.
type datanodeStatusCollector struct{ l *Leader }

func (c datanodeStatusCollector) Describe(ch chan<- *prometheus.Desc) { ch <- datanodesDesc }
func (c datanodeStatusCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{failover.StatusAlive: 0, failover.StatusSuspect: 0, failover.StatusFailed: 0, failover.StatusUnknown: 0}
	t := c.l.term.Load()
	for _, d := range c.l.fsm.Datanodes() {
		st := failover.StatusUnknown
		if t != nil {
			st = t.mon.Status(d.ID).Status
		}
		counts[st]++
	}
	for s, v := range counts {
		ch <- prometheus.MustNewConstMetric(datanodesDesc, prometheus.GaugeValue, float64(v), s)
	}
}
