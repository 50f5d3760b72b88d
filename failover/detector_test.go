package failover_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/metasrv/metasrv/failover"
)

// akkaPhi is the table of Akka's "return realistic phi values" test
// (mean 1 s, σ 100 ms, acceptable pause 0), which GreptimeDB's detector
// reproduces: elapsed milliseconds → phi, each ± 0.1.
var akkaPhi = []struct{ elapsed, phi float64 }{
	{0, 0.0}, {500, 0.1}, {1000, 0.3}, {1200, 1.6}, {1400, 4.7}, {1600, 10.8}, {1700, 15.3},
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestPhiKnownValues(t *testing.T) {
	for _, tc := range akkaPhi {
		if got := failover.Phi(tc.elapsed, 1000, 100); !near(got, tc.phi, 0.1) {
			t.Errorf("Phi(%v ms, mean 1000, σ 100) = %.3f, want %.1f ± 0.1", tc.elapsed, got, tc.phi)
		}
	}
}

// Phi never falls as time passes, and stays finite however long a
// datanode has been silent: the failover command records it, and JSON has
// no infinity.
func TestPhiIsMonotonicAndFinite(t *testing.T) {
	prev := -1.0
	for e := 0.0; e <= 5000; e += 5 {
		got := failover.Phi(e, 1000, 100)
		if math.IsNaN(got) || math.IsInf(got, 0) || got < 0 {
			t.Fatalf("Phi(%v) = %v: want a finite non-negative number", e, got)
		}
		if got < prev {
			t.Fatalf("Phi(%v) = %v < Phi(%v) = %v: phi must not fall as time passes", e, got, e-5, prev)
		}
		prev = got
	}
	for _, elapsed := range []time.Duration{10 * time.Second, time.Minute, time.Hour, 24 * time.Hour} {
		got := failover.Phi(float64(elapsed.Milliseconds()), 1000, 100)
		if math.IsNaN(got) || math.IsInf(got, 0) || got < prev {
			t.Errorf("Phi(%v) = %v: want finite and at least %v", elapsed, got, prev)
		}
		prev = got
	}
}

// feed sends n heartbeats to d, the i-th interval being interval(i), and
// returns the instant of the last one.
func feed(d *failover.Detector, from time.Time, n int, interval func(i int) time.Duration) time.Time {
	at := from
	for i := 0; i < n; i++ {
		at = at.Add(interval(i))
		d.Heartbeat(at)
	}
	return at
}

func TestDetectorKnownValues(t *testing.T) {
	cases := []struct {
		name string
		cfg  failover.DetectorConfig
		// interval is the i-th heartbeat interval; 1000 of them push the
		// two seed samples out of the 1000-sample history.
		interval func(i int) time.Duration
		pause    time.Duration // added to every elapsed time in the table
	}{
		{
			name:     "regular 1s heartbeats, min std-dev 100ms",
			cfg:      failover.DetectorConfig{Threshold: 8, MinStdDeviation: 100 * time.Millisecond, FirstHeartbeatEstimate: time.Second, MaxSamples: 1000},
			interval: func(int) time.Duration { return time.Second },
		},
		{
			name: "jittered 900/1100ms heartbeats (σ = 100ms), tiny min std-dev",
			cfg:  failover.DetectorConfig{Threshold: 8, MinStdDeviation: time.Millisecond, FirstHeartbeatEstimate: time.Second, MaxSamples: 1000},
			interval: func(i int) time.Duration {
				if i%2 == 0 {
					return 900 * time.Millisecond
				}
				return 1100 * time.Millisecond
			},
		},
		{
			name:     "acceptable pause shifts the curve by the pause",
			cfg:      failover.DetectorConfig{Threshold: 8, MinStdDeviation: 100 * time.Millisecond, AcceptableHeartbeatPause: 3 * time.Second, FirstHeartbeatEstimate: time.Second, MaxSamples: 1000},
			interval: func(int) time.Duration { return time.Second },
			pause:    3 * time.Second,
		},
		{
			name:     "MaxSamples 0 means the default history",
			cfg:      failover.DetectorConfig{Threshold: 8, MinStdDeviation: 100 * time.Millisecond, FirstHeartbeatEstimate: time.Second},
			interval: func(int) time.Duration { return time.Second },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := failover.NewDetector(tc.cfg, t0)
			last := feed(d, t0, 1000, tc.interval)
			if !d.Last().Equal(last) {
				t.Fatalf("Last() = %v, want %v", d.Last(), last)
			}
			for _, k := range akkaPhi {
				at := last.Add(ms(k.elapsed) + tc.pause)
				if got := d.Phi(at); !near(got, k.phi, 0.1) {
					t.Errorf("phi %v after the last heartbeat = %.3f, want %.1f ± 0.1", ms(k.elapsed)+tc.pause, got, k.phi)
				}
			}
		})
	}
}

