package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
)

type stabilityOpts struct {
	duration   time.Duration
	conc       int
	maxOps     int64
	reqTimeout time.Duration
	poll       time.Duration
}

// stabilityResult is one long run at high concurrency on the leader,
// watching for leader changes that nobody caused.
type stabilityResult struct {
	set           timeoutSet
	opts          stabilityOpts
	load          loadResult
	startLeader   string
	endLeader     string
	leaderChanges float64  // largest increase of metasrv_raft_leader_changes_total on any node
	termDelta     uint64   // largest term increase seen by polling GET /admin/raft
	leadersSeen   []string // distinct leader ids reported while polling
	noLeaderPolls int      // polls where a node reported no leader
	polls         int
}

func runStability(e *env, set timeoutSet, o stabilityOpts) (*stabilityResult, error) {
	res := &stabilityResult{set: set, opts: o}
	c, err := e.startCluster("stability-"+set.Name, set.Args)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	leader, err := c.WaitLeader(10 * time.Second)
	if err != nil {
		return nil, err
	}
	res.startLeader = leader.ID
	nodes := c.Running()
	before, err := changesByNode(e, nodes)
	if err != nil {
		return nil, err
	}
	startTerm, err := maxTerm(c, nodes)
	if err != nil {
		return nil, err
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(o.poll)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			for _, n := range nodes {
				st, err := c.Status(n)
				if err != nil {
					continue
				}
				res.polls++
				if st.LeaderID == "" {
					res.noLeaderPolls++
				} else if !slices.Contains(res.leadersSeen, st.LeaderID) {
					res.leadersSeen = append(res.leadersSeen, st.LeaderID)
				}
				if st.Term > startTerm {
					res.termDelta = max(res.termDelta, st.Term-startTerm)
				}
			}
		}
	}()
	e.logf("stability %s: %s at concurrency %d on leader %s", set.Name, o.duration, o.conc, leader.ID)
	res.load = runLoad(e.client, leader.URL(""), o.conc, o.duration, o.maxOps, o.reqTimeout)
	close(stop)
	wg.Wait()

	after, err := changesByNode(e, nodes)
	if err != nil {
		return nil, err
	}
	for id, v := range after {
		res.leaderChanges = max(res.leaderChanges, v-before[id])
	}
	endTerm, err := maxTerm(c, nodes)
	if err == nil && endTerm > startTerm {
		res.termDelta = max(res.termDelta, endTerm-startTerm)
	}
	if l, err := c.WaitLeader(5 * time.Second); err == nil {
		res.endLeader = l.ID
	}
	e.logf("stability %s: %.0f ops/s, p99 %s, errors %d, leader changes %.0f, term +%d, leaders seen %v",
		set.Name, res.load.OpsPerSec(), fmtDur(res.load.P(99)), res.load.Errors, res.leaderChanges, res.termDelta, res.leadersSeen)
	return res, nil
}

func changesByNode(e *env, nodes []*localcluster.Node) (map[string]float64, error) {
	out := map[string]float64{}
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := leaderChanges(ctx, e.client, n)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.ID, err)
		}
		out[n.ID] = v
	}
	return out, nil
}

func maxTerm(c *localcluster.Cluster, nodes []*localcluster.Node) (uint64, error) {
	var term uint64
	for _, n := range nodes {
		st, err := c.Status(n)
		if err != nil {
			return 0, err
		}
		term = max(term, st.Term)
	}
	return term, nil
}
