package raftnode

import (
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are this node's raft and FSM metrics, on the registry it is given
// (no global state, so several nodes can live in one test process).
type metrics struct {
	outcomeUnknown  prometheus.Counter
	unknownCommands prometheus.Counter
	leaderChanges   prometheus.Counter
	isLeader        prometheus.Gauge
	connRefused     *prometheus.CounterVec
}

func newMetrics(n *Node, reg *prometheus.Registry) *metrics {
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &metrics{}
	m.outcomeUnknown = prometheus.NewCounter(prometheus.CounterOpts{Name: "metasrv_write_outcome_unknown_total",
		Help: "Writes answered 504 outcome_unknown: they may or may not have been applied."})
	m.unknownCommands = prometheus.NewCounter(prometheus.CounterOpts{Name: "metasrv_fsm_unknown_commands_total",
		Help: "Raft entries with a command this binary does not know (the node stops applying)."})
	m.leaderChanges = prometheus.NewCounter(prometheus.CounterOpts{Name: "metasrv_raft_leader_changes_total",
		Help: "Leader changes observed by this node."})
	m.isLeader = prometheus.NewGauge(prometheus.GaugeOpts{Name: "metasrv_is_leader",
		Help: "1 while this node is the leader and has completed its leadership barrier."})
	m.connRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metasrv_raft_conn_refused_total",
		Help: "Raft connections refused or closed by peer TLS, by reason (plaintext, handshake, certificate, role, removed, limit, busy, untrusted)."},
		[]string{"reason"})
	for _, c := range []prometheus.Collector{m.outcomeUnknown, m.unknownCommands, m.leaderChanges, m.isLeader, m.connRefused} {
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
	return m
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
				n.health.leaderChanged(n.cfg.Now())
				n.log.Info("leader changed", "leader_id", lo.LeaderID, "leader_raft_addr", lo.LeaderAddr, "term", n.raft.CurrentTerm())
			}
		}
	}()
}