// Akka's "return phi based on guess when only one heartbeat": the seed
// assumes intervals of FirstHeartbeatEstimate with σ = estimate/4.
func TestDetectorFirstHeartbeatEstimate(t *testing.T) {
	cfg := failover.DetectorConfig{Threshold: 8, MinStdDeviation: 10 * time.Millisecond, FirstHeartbeatEstimate: time.Second, MaxSamples: 1000}
	d := failover.NewDetector(cfg, t0)
	for _, tc := range []struct {
		after    time.Duration
		min, max float64
	}{
		{0, 0, 0.01},
		{time.Second, 0.1, 0.5},
		{2 * time.Second, 4.2, 4.8},
		{3 * time.Second, 15, math.Inf(1)},
	} {
		if got := d.Phi(t0.Add(tc.after)); got < tc.min || got > tc.max {
			t.Errorf("phi %v after the seed = %.3f, want in [%v, %v]", tc.after, got, tc.min, tc.max)
		}
	}
}

// y8 is how many standard deviations past mean+pause phi reaches 8.
func y8(t *testing.T) float64 {
	lo, hi := 0.0, 20.0
	for i := 0; i < 200; i++ {
		mid := (lo + hi) / 2
		if failover.Phi(mid, 0, 1) > 8 {
			hi = mid
		} else {
			lo = mid
		}
	}
	if lo < 5.1 || lo > 5.3 {
		t.Fatalf("phi reaches 8 at %.3fσ past the mean; want ≈ 5.2σ (5.1 to 5.3)", lo)
	}
	return lo
}

var greptimeDefaults = failover.DefaultDetectorConfig()

// e2eTimings are the short timings the end-to-end tests give metasrv.
var e2eTimings = failover.DetectorConfig{Threshold: 8, MinStdDeviation: 100 * time.Millisecond,
	AcceptableHeartbeatPause: time.Second, FirstHeartbeatEstimate: 500 * time.Millisecond, MaxSamples: 1000}

func TestDetectorDetectionWindow(t *testing.T) {
	y := y8(t)
	cases := []struct {
		name      string
		cfg       failover.DetectorConfig
		heartbeat time.Duration // 0: seeded only (a new leader's grace period)
		// window = mean + pause + y8 × max(σ, min std-dev)
		mean, std float64 // ms
		atMost    time.Duration
	}{
		{"GreptimeDB defaults, regular 3s heartbeats", greptimeDefaults, 3 * time.Second, 3000, 100, 13600 * time.Millisecond},
		{"GreptimeDB defaults, seeded by a new leader", greptimeDefaults, 0, 1000, 250, 13600 * time.Millisecond},
		{"e2e timings, regular 500ms heartbeats", e2eTimings, 500 * time.Millisecond, 500, 100, 2200 * time.Millisecond},
		{"e2e timings, seeded by a new leader", e2eTimings, 0, 500, 125, 2200 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := failover.NewDetector(tc.cfg, t0)
			last := t0
			if tc.heartbeat > 0 {
				last = feed(d, t0, 1000, func(int) time.Duration { return tc.heartbeat })
			}
			window := ms(tc.mean + float64(tc.cfg.AcceptableHeartbeatPause)/1e6 + y*tc.std)
			t.Logf("detection window %v (+ one failover tick)", window)
			if window > tc.atMost {
				t.Errorf("window %v exceeds the advertised %v", window, tc.atMost)
			}
			if phi := d.Phi(last.Add(window - 20*time.Millisecond)); phi > tc.cfg.Threshold {
				t.Errorf("phi %.2f > %v already 20ms before the window", phi, tc.cfg.Threshold)
			}
			if phi := d.Phi(last.Add(window + 20*time.Millisecond)); phi <= tc.cfg.Threshold {
				t.Errorf("phi %.2f <= %v 20ms after the window", phi, tc.cfg.Threshold)
			}
			// A pause up to the acceptable pause never looks failed.
			if phi := d.Phi(last.Add(ms(tc.mean) + tc.cfg.AcceptableHeartbeatPause)); phi >= 1 {
				t.Errorf("phi %.2f after mean + acceptable pause: want < 1", phi)
			}
		})
	}
}

