package main

import (
	"fmt"
	"runtime"
	"time"
)

// Targets of a write cell.
const (
	targetLeader   = "leader (direct)"
	targetFollower = "follower (forwarded)"
)

type writeOpts struct {
	concs      []int
	runs       int
	duration   time.Duration
	warmup     time.Duration
	maxOps     int64
	reqTimeout time.Duration
}

// writesResult holds every cell of every run. Each run is a fresh cluster
// in which the direct and forwarded cells run back to back (order swapped
// on every other run), so each follower/direct ratio is measured in the
// same run on the same cluster.
type writesResult struct {
	opts   writeOpts
	cells  map[int]map[string][]loadResult // conc → target → one per run
	ratios map[int][]float64               // conc → follower/direct ops/s, one per run
	notes  []string
}

func runWrites(e *env, o writeOpts) (*writesResult, error) {
	res := &writesResult{opts: o, cells: map[int]map[string][]loadResult{}, ratios: map[int][]float64{}}
	for _, c := range o.concs {
		res.cells[c] = map[string][]loadResult{}
	}
	for run := 1; run <= o.runs; run++ {
		c, err := e.startCluster(fmt.Sprintf("writes-r%d", run), nil)
		if err != nil {
			return nil, err
		}
		leader, follower, err := leaderAndFollower(c)
		if err != nil {
			c.Close()
			return nil, err
		}
		for _, conc := range o.concs {
			targets := []string{targetLeader, targetFollower}
			if run%2 == 0 {
				targets[0], targets[1] = targets[1], targets[0]
			}
			got := map[string]loadResult{}
			for _, t := range targets {
				node := leader
				if t == targetFollower {
					node = follower
				}
				if o.warmup > 0 {
					runLoad(e.client, node.URL(""), conc, o.warmup, 0, o.reqTimeout)
				}
				before := sampleCPU(c)
				mb0, mt0 := machineCPU()
				r := runLoad(e.client, node.URL(""), conc, o.duration, o.maxOps, o.reqTimeout)
				r.CPU = rolesCPU(sampleCPU(c).sub(before), leader.ID, follower.ID)
				if mb1, mt1 := machineCPU(); mt1 > mt0 {
					r.MachineBusy = float64(mb1-mb0) / float64(mt1-mt0) * float64(runtime.NumCPU())
				}
				got[t] = r
				res.cells[conc][t] = append(res.cells[conc][t], r)
				e.logf("writes run %d/%d c=%d %-20s %6.0f ops/s  p50 %-8s p99 %-8s errors %d  CPU/write µs: leader %.0f follower %.0f other %.0f client %.0f, cores busy %.2f (machine %.2f) %s",
					run, o.runs, conc, t, r.OpsPerSec(), fmtDur(r.P(50)), fmtDur(r.P(99)), r.Errors,
					us(r.cpuPerOp(roleLeader)), us(r.cpuPerOp(roleFollower)), us(r.cpuPerOp(roleOther)), us(r.cpuPerOp(selfKey)),
					r.coresBusy(), r.MachineBusy, r.FirstErr)
			}
			if d := got[targetLeader].OpsPerSec(); d > 0 {
				res.ratios[conc] = append(res.ratios[conc], got[targetFollower].OpsPerSec()/d)
			}
		}
		if l, err := c.WaitLeader(5 * time.Second); err != nil || l.ID != leader.ID {
			res.notes = append(res.notes, fmt.Sprintf("run %d: the leader changed during the run (was %s)", run, leader.ID))
		}
		c.Close()
	}
	return res, nil
}

// CPU roles: the leader, the follower that forwarded cells go through (a
// plain follower in direct cells), the other follower, and the client.
const (
	roleLeader   = "leader"
	roleFollower = "follower"
	roleOther    = "other"
)

var roles = []string{roleLeader, roleFollower, roleOther, selfKey}

func rolesCPU(s cpuSample, leaderID, followerID string) map[string]time.Duration {
	out := map[string]time.Duration{}
	for k, v := range s {
		switch k {
		case leaderID:
			out[roleLeader] = v
		case followerID:
			out[roleFollower] = v
		case selfKey:
			out[selfKey] = v
		default:
			out[roleOther] += v
		}
	}
	return out
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// cellSummary is the median over runs of one cell.
type cellSummary struct {
	OpsPerSec float64
	P50, P99  time.Duration
	Errors    int
	PerRun    []float64 // ops/s of each run
	CPUPerOp  map[string]time.Duration
	Cores     float64 // ours
	Machine   float64 // whole machine
}

// totalCPU is the CPU per write of every process together.
func (s cellSummary) totalCPU() time.Duration {
	var t time.Duration
	for _, role := range roles {
		t += s.CPUPerOp[role]
	}
	return t
}

func (w *writesResult) summary(conc int, target string) cellSummary {
	var s cellSummary
	var p50, p99 []time.Duration
	var cores, machine []float64
	cpu := map[string][]time.Duration{}
	for _, r := range w.cells[conc][target] {
		s.PerRun = append(s.PerRun, r.OpsPerSec())
		p50 = append(p50, r.P(50))
		p99 = append(p99, r.P(99))
		s.Errors += r.Errors
		cores = append(cores, r.coresBusy())
		machine = append(machine, r.MachineBusy)
		for _, role := range roles {
			cpu[role] = append(cpu[role], r.cpuPerOp(role))
		}
	}
	s.OpsPerSec = median(s.PerRun)
	s.P50, s.P99 = medianDur(p50), medianDur(p99)
	s.Cores, s.Machine = median(cores), median(machine)
	s.CPUPerOp = map[string]time.Duration{}
	for role, ds := range cpu {
		s.CPUPerOp[role] = medianDur(ds)
	}
	return s
}
