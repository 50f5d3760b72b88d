package failover

import (
	"math"
	"time"
)

// DetectorConfig holds the phi-accrual parameters (GreptimeDB's defaults).
type DetectorConfig struct {
	Threshold                float64       // phi above this means failed (8)
	MinStdDeviation          time.Duration // floor on the interval std-dev (100ms)
	AcceptableHeartbeatPause time.Duration // added to the mean (10s)
	FirstHeartbeatEstimate   time.Duration // seeds the history (1s)
	MaxSamples               int           // interval history size (1000)
}

// DefaultDetectorConfig is GreptimeDB's metasrv configuration.
func DefaultDetectorConfig() DetectorConfig {
	return DetectorConfig{Threshold: 8, MinStdDeviation: 100 * time.Millisecond,
		AcceptableHeartbeatPause: 10 * time.Second, FirstHeartbeatEstimate: time.Second, MaxSamples: 1000}
}

// Detector is a phi-accrual failure detector for one datanode (Hayashibara
// et al., as implemented by Akka and GreptimeDB). Not safe for concurrent
// use; the Monitor serialises access.
type Detector struct {
	cfg       DetectorConfig
	intervals []float64 // milliseconds, ring
	next      int
	sum, sq   float64
	last      time.Time
}

// NewDetector returns a detector whose history is seeded from
// FirstHeartbeatEstimate, as if a heartbeat arrived at seededAt.
func NewDetector(cfg DetectorConfig, seededAt time.Time) *Detector {
	if cfg.MaxSamples <= 0 {
		cfg.MaxSamples = 1000
	}
	d := &Detector{cfg: cfg, last: seededAt}
	mean := float64(cfg.FirstHeartbeatEstimate) / float64(time.Millisecond)
	std := mean / 4
	d.add(mean - std)
	d.add(mean + std)
	return d
}

func (d *Detector) add(ms float64) {
	if len(d.intervals) < d.cfg.MaxSamples {
		d.intervals = append(d.intervals, ms)
	} else {
		old := d.intervals[d.next]
		d.sum -= old
		d.sq -= old * old
		d.intervals[d.next] = ms
		d.next = (d.next + 1) % d.cfg.MaxSamples
	}
	d.sum += ms
	d.sq += ms * ms
}

// Heartbeat records a heartbeat that arrived at now. As in Akka and
// GreptimeDB, the interval enters the history only if the datanode still
// counted as available: the gap of an outage would inflate the mean and
// std-dev and hide the next failure for a long time.
func (d *Detector) Heartbeat(now time.Time) {
	available := d.cfg.Threshold <= 0 || d.Phi(now) < d.cfg.Threshold
	if iv := now.Sub(d.last); iv > 0 && available {
		d.add(float64(iv) / float64(time.Millisecond))
	}
	if now.After(d.last) {
		d.last = now
	}
}

// Last is when the last heartbeat (or the seed) arrived.
func (d *Detector) Last() time.Time { return d.last }

// Phi is the suspicion level at now.
func (d *Detector) Phi(now time.Time) float64 {
	n := float64(len(d.intervals))
	mean := d.sum / n
	variance := d.sq/n - mean*mean
	std := math.Sqrt(math.Max(variance, 0))
	minStd := float64(d.cfg.MinStdDeviation) / float64(time.Millisecond)
	std = math.Max(std, minStd)
	mean += float64(d.cfg.AcceptableHeartbeatPause) / float64(time.Millisecond)
	return Phi(float64(now.Sub(d.last))/float64(time.Millisecond), mean, std)
}

// Phi is Akka's logistic approximation of -log10(1 - CDF(elapsed)) for a
// normal distribution of heartbeat intervals with the given mean and std.
//
// Past the mean it is computed in log space, -log10(e/(1+e)) =
// (z + ln(1+e)) / ln 10 with e = exp(-z): the same value, but finite where
// e underflows (a few seconds after a datanode died), because an infinite
// phi cannot be encoded in the failover command or shown as JSON.
func Phi(elapsed, mean, std float64) float64 {
	y := (elapsed - mean) / std
	z := y * (1.5976 + 0.070566*y*y)
	e := math.Exp(-z)
	if elapsed > mean {
		return (z + math.Log1p(e)) / math.Ln10
	}
	return -math.Log10(1 - 1/(1+e))
}
