package main

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Summaries and the markdown of the tls section.

// tlsSummary is, for one mode and target, the medians over cells.
type tlsSummary struct {
	OpsPerSec float64
	P50, P99  time.Duration
	Errors    int
	PerRun    []float64
	CPU       time.Duration            // per write, all processes
	Machine   float64                  // cores busy on the whole machine
	Others    float64                  // of which not ours (other tenants)
	Roles     map[string]time.Duration // CPU per write by role (roles)
}

func (t *tlsResult) cellsOf(mode string) []*tlsCell {
	var out []*tlsCell
	for _, c := range t.cells {
		if c.mode == mode {
			out = append(out, c)
		}
	}
	return out
}

func (t *tlsResult) summary(mode, target string) tlsSummary {
	var s tlsSummary
	var p50, p99, cpu []time.Duration
	var machine, others []float64
	roleCPU := map[string][]time.Duration{}
	for _, c := range t.cellsOf(mode) {
		r := c.writes[target]
		machine = append(machine, r.MachineBusy)
		others = append(others, max(r.MachineBusy-r.coresBusy(), 0))
		for _, role := range roles {
			roleCPU[role] = append(roleCPU[role], r.cpuPerOp(role))
		}
		s.PerRun = append(s.PerRun, r.OpsPerSec())
		p50, p99 = append(p50, r.P(50)), append(p99, r.P(99))
		cpu = append(cpu, cpuPerWrite(r))
		s.Errors += r.Errors
	}
	s.OpsPerSec = median(s.PerRun)
	s.P50, s.P99, s.CPU = medianDur(p50), medianDur(p99), medianDur(cpu)
	s.Machine, s.Others = median(machine), median(others)
	s.Roles = map[string]time.Duration{}
	for role, ds := range roleCPU {
		s.Roles[role] = medianDur(ds)
	}
	return s
}

// pairs returns the plaintext and TLS cells of every complete run.
func (t *tlsResult) pairs() (plain, secure []*tlsCell) {
	byRun := map[int]map[string]*tlsCell{}
	for _, c := range t.cells {
		if byRun[c.run] == nil {
			byRun[c.run] = map[string]*tlsCell{}
		}
		byRun[c.run][c.mode] = c
	}
	runs := make([]int, 0, len(byRun))
	for r := range byRun {
		runs = append(runs, r)
	}
	sort.Ints(runs)
	for _, r := range runs {
		if p, s := byRun[r][modePlain], byRun[r][modeTLS]; p != nil && s != nil {
			plain, secure = append(plain, p), append(secure, s)
		}
	}
	return plain, secure
}

// opsRatios are TLS ÷ plaintext ops/s of target, one per run.
func (t *tlsResult) opsRatios(target string) []float64 {
	plain, secure := t.pairs()
	var p, s []float64
	for i := range plain {
		p = append(p, plain[i].writes[target].OpsPerSec())
		s = append(s, secure[i].writes[target].OpsPerSec())
	}
	return pairRatios(s, p)
}

// failoverTimes is every acknowledged trial of mode, and the failures.
func (t *tlsResult) failoverTimes(mode string) ([]time.Duration, int) {
	var ds []time.Duration
	failed := 0
	for _, c := range t.cellsOf(mode) {
		ds = append(ds, c.fo.times...)
		failed += c.fo.failed
	}
	return ds, failed
}

// dialsOf is the connections opened in phase by each of mode's cells.
func (t *tlsResult) dialsOf(mode, phase string) []int64 {
	var per []int64
	for _, c := range t.cellsOf(mode) {
		per = append(per, c.dials[phase])
	}
	return per
}

// stepSummary is the medians of the failover steps of one mode.
type stepSummary struct {
	n, of                       int
	detect, elect, serve, total time.Duration
}

func (t *tlsResult) stepMedians(mode string) stepSummary {
	var s stepSummary
	var d, e, v, tot []time.Duration
	for _, c := range t.cellsOf(mode) {
		s.of += len(c.fo.times)
		for i, st := range c.steps {
			if !st.ok || i >= len(c.fo.times) {
				continue
			}
			s.n++
			d = append(d, st.detect)
			e = append(e, st.elect-st.detect)
			v = append(v, c.fo.times[i]-st.elect)
			tot = append(tot, c.fo.times[i])
		}
	}
	if s.n > 0 {
		s.detect, s.elect, s.serve, s.total = medianDur(d), medianDur(e), medianDur(v), medianDur(tot)
	}
	return s
}