// No false failure while heartbeats keep arriving, even with jitter: phi
// at each arrival (the highest it gets) stays below the threshold.
func TestDetectorNoFalseFailure(t *testing.T) {
	cases := []struct {
		name      string
		cfg       failover.DetectorConfig
		heartbeat time.Duration
		jitter    float64 // uniform ± fraction of the interval
	}{
		{"GreptimeDB defaults, 3s ± 30%", greptimeDefaults, 3 * time.Second, 0.3},
		{"GreptimeDB defaults, 1s heartbeats ± 50%", greptimeDefaults, time.Second, 0.5},
		{"e2e timings, 500ms ± 30%", e2eTimings, 500 * time.Millisecond, 0.3},
		{"no acceptable pause, 1s ± 10%", failover.DetectorConfig{Threshold: 8, MinStdDeviation: 100 * time.Millisecond,
			FirstHeartbeatEstimate: time.Second, MaxSamples: 1000}, time.Second, 0.1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			d := failover.NewDetector(tc.cfg, t0)
			at := t0
			maxPhi := 0.0
			for i := 0; i < 5000; i++ {
				iv := time.Duration(float64(tc.heartbeat) * (1 + tc.jitter*(2*rng.Float64()-1)))
				at = at.Add(iv)
				if phi := d.Phi(at); phi > maxPhi {
					maxPhi = phi
				}
				if phi := d.Phi(at); phi >= tc.cfg.Threshold {
					t.Fatalf("heartbeat %d after %v: phi %.2f >= threshold %v (false failure)", i, iv, phi, tc.cfg.Threshold)
				}
				d.Heartbeat(at)
			}
			t.Logf("max phi at a heartbeat's arrival: %.3g", maxPhi)
		})
	}
}

// Akka's "mark node as available if it starts heartbeat again after being
// marked dead due to detection of failure": the long interval of the outage
// must not enter the history, or the next failure goes unnoticed (GreptimeDB
// and Akka add an interval only while the node is available).
func TestDetectorRecoversAfterFailure(t *testing.T) {
	cfg := failover.DetectorConfig{Threshold: 8, MinStdDeviation: 10 * time.Millisecond,
		AcceptableHeartbeatPause: 3 * time.Second, FirstHeartbeatEstimate: time.Second, MaxSamples: 1000}
	d := failover.NewDetector(cfg, t0)
	at := feed(d, t0, 999, func(int) time.Duration { return time.Second })
	available := func(at time.Time) bool { return d.Phi(at) < cfg.Threshold }
	steps := []struct {
		advance   time.Duration
		heartbeat bool
		available bool
	}{
		{5 * time.Minute, false, false}, // the outage
		{100 * time.Millisecond, true, true},
		{900 * time.Millisecond, false, true},
		{100 * time.Millisecond, true, true},
		{7 * time.Second, false, false}, // a 7 s pause must be detected again
		{100 * time.Millisecond, true, true},
		{900 * time.Millisecond, false, true},
		{100 * time.Millisecond, true, true},
		{900 * time.Millisecond, false, true},
	}
	for i, s := range steps {
		at = at.Add(s.advance)
		if s.heartbeat {
			d.Heartbeat(at)
		}
		if got := available(at); got != s.available {
			t.Fatalf("step %d (+%v, heartbeat=%t): available=%t (phi %.2f), want %t", i, s.advance, s.heartbeat, got, d.Phi(at), s.available)
		}
	}
}

func TestDetectorIgnoresStaleHeartbeats(t *testing.T) {
	cfg := e2eTimings
	d := failover.NewDetector(cfg, t0)
	last := feed(d, t0, 50, func(int) time.Duration { return 500 * time.Millisecond })
	probe := last.Add(1800 * time.Millisecond)
	before := d.Phi(probe)
	d.Heartbeat(last)                              // duplicate
	d.Heartbeat(last.Add(-200 * time.Millisecond)) // out of order
	if !d.Last().Equal(last) {
		t.Errorf("Last() = %v after stale heartbeats, want %v", d.Last(), last)
	}
	if after := d.Phi(probe); after != before {
		t.Errorf("phi changed from %v to %v after stale heartbeats: no zero or negative interval may enter the history", before, after)
	}
}

func TestDetectorHistoryIsBounded(t *testing.T) {
	cfg := failover.DetectorConfig{Threshold: 8, MinStdDeviation: 100 * time.Millisecond, FirstHeartbeatEstimate: 5 * time.Second, MaxSamples: 10}
	d := failover.NewDetector(cfg, t0)
	at := feed(d, t0, 10, func(int) time.Duration { return 5 * time.Second })
	if phi := d.Phi(at.Add(3 * time.Second)); phi > 1 {
		t.Fatalf("after 5s heartbeats, phi at 3s = %.2f: want < 1", phi)
	}
	at = feed(d, at, 10, func(int) time.Duration { return time.Second })
	// Only the last 10 intervals (1 s each) count now.
	if phi := d.Phi(at.Add(1200 * time.Millisecond)); !near(phi, 1.6, 0.1) {
		t.Errorf("phi at 1.2s = %.3f, want 1.6 ± 0.1: old samples must leave the ring", phi)
	}
	if phi := d.Phi(at.Add(3 * time.Second)); phi <= cfg.Threshold {
		t.Errorf("phi at 3s = %.2f, want > %v", phi, cfg.Threshold)
	}
}
