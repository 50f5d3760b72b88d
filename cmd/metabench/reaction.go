package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/metasrv/metasrv/deploy/localcluster"
	"github.com/metasrv/metasrv/server/wire"
)

// reactionSet is one choice of datanode failure-detection timings.
type reactionSet struct {
	Name string
	Desc string
	Args []string
}

var reactionSets = map[string]reactionSet{
	"greptimedb": {Name: "greptimedb", Desc: "GreptimeDB's defaults = metasrv's defaults: heartbeat 3 s, acceptable pause 10 s, min std-dev 100 ms, phi 8, lease 3×3 s+1 s, tick 1 s"},
	"fast": {Name: "fast", Desc: "heartbeat 500 ms, acceptable pause 1 s, min std-dev 100 ms, phi 8, first estimate 500 ms, lease 1.6 s, tick 100 ms",
		Args: []string{"--heartbeat-interval", "500ms", "--acceptable-heartbeat-pause", "1s", "--first-heartbeat-estimate", "500ms",
			"--region-lease", "1600ms", "--failover-tick", "100ms"}},
}

type reactionOpts struct {
	sets      []string
	trials    map[string]int
	regions   int
	datanodes int
	giveUp    time.Duration
}

// reactionResult is every trial of one set: kill -9 of a datanode →
// every one of its regions routed to another datanode (committed), and →
// every moved region reported served by its new owner.
type reactionResult struct {
	set       reactionSet
	committed []time.Duration
	served    []time.Duration
	failed    int
	notes     []string
}

func getJSON(ctx context.Context, c *http.Client, url string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func postJSON(ctx context.Context, c *http.Client, url, body string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var b strings.Builder
		_, _ = fmt.Fprint(&b, resp.Status)
		return fmt.Errorf("POST %s: %s", url, b.String())
	}
	return nil
}

func runReaction(e *env, set reactionSet, trials int, o reactionOpts) (*reactionResult, error) {
	res := &reactionResult{set: set}
	args := append(append([]string{}, set.Args...), "--balancer-interval", "0")
	e.mu.Lock()
	e.seq++
	dir := fmt.Sprintf("%s/%02d-reaction-%s", e.dir, e.seq, set.Name)
	e.mu.Unlock()
	c, err := localcluster.Start(localcluster.Options{Bin: e.bin, Dir: dir, Args: args, DatanodeBin: e.dnBin, Datanodes: o.datanodes})
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.clusters = append(e.clusters, c)
	e.mu.Unlock()
	defer c.Close()
	if err := e.waitHealthy(c, 30*time.Second); err != nil {
		return nil, err
	}
	leaderURL := func() (string, error) {
		l, err := c.WaitLeader(10 * time.Second)
		if err != nil {
			return "", err
		}
		return l.URL(""), nil
	}
	base, err := leaderURL()
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := localcluster.Eventually(60*time.Second, func() error { return allAlive(e, base, o.datanodes) }); err != nil {
		return nil, err
	}
	if err := postJSON(ctx, e.client, base+"/admin/tables", fmt.Sprintf(`{"name":"bench","regions":%d}`, o.regions)); err != nil {
		return nil, err
	}
	for trial := 1; trial <= trials; trial++ {
		if base, err = leaderURL(); err != nil {
			return nil, err
		}
		// Steady state: every datanode alive, every route served.
		err := localcluster.Eventually(90*time.Second, func() error {
			if err := allAlive(e, base, o.datanodes); err != nil {
				return err
			}
			return allServed(e, base, 0)
		})
		if err != nil {
			return nil, fmt.Errorf("trial %d: not steady: %w", trial, err)
		}
		var dns []wire.Datanode
		if err := getJSON(ctx, e.client, base+"/admin/datanodes", &dns); err != nil {
			return nil, err
		}
		victim := dns[0]
		for _, d := range dns {
			if d.Regions > victim.Regions {
				victim = d
			}
		}
		dn := c.Datanode(victim.ID)
		start := time.Now()
		dn.Kill()
		var committed, served time.Duration
		for time.Since(start) < o.giveUp {
			var routes []wire.Route
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := getJSON(pctx, e.client, base+"/admin/regions", &routes)
			cancel()
			if err == nil {
				onVictim, inFlight := 0, 0
				for _, r := range routes {
					if r.Datanode == victim.ID {
						onVictim++
					} else if r.InFlight {
						inFlight++
					}
				}
				if onVictim == 0 && committed == 0 {
					committed = time.Since(start)
				}
				if committed > 0 && inFlight == 0 {
					served = time.Since(start)
					break
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		if committed == 0 || served == 0 {
			res.failed++
			res.notes = append(res.notes, fmt.Sprintf("trial %d: regions of datanode %d not moved within %s", trial, victim.ID, o.giveUp))
			e.logf("reaction %s trial %d/%d: FAILED (datanode %d)", set.Name, trial, trials, victim.ID)
		} else {
			res.committed = append(res.committed, committed)
			res.served = append(res.served, served)
			e.logf("reaction %s trial %d/%d: killed datanode %d (%d regions) → routes committed elsewhere after %s, served after %s",
				set.Name, trial, trials, victim.ID, victim.Regions, fmtDur(committed), fmtDur(served))
		}
		if err := dn.Start(); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func allAlive(e *env, base string, want int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var dns []wire.Datanode
	if err := getJSON(ctx, e.client, base+"/admin/datanodes", &dns); err != nil {
		return err
	}
	alive := 0
	for _, d := range dns {
		if d.Status == "alive" {
			alive++
		}
	}
	if alive < want {
		return fmt.Errorf("%d of %d datanodes alive", alive, want)
	}
	return nil
}

func allServed(e *env, base string, _ int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var routes []wire.Route
	if err := getJSON(ctx, e.client, base+"/admin/regions", &routes); err != nil {
		return err
	}
	for _, r := range routes {
		if r.InFlight {
			return fmt.Errorf("region %d not served yet", r.ID)
		}
	}
	return nil
}