// pairRatios returns num[i] ÷ den[i] for each i both have, skipping a zero
// or missing denominator.
func pairRatios(num, den []float64) []float64 {
	var out []float64
	for i := 0; i < len(num) && i < len(den); i++ {
		if den[i] > 0 && !math.IsNaN(den[i]) && !math.IsNaN(num[i]) {
			out = append(out, num[i]/den[i])
		}
	}
	return out
}

// durRatio is a ÷ b, NaN when either is missing.
func durRatio(a, b time.Duration) float64 {
	if a <= 0 || b <= 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// fmtRatio prints a ratio as 0.93×, or – when it could not be taken.
func fmtRatio(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", x)
}

// verdictAtLeast judges a ratio that should be at least target.
func verdictAtLeast(x, target float64) string {
	switch {
	case math.IsNaN(x):
		return "**not measured**"
	case x >= target:
		return "met"
	default:
		return fmt.Sprintf("**missed** by %.2f", target-x)
	}
}

// verdictAtMost judges a ratio that should be at most target.
func verdictAtMost(x, target float64) string {
	switch {
	case math.IsNaN(x):
		return "**not measured**"
	case x <= target:
		return "met"
	default:
		return fmt.Sprintf("**missed** by %.2f", x-target)
	}
}

// Targets of the tls section.
const (
	tlsOpsTarget      = 0.85 // TLS ops/s ≥ 0.85× plaintext
	tlsFailoverTarget = 1.10 // TLS failover ≤ 1.10× plaintext (median)
)

// plural is "1 pair" or "3 pairs".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func fmtInts(xs []int64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(s, ", ")
}

