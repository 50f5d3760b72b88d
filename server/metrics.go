package server

import (
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/metasrv/metasrv/balancer"
	"github.com/metasrv/metasrv/failover"
)

// metrics is one node's Prometheus registry (no global state, so several
// nodes can live in one test process).
type metrics struct {
	reg             *prometheus.Registry
	httpRequests    *prometheus.CounterVec
	httpDuration    *prometheus.HistogramVec
	forwarded       *prometheus.CounterVec
	outcomeUnknown  prometheus.Counter
	unknownCommands prometheus.Counter
	leaderChanges   prometheus.Counter
	isLeader        prometheus.Gauge

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

func newMetrics(n *Node) *metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &metrics{reg: reg}
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metasrv_http_requests_total",
		Help: "HTTP requests by route, method and status code."}, []string{"route", "method", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "metasrv_http_request_duration_seconds",
		Help: "HTTP request latency by route and method.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)},
		[]string{"route", "method"})
	m.forwarded = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metasrv_forwarded_requests_total",
		Help: "Requests this node forwarded to the leader, by outcome."}, []string{"outcome"})
	m.outcomeUnknown = prometheus.NewCounter(prometheus.CounterOpts{Name: "metasrv_write_outcome_unknown_total",
		Help: "Writes answered 504 outcome_unknown: they may or may not have been applied."})
	m.unknownCommands = prometheus.NewCounter(prometheus.CounterOpts{Name: "metasrv_fsm_unknown_commands_total",
		Help: "Raft entries with a command this binary does not know (the node stops applying)."})
	m.leaderChanges = prometheus.NewCounter(prometheus.CounterOpts{Name: "metasrv_raft_leader_changes_total",
		Help: "Leader changes observed by this node."})
	m.isLeader = prometheus.NewGauge(prometheus.GaugeOpts{Name: "metasrv_is_leader",
		Help: "1 while this node is the leader and has completed its leadership barrier."})
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
	f(m.balancerRounds)
	f(m.balancerMoves)
	f(m.balancerSpread)
	f(m.drainLeft)
	for _, c := range []prometheus.Collector{m.httpRequests, m.httpDuration, m.forwarded, m.outcomeUnknown,
		m.unknownCommands, m.leaderChanges, m.isLeader, m.failoverTicks, m.failoverMoved, m.failoverRejected,
		m.failoverDeferred, m.failoverBraked, m.detectToCommit} {
		f(c)
	}
	gauge := func(name, help string, fn func() float64) {
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
	}
	gauge("metasrv_raft_term", "Current raft term.", func() float64 { return float64(n.raft.CurrentTerm()) })
	gauge("metasrv_raft_commit_index", "Raft commit index.", func() float64 { return float64(n.raft.CommitIndex()) })
	gauge("metasrv_raft_applied_index", "Index of the last entry the FSM applied.", func() float64 { return float64(n.fsm.AppliedIndex()) })
	gauge("metasrv_raft_last_index", "Last raft log index on this node.", func() float64 { return float64(n.raft.LastIndex()) })
	gauge("metasrv_raft_last_contact_seconds", "Seconds since this follower last heard from the leader (0 on the leader).", func() float64 {
		if n.raft.State() == raft.Leader {
			return 0
		}
		lc := n.raft.LastContact()
		if lc.IsZero() {
			return -1
		}
		return time.Since(lc).Seconds()
	})
	for _, s := range []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown} {
		s := s
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "metasrv_raft_state", Help: "1 for the raft state this node is in.",
			ConstLabels: prometheus.Labels{"state": strings.ToLower(s.String())}}, func() float64 {
			if n.raft.State() == s {
				return 1
			}
			return 0
		}))
	}
	gauge("metasrv_maintenance_enabled", "1 while cluster maintenance mode is on (this node's FSM).", func() float64 {
		if n.fsm.Maintenance().Enabled {
			return 1
		}
		return 0
	})
	gauge("metasrv_maintenance_epoch", "Maintenance epoch: bumps on every change.", func() float64 { return float64(n.fsm.Maintenance().Epoch) })
	gauge("metasrv_maintenance_seconds", "Seconds the current maintenance window has been on (0 when off).", func() float64 {
		m := n.fsm.Maintenance()
		if !m.Enabled || m.Since == nil {
			return 0
		}
		return n.cfg.Now().Sub(*m.Since).Seconds()
	})
	reg.MustRegister(datanodeStatusCollector{n})
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observeHTTP(route, method string, status int, d time.Duration) {
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(d.Seconds())
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
type datanodeStatusCollector struct{ n *Node }

func (c datanodeStatusCollector) Describe(ch chan<- *prometheus.Desc) { ch <- datanodesDesc }
func (c datanodeStatusCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{failover.StatusAlive: 0, failover.StatusSuspect: 0, failover.StatusFailed: 0, failover.StatusUnknown: 0}
	t := c.n.term.Load()
	for _, d := range c.n.fsm.Datanodes() {
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

// startObservers counts and logs leader changes without ever blocking raft.
func (n *Node) startObservers() {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		lo, ok := o.Data.(raft.LeaderObservation)
		return ok && lo.LeaderID != "" // count changes to a leader, not the gaps between

	})
	n.raft.RegisterObserver(obs)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.raft.DeregisterObserver(obs)
		for {
			select {
			case <-n.ctx.Done():
				return
			case o := <-ch:
				lo := o.Data.(raft.LeaderObservation)
				n.metrics.leaderChanges.Inc()
				n.log.Info("leader changed", "leader_id", lo.LeaderID, "leader_raft_addr", lo.LeaderAddr, "term", n.raft.CurrentTerm())
			}
		}
	}()
}
