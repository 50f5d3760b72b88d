package main

import (
	"fmt"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
)

type failoverOpts struct {
	trials     int
	reqTimeout time.Duration // per write attempt after the kill
	giveUp     time.Duration // a trial fails if no write is acknowledged by then
}

// failoverResult is every trial with one timeout set.
type failoverResult struct {
	set      timeoutSet
	times    []time.Duration // kill → first acknowledged write, per successful trial
	attempts []int           // writes sent until the first acknowledgement
	killedAt []time.Time     // just before the kill, per successful trial
	failed   int
	notes    []string
}

// runFailover kills the leader with SIGKILL trials times, each time
// measuring from just before the kill until a write sent to a surviving
// node (round robin, short per-request timeout, immediate retry) is
// acknowledged. The killed node is restarted with its data and the cluster
// is healthy again before the next trial.
func runFailover(e *env, set timeoutSet, o failoverOpts) (*failoverResult, error) {
	res := &failoverResult{set: set}
	c, err := e.startCluster("failover-"+set.Name, set.Args)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return res, failoverTrials(e, c, set.Name, o, res)
}

// failoverTrials runs o.trials leader kills on the running cluster c,
// adding each to res; name labels the log lines.
func failoverTrials(e *env, c *localcluster.Cluster, name string, o failoverOpts, res *failoverResult) error {
	client := e.clientOf(c)
	for trial := 1; trial <= o.trials; trial++ {
		leader, err := c.WaitLeader(10 * time.Second)
		if err != nil {
			return fmt.Errorf("trial %d: %w", trial, err)
		}
		var survivors []*localcluster.Node
		for _, n := range c.Running() {
			if n != leader {
				survivors = append(survivors, n)
			}
		}
		if len(survivors) < 2 {
			return fmt.Errorf("trial %d: want 2 survivors, have %d", trial, len(survivors))
		}
		start := time.Now()
		leader.Kill()
		killed := time.Since(start)
		d, attempts, by, err := firstAckOf(oursTargets(client, survivors), trial, start, o)
		if err != nil {
			res.failed++
			res.notes = append(res.notes, fmt.Sprintf("trial %d: %v", trial, err))
			e.logf("failover %s trial %d/%d: FAILED: %v", name, trial, o.trials, err)
		} else {
			res.times = append(res.times, d)
			res.killedAt = append(res.killedAt, start)
			res.attempts = append(res.attempts, attempts)
			e.logf("failover %s trial %d/%d: killed %s (kill took %s) → write acknowledged by %s after %s (%d attempts)",
				name, trial, o.trials, leader.ID, fmtDur(killed), by, fmtDur(d), attempts)
		}
		if err := leader.Start(); err != nil {
			return fmt.Errorf("trial %d: restart %s: %w", trial, leader.ID, err)
		}
		if err := e.waitHealthy(c, 60*time.Second); err != nil {
			return fmt.Errorf("trial %d: cluster not healthy after restarting %s: %w", trial, leader.ID, err)
		}
	}
	return nil
}
