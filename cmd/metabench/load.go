package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// newClient returns the benchmark's HTTP client: keep-alive connections,
// enough idle ones per host for the highest concurrency, so no request
// pays for a TCP handshake once the pool is warm.
func newClient(maxConc int) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4 * max(maxConc, 16),
		MaxIdleConnsPerHost: 2 * max(maxConc, 16),
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: tr}
}

// toggleURL is the GreptimeDB-compatible setter on the node whose base URL
// (scheme and address, as Node.URL("") gives it) is base.
func toggleURL(base string, enable bool) string {
	return fmt.Sprintf("%s/admin/maintenance?enable=%t", base, enable)
}

// postToggle sends one maintenance write and reports whether it was
// acknowledged (200). The body is drained so the connection is reused.
func postToggle(ctx context.Context, c *http.Client, base string, enable bool) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, toggleURL(base, enable), nil)
	if err != nil {
		return false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %d", resp.StatusCode)
	}
	return true, nil
}

// loadResult is one cell: conc clients writing to one node for a while.
type loadResult struct {
	OK, Errors int
	Elapsed    time.Duration
	Lat        []time.Duration // acknowledged writes only, ascending
	FirstErr   string
	// CPU is the CPU time each role (leader, follower, other, client)
	// spent during the cell; filled in by the caller.
	CPU map[string]time.Duration
	// MachineBusy is how many of the machine's cores were busy during the
	// cell, everything included (other tenants too).
	MachineBusy float64
}

// cpuPerOp is a role's CPU time per acknowledged write.
func (r loadResult) cpuPerOp(role string) time.Duration {
	if r.OK == 0 {
		return 0
	}
	return r.CPU[role] / time.Duration(r.OK)
}

// coresBusy is the CPU time of every process over the wall-clock time.
func (r loadResult) coresBusy() float64 {
	var t time.Duration
	for _, v := range r.CPU {
		t += v
	}
	return t.Seconds() / r.Elapsed.Seconds()
}

func (r loadResult) OpsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

func (r loadResult) P(p float64) time.Duration { return percentile(r.Lat, p) }

// runLoad runs conc closed-loop clients that alternate enable=true and
// enable=false on the node at base (Node.URL("")) until dur has passed or
// maxOps writes were sent, whichever comes first.
func runLoad(c *http.Client, base string, conc int, dur time.Duration, maxOps int64, reqTimeout time.Duration) loadResult {
	return runOps(conc, dur, maxOps, reqTimeout, func(ctx context.Context, i int64) error {
		_, err := postToggle(ctx, c, base, i%2 == 1)
		return err
	})
}

// opFunc is one request of a load cell; i numbers the requests from 1.
// A nil error means acknowledged.
type opFunc func(ctx context.Context, i int64) error

// runOps runs conc closed-loop clients, each calling op (with its own
// per-request timeout) until dur has passed or maxOps requests were sent,
// whichever comes first. Every cell of metabench, metasrv or etcd, goes
// through this loop and the same HTTP client.
func runOps(conc int, dur time.Duration, maxOps int64, reqTimeout time.Duration, op opFunc) loadResult {
	var (
		sent     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		res      loadResult
		firstErr atomic.Value
	)
	start := time.Now()
	deadline := start.Add(dur)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			var errs int
			for time.Now().Before(deadline) {
				i := sent.Add(1)
				if maxOps > 0 && i > maxOps {
					break
				}
				ctx, cancel := context.WithTimeout(context.Background(), reqTimeout)
				t := time.Now()
				err := op(ctx, i)
				d := time.Since(t)
				cancel()
				if err == nil {
					lat = append(lat, d)
				} else {
					errs++
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
			mu.Lock()
			res.Lat = append(res.Lat, lat...)
			res.OK += len(lat)
			res.Errors += errs
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	slices.Sort(res.Lat)
	if v, ok := firstErr.Load().(string); ok {
		res.FirstErr = v
	}
	return res
}

// doReq sends one request and succeeds on 200; the body is drained so the
// connection is reused.
func doReq(ctx context.Context, c *http.Client, method, url string, body []byte) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