func (t *tlsResult) markdown(p func(string, ...any)) {
	o := t.opts
	plain, secure := t.pairs()
	p("## 4. TLS cost\n\n")
	p("The same measurements on a plaintext cluster and on a TLS cluster (`localcluster.Options.TLS`: a CA per "+
		"cluster, every member with mutual TLS on the raft port through `--peer-cert-file`/`--peer-key-file`/"+
		"`--peer-trusted-ca-file`, HTTPS with `--client-cert-auth`, the client presenting an operator "+
		"certificate), otherwise the same flags (the binary's default raft timeouts). Cells alternate in one run: "+
		"plaintext, TLS, plaintext, TLS, … — %s, each cell a fresh cluster, in which %d closed-loop clients "+
		"write on the leader and through a follower for %s each (after a %s warm-up; order swapped every other "+
		"pair), and then the leader is killed %s (`kill -9` → next acknowledged write, as in the leader-failover section). "+
		"The client keeps connections alive (at most %d idle per host); every connection it opens is counted by a "+
		"wrapper around its dialer (`DialTLSContext` under TLS, so each is one TLS handshake). Figures are medians "+
		"over cells; ratios are TLS ÷ plaintext.\n\n",
		plural(len(plain), "pair", "pairs"), o.conc, o.duration, o.warmup, plural(o.trials, "time", "times"), 2*max(o.conc, 16))
	if len(plain) == 0 {
		p("No complete pair was measured.\n\n")
		return
	}
	raft := map[string]int{}
	for _, c := range secure {
		raft[c.raft]++
	}
	var rs []string
	for k, n := range raft {
		rs = append(rs, fmt.Sprintf("%s (%d of %d TLS cells)", k, n, len(secure)))
	}
	sort.Strings(rs)
	p("Raft port of the TLS cells, probed after their write cells with a TLS handshake: %s.\n\n", strings.Join(rs, "; "))

	p("*CPU per write* is the user+system time of the three nodes and the client (from /proc) per acknowledged "+
		"write; *machine* is how many of the machine's %d cores were busy during the cell, everything included, "+
		"and *others* how many of them went to processes other than the cluster and the client (other tenants): "+
		"the noise the ratios are taken in.\n\n", runtime.NumCPU())
	p("| target | cluster | ops/s | p50 | p99 | errors | CPU per write | machine | others | ops/s per pair |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, tg := range []string{targetLeader, targetFollower} {
		for _, m := range []string{modePlain, modeTLS} {
			s := t.summary(m, tg)
			p("| %s | %s | %.0f | %s | %s | %d | %.0f µs | %.2f | %.2f | %s |\n", tg, m, s.OpsPerSec, fmtDur(s.P50), fmtDur(s.P99), s.Errors,
				us(s.CPU), s.Machine, s.Others, fmtFloats(s.PerRun, "%.0f"))
		}
	}
	p("\n| target | TLS ÷ plaintext ops/s (median of per-pair ratios) | per pair | p50 | p99 | CPU per write | target |\n|---|---:|---|---:|---:|---:|---|\n")
	for _, tg := range []string{targetLeader, targetFollower} {
		rs := t.opsRatios(tg)
		sp, ss := t.summary(modePlain, tg), t.summary(modeTLS, tg)
		p("| %s | **%s** | %s | %s | %s | %s | ≥ %.2f×: %s |\n", tg, fmtRatio(median(rs)), fmtFloats(rs, "%.2f"),
			fmtRatio(durRatio(ss.P50, sp.P50)), fmtRatio(durRatio(ss.P99, sp.P99)), fmtRatio(durRatio(ss.CPU, sp.CPU)),
			tlsOpsTarget, verdictAtLeast(median(rs), tlsOpsTarget))
	}

	p("\nCPU per write by process (µs, medians over cells): *follower* is the node the forwarded cells go " +
		"through (an ordinary follower in the direct cells), *client* the load generator.\n\n")
	p("| target | cluster | leader | follower | other follower | client | total |\n|---|---|---:|---:|---:|---:|---:|\n")
	for _, tg := range []string{targetLeader, targetFollower} {
		sp, ss := t.summary(modePlain, tg), t.summary(modeTLS, tg)
		for _, row := range []struct {
			name string
			s    tlsSummary
		}{{modePlain, sp}, {modeTLS, ss}} {
			p("| %s | %s |", tg, row.name)
			for _, role := range roles {
				p(" %.0f |", us(row.s.Roles[role]))
			}
			p(" %.0f |\n", us(row.s.CPU))
		}
		p("| %s | TLS − plaintext |", tg)
		for _, role := range roles {
			p(" %+.0f |", us(ss.Roles[role]-sp.Roles[role]))
		}
		p(" %+.0f |\n", us(ss.CPU-sp.CPU))
	}

	p("\nConnections the benchmark's client opened, per cell (under TLS each is a full handshake): *setup* is the "+
		"health checks of a fresh cluster, *failover* the %s with the restarts and health checks after them.\n\n", plural(o.trials, "kill", "kills"))
	p("| cluster |")
	for _, ph := range tlsPhases {
		p(" %s |", phaseTitle(ph))
	}
	p(" whole cell |\n|---|")
	for range tlsPhases {
		p("---|")
	}
	p("---|\n")
	for _, m := range []string{modePlain, modeTLS} {
		p("| %s |", m)
		var total []int64
		for _, ph := range tlsPhases {
			per := t.dialsOf(m, ph)
			p(" %s |", fmtInts(per))
			for i, n := range per {
				if i == len(total) {
					total = append(total, 0)
				}
				total[i] += n
			}
		}
		p(" %s |\n", fmtInts(total))
	}
	member := map[string]bool{}
	scraped, nodes := 0, 0
	for _, c := range t.cells {
		for k := range c.member {
			member[k] = true
		}
		scraped, nodes = scraped+c.scraped, nodes+c.asked
	}
	if len(member) == 0 {
		p("\nMember-to-member connections: no counter of them in `/metrics` (no sample whose name contains %s; "+
			"%d of %d scrapes answered), so only the client's connections are counted.\n",
			strings.Join(memberMetricWords, ", "), scraped, nodes)
	} else {
		keys := make([]string, 0, len(member))
		for k := range member {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		p("\nMember-to-member counters in `/metrics`, summed over the three nodes after the write cells, per cell:\n\n| sample | plaintext | TLS |\n|---|---|---|\n")
		for _, k := range keys {
			var pv, sv []string
			for i := range plain {
				pv = append(pv, strconv.FormatFloat(plain[i].member[k], 'f', -1, 64))
				sv = append(sv, strconv.FormatFloat(secure[i].member[k], 'f', -1, 64))
			}
			p("| `%s` | %s | %s |\n", k, strings.Join(pv, ", "), strings.Join(sv, ", "))
		}
	}

	p("\nLeader failover (`kill -9` → next acknowledged write; %s per-request timeout, writes to the survivors in turn):\n\n", o.failover.reqTimeout)
	p("| cluster | trials | min | median | p90 | max | failed | all trials |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
	var meds, maxs [2]time.Duration
	for i, m := range []string{modePlain, modeTLS} {
		ds, failed := t.failoverTimes(m)
		d := summarize(ds)
		meds[i], maxs[i] = d.Median, d.Max
		p("| %s | %d | %s | **%s** | %s | %s | %d | %s |\n", m, d.N+failed, fmtDur(d.Min), fmtDur(d.Median), fmtDur(d.P90),
			fmtDur(d.Max), failed, fmtDurs(d.Sorted))
	}
	p("\nThe same kills on the nodes' log timeline (hashicorp raft's `%s` and `%s` lines, millisecond "+
		"timestamps): *detect* is kill → a survivor gives up on the leader's heartbeat, *elect* detect → a new "+
		"leader, *serve* new leader → the write acknowledged (forwarding to the new leader included). Medians over "+
		"the trials whose lines were found.\n\n", markDetect, markLeader)
	p("| cluster | trials split | detect | elect | serve | kill → ack |\n|---|---:|---:|---:|---:|---:|\n")
	var split [2][4]time.Duration
	for i, m := range []string{modePlain, modeTLS} {
		st := t.stepMedians(m)
		split[i] = [4]time.Duration{st.detect, st.elect, st.serve, st.total}
		p("| %s | %d of %d | %s | %s | %s | %s |\n", m, st.n, st.of, fmtDur(st.detect), fmtDur(st.elect), fmtDur(st.serve), fmtDur(st.total))
	}
	p("| TLS ÷ plaintext | | %s | %s | %s | %s |\n", fmtRatio(durRatio(split[1][0], split[0][0])),
		fmtRatio(durRatio(split[1][1], split[0][1])), fmtRatio(durRatio(split[1][2], split[0][2])), fmtRatio(durRatio(split[1][3], split[0][3])))
	mr := durRatio(meds[1], meds[0])
	p("\nTLS ÷ plaintext failover: median **%s**, max %s (target: median ≤ %.2f×: %s).\n", fmtRatio(mr),
		fmtRatio(durRatio(maxs[1], maxs[0])), tlsFailoverTarget, verdictAtMost(mr, tlsFailoverTarget))
	for _, c := range t.cells {
		for _, n := range c.fo.notes {
			p("\n- pair %d, %s: %s", c.run, c.mode, n)
		}
	}
	for _, n := range t.notes {
		p("\n- %s", n)
	}
	p("\n\n")
}

// targets of the tls section for the report's table.
func (t *tlsResult) targets() [][3]string {
	var out [][3]string
	for _, tg := range []string{targetLeader, targetFollower} {
		m := median(t.opsRatios(tg))
		out = append(out, [3]string{fmt.Sprintf("writes with TLS ≥ %.2f× plaintext, concurrency %d, %s", tlsOpsTarget, t.opts.conc, tg),
			fmtRatio(m), verdictAtLeast(m, tlsOpsTarget)})
	}
	pd, _ := t.failoverTimes(modePlain)
	sd, _ := t.failoverTimes(modeTLS)
	r := durRatio(summarize(sd).Median, summarize(pd).Median)
	out = append(out, [3]string{fmt.Sprintf("leader failover with TLS ≤ %.2f× plaintext (median)", tlsFailoverTarget),
		fmt.Sprintf("%s (%s vs %s)", fmtRatio(r), fmtDur(summarize(sd).Median), fmtDur(summarize(pd).Median)), verdictAtMost(r, tlsFailoverTarget)})
	return out
}
