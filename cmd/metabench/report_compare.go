package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

// Targets of a side-by-side run (bench-compare), checked by targets6.
const (
	targetLeaderVsEtcd  = 2.0 // our writes at c64 on the leader ÷ etcd's
	targetFollowerRatio = 0.9 // our writes through a follower ÷ direct
	targetFailoverRatio = 0.5 // our median leader failover ÷ etcd's
	targetScaleCores    = 1.0
	targetSnapshotTotal = 2 * time.Second
	targetLeaderMemMB   = 500
)

func (r *report) markdownCompare(p func(string, ...any)) {
	if c := r.compare; c != nil {
		o := c.opts
		p("## 1. Writes and reads, side by side with etcd\n\n")
		p("Both systems run at once on the machine, each as 3 processes on its own loopback addresses: metasrv "+
			"(flags `%s`, fsync on) and %s (its defaults: heartbeat 100 ms, election 1 s, fsync on, log level info). Both are "+
			"driven through HTTP by the same closed-loop client code and the same keep-alive client: metasrv with "+
			"`POST /admin/maintenance?enable=true|false` (a raft write), `GET /admin/maintenance` (linearizable: read index "+
			"on the leader, forwarded by a follower) and `GET /admin/maintenance?stale=true`; etcd with its gRPC gateway "+
			"`POST /v3/kv/put` (base64 key/value) and `POST /v3/kv/range` (linearizable by default, `serializable:true` "+
			"for the stale read). Each cell runs %s after a %s warm-up (at most %d requests). Each of the %d runs starts "+
			"fresh clusters and runs every cell back to back (the order of the systems and of leader/follower swapped "+
			"every other run); figures are medians over runs, ratios the median of the per-run ratios.\n\n",
			strings.Join(o.oursArgs, " "), r.etcdVersion, o.duration, o.warmup, o.maxOps, o.runs)
		p("| request | c | node | metasrv ops/s | p50 | p99 | etcd ops/s | p50 | p99 | metasrv ÷ etcd | per run |\n")
		p("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
		row := func(kind string, conc int) {
			for _, t := range []string{tgtLeader, tgtFollower} {
				oo, o50, o99, oe, _ := c.summary(cellKey{sysOurs, kind, t, conc})
				eo, e50, e99, ee, _ := c.summary(cellKey{sysEtcd, kind, t, conc})
				errs := ""
				if oe+ee > 0 {
					errs = fmt.Sprintf(" (errors: metasrv %d, etcd %d)", oe, ee)
				}
				rs := c.ratios[ratioOursEtcd(kind, t, conc)]
				p("| %s%s | %d | %s | %.0f | %s | %s | %.0f | %s | %s | **%.2f×** | %s |\n", kind, errs, conc, t,
					oo, fmtDur(o50), fmtDur(o99), eo, fmtDur(e50), fmtDur(e99), median(rs), fmtFloats(rs, "%.2f"))
			}
		}
		for _, conc := range o.concs {
			row(kindWrite, conc)
		}
		for _, conc := range o.readConcs {
			row(kindLin, conc)
			row(kindStale, conc)
		}
		p("\nWrites through a follower ÷ directly on the leader, same system, same run:\n\n")
		p("| c | metasrv | per run | etcd | per run |\n|---:|---:|---|---:|---|\n")
		for _, conc := range o.concs {
			a, b := c.ratios[ratioFollower(sysOurs, conc)], c.ratios[ratioFollower(sysEtcd, conc)]
			p("| %d | **%.2f×** | %s | %.2f× | %s |\n", conc, median(a), fmtFloats(a, "%.2f"), median(b), fmtFloats(b, "%.2f"))
		}
		p("\nCPU time per acknowledged write (µs, user+system from /proc, medians over runs): the leader process, "+
			"the system's three processes together, and the load generator. On this %d-core machine a CPU-bound "+
			"cell runs at about 2 s of CPU per second divided by *members + client*.\n\n", runtime.NumCPU())
		p("| c | node | metasrv leader | metasrv members | client | etcd leader | etcd members | client |\n|---:|---|---:|---:|---:|---:|---:|---:|\n")
		for _, conc := range o.concs {
			for _, t := range []string{tgtLeader, tgtFollower} {
				_, _, _, _, oc := c.summary(cellKey{sysOurs, kindWrite, t, conc})
				_, _, _, _, ec := c.summary(cellKey{sysEtcd, kindWrite, t, conc})
				p("| %d | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", conc, t, us(oc.leader), us(oc.members), us(oc.client),
					us(ec.leader), us(ec.members), us(ec.client))
			}
		}
		for _, n := range c.notes {
			p("\n- %s", n)
		}
		p("\n")
	}

	if len(r.fcOurs) > 0 || r.fcEtcd != nil {
		o := r.cfg.fcOpts
		p("## 2. Leader failover, side by side with etcd\n\n")
		p("`kill -9` of the leader; the clock starts just before the signal and stops when a write sent to a surviving "+
			"node is acknowledged (the two survivors in turn, %s per-request timeout, immediate retry; metasrv: a "+
			"maintenance toggle, etcd: a put). The killed node is restarted with its data and the cluster is healthy "+
			"again before the next trial. Timeouts are heartbeat/election/leader-lease; etcd runs with its defaults "+
			"(heartbeat 100 ms, election 1 s).\n\n", o.reqTimeout)
		p("| system (timeouts) | trials | min | median | p90 | max | failed | median ÷ etcd | all trials |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
		var em time.Duration
		if r.fcEtcd != nil {
			em = summarize(r.fcEtcd.times).Median
		}
		all := append(append([]*failoverResult{}, r.fcOurs...), r.fcEtcd)
		for _, f := range all {
			if f == nil {
				continue
			}
			d := summarize(f.times)
			name := "metasrv " + f.set.String()
			rel := "–"
			if f == r.fcEtcd {
				name = r.etcdVersion + " (100ms/1s)"
			} else if em > 0 {
				rel = fmt.Sprintf("**%.2f×**", float64(d.Median)/float64(em))
			}
			p("| %s | %d | %s | **%s** | %s | %s | %d | %s | %s |\n", name, d.N+f.failed, fmtDur(d.Min), fmtDur(d.Median),
				fmtDur(d.P90), fmtDur(d.Max), f.failed, rel, fmtDurs(d.Sorted))
		}
		for _, f := range all {
			if f == nil {
				continue
			}
			for _, n := range f.notes {
				p("\n- %s: %s", f.set.Name, n)
			}
		}
		p("\n")
	}
}

func (r *report) markdownScale(p func(string, ...any)) {
	if len(r.reaction) > 0 {
		p("## 4. Failover reaction: datanode kill → routes committed elsewhere\n\n")
		p("3 metasrv + %d datanode processes (cmd/datanode), one table of %d regions, balancer off. Each trial waits for the "+
			"steady state (every datanode alive, every route served), kills -9 the datanode that owns the most regions, and "+
			"polls `GET /admin/regions` on the leader every 50 ms: *committed* is when no route names the dead datanode any "+
			"more (the MoveRegions entry is committed and applied), *served* when every moved region is also reported open by "+
			"its new owner. The dead datanode is restarted after each trial. The leader moves regions only after detection "+
			"(phi > threshold) *and* after the dead datanode's last lease (+ heartbeat/2 margin) ran out.\n\n",
			r.cfg.reaction.datanodes, r.cfg.reaction.regions)
		p("| timings | trials | committed: min | median | p90 | max | served: median | max | failed | all trials (committed) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, x := range r.reaction {
			c, s := summarize(x.committed), summarize(x.served)
			p("| %s | %d | %s | **%s** | %s | %s | %s | %s | %d | %s |\n", x.set.Name, c.N+x.failed, fmtDur(c.Min), fmtDur(c.Median),
				fmtDur(c.P90), fmtDur(c.Max), fmtDur(s.Median), fmtDur(s.Max), x.failed, fmtDurs(c.Sorted))
		}
		p("\n")
		for _, x := range r.reaction {
			p("- **%s**: %s.\n", x.set.Name, x.set.Desc)
			for _, n := range x.notes {
				p("  - %s\n", n)
			}
		}
		p("\n")
	}
	if len(r.scale) > 0 || len(r.scaleErrs) > 0 {
		o := r.cfg.scale
		p("## 5. Scale: simulated datanodes heartbeating the leader\n\n")
		p("One load-generator process (this benchmark) simulates N datanodes, each heartbeating `POST /v1/heartbeat` to the "+
			"leader every %s (phases spread evenly, at most %d requests in flight) with an increasing `seq`. Each registers "+
			"with its first heartbeat; tables of up to 10 000 regions are then created on the leader until every datanode owns "+
			"%d regions, and each simulated datanode opens what the answers tell it to and reports it in every heartbeat. Once "+
			"every one serves its %d regions (and one more interval), a window of %s is measured: heartbeats acknowledged per "+
			"second, their latency, the leader's CPU (from /proc) and its resident memory. metasrv flags: `%s`. Everything runs "+
			"on the same %d-core machine (3 metasrv processes and the load generator).\n\n",
			o.interval, o.inflight, o.regions, o.regions, o.measure, strings.Join(r.cfg.scaleArgs, " "), runtime.NumCPU())
		p("| datanodes × regions | setup | heartbeats/s (offered) | p50 | p99 | errors | late | leader cores | leader RSS (peak) | busier follower cores | load generator cores |\n")
		p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range r.scale {
			p("| %d × %d | %s | %.0f (%.0f) | %s | %s | %d | %d | **%.2f** | %d MB (%d MB) | %.2f | %.2f |\n", s.datanodes, s.regions,
				s.setup.Round(time.Second), s.perSec(), float64(s.datanodes)/s.interval.Seconds(), fmtDur(percentile(s.lat, 50)),
				fmtDur(percentile(s.lat, 99)), s.errs, s.late, s.leaderCores, s.leaderRSS>>20, s.leaderPeakRSS>>20, s.followerCores, s.clientCores)
		}
		for _, s := range r.scale {
			if s.firstErr != "" {
				p("\n- %d datanodes: first error: %s", s.datanodes, s.firstErr)
			}
		}
		for _, e := range r.scaleErrs {
			p("\n- **did not reach a steady state**: %s", e)
		}
		p("\n\n")
	}
	if s := r.snapshot; s != nil {
		p("## 6. FSM with 1 000 000 regions (in process)\n\n")
		p("`%s` builds an FSM through `Apply` as a leader would (10 000 datanodes registered, 100 tables of 10 000 regions, "+
			"100 regions per datanode), then per iteration takes a snapshot (`Snapshot`: the copy under the lock, then "+
			"`WriteSnapshot`, what `Persist` streams to the snapshot file) and restores it into a fresh FSM (`Restore`). "+
			"*state heap* is the live heap the state holds after a GC; *snapshot alloc* the garbage one snapshot makes. "+
			"*Format1* is the same with the JSON snapshot format 1. `RegionsOf` is the heartbeat handler's lookup of one datanode's regions.\n\n", s.command)
		p("| benchmark | iterations | metrics |\n|---|---:|---|\n")
		for _, b := range s.benches {
			var ms []string
			for _, u := range b.units {
				ms = append(ms, fmt.Sprintf("%s %s", fmtNum(b.metrics[u]), u))
			}
			p("| %s | %d | %s |\n", b.name, b.n, strings.Join(ms, ", "))
		}
		p("\n")
	}
}

func fmtNum(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// targets6 checks the figures measured against the targets of a
// side-by-side run (the constants above).
func (r *report) targets6() [][3]string {
	var out [][3]string
	verdict := func(ok bool, miss string) string {
		if ok {
			return "met"
		}
		return "**missed** " + miss
	}
	if c := r.compare; c != nil {
		conc := 0
		for _, x := range c.opts.concs {
			conc = max(conc, x)
		}
		m := median(c.ratios[ratioOursEtcd(kindWrite, tgtLeader, conc)])
		out = append(out, [3]string{fmt.Sprintf("writes at c%d on the leader ≥ %.0f× etcd", conc, targetLeaderVsEtcd),
			fmt.Sprintf("%.2f×", m), verdict(m >= targetLeaderVsEtcd, fmt.Sprintf("by %.2f× (%.0f%% short)", targetLeaderVsEtcd-m, 100*(1-m/targetLeaderVsEtcd)))})
		for _, x := range c.opts.concs {
			f := median(c.ratios[ratioFollower(sysOurs, x)])
			out = append(out, [3]string{fmt.Sprintf("writes through a follower ≥ %.1f× direct, c%d", targetFollowerRatio, x),
				fmt.Sprintf("%.2f×", f), verdict(f >= targetFollowerRatio, fmt.Sprintf("by %.2f×", targetFollowerRatio-f))})
		}
	}
	if r.fcEtcd != nil {
		em := summarize(r.fcEtcd.times).Median
		for _, f := range r.fcOurs {
			if f.set.Name != "default" {
				continue
			}
			m := summarize(f.times).Median
			rel := float64(m) / float64(max(em, 1))
			out = append(out, [3]string{fmt.Sprintf("leader failover median ≤ %.1f× etcd (default timeouts)", targetFailoverRatio),
				fmt.Sprintf("%s vs %s = %.2f×", fmtDur(m), fmtDur(em), rel), verdict(rel <= targetFailoverRatio, fmt.Sprintf("by %.2f×", rel-targetFailoverRatio))})
		}
	}
	for _, s := range r.stability {
		if s.set.Name != "default" {
			continue
		}
		changes := max(s.leaderChanges, float64(s.termDelta))
		out = append(out, [3]string{fmt.Sprintf("0 spurious leader changes in %s at c%d (default timeouts)", s.opts.duration, s.opts.conc),
			fmt.Sprintf("%.0f leader changes, term +%d", s.leaderChanges, s.termDelta), verdict(changes == 0, "")})
	}
	for _, e := range r.scaleErrs {
		out = append(out, [3]string{"5 000 datanodes × 100 regions at 3 s on < 1 core of the leader", "no steady state: " + e, "**missed**"})
	}
	for _, s := range r.scale {
		if s.datanodes != 5000 {
			continue
		}
		ok := s.leaderCores < targetScaleCores && s.perSec() >= 0.95*float64(s.datanodes)/s.interval.Seconds() && s.errs == 0
		out = append(out, [3]string{fmt.Sprintf("%d datanodes × %d regions at %s on < 1 core of the leader", s.datanodes, s.regions, s.interval),
			fmt.Sprintf("%.2f cores, %.0f of %.0f heartbeats/s, p99 %s, %d errors", s.leaderCores, s.perSec(), float64(s.datanodes)/s.interval.Seconds(),
				fmtDur(percentile(s.lat, 99)), s.errs), verdict(ok, fmt.Sprintf("(%.2f cores)", s.leaderCores))})
	}
	if s := r.snapshot; s != nil {
		sn, ok1 := s.metric("Snapshot1MRegions", "snapshot-ms")
		rs, ok2 := s.metric("Snapshot1MRegions", "restore-ms")
		if ok1 && ok2 {
			tot := time.Duration((sn + rs) * float64(time.Millisecond))
			out = append(out, [3]string{"1 000 000 regions: snapshot + restore < 2 s", fmt.Sprintf("%s + %s = %s",
				fmtDur(time.Duration(sn*float64(time.Millisecond))), fmtDur(time.Duration(rs*float64(time.Millisecond))), fmtDur(tot)),
				verdict(tot < targetSnapshotTotal, fmt.Sprintf("by %s", fmtDur(tot-targetSnapshotTotal)))})
		}
		if h, ok := s.metric("Snapshot1MRegions", "state-heap-MB"); ok {
			a, _ := s.metric("Snapshot1MRegions", "snapshot-alloc-MB")
			out = append(out, [3]string{"1 000 000 regions: leader memory < 500 MB", fmt.Sprintf("state %.0f MB live heap, + %.0f MB allocated per snapshot", h, a),
				verdict(h+a < targetLeaderMemMB, "")})
		}
	}
	return out
}
