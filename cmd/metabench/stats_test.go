package main

import (
	"math"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(i + 1) // 1..100 ms
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample p50", []time.Duration{ms(7)}, 50, ms(7)},
		{"one sample p99", []time.Duration{ms(7)}, 99, ms(7)},
		{"p0 is the minimum", hundred, 0, ms(1)},
		{"p50 of 1..100", hundred, 50, ms(50)},
		{"p90 of 1..100", hundred, 90, ms(90)},
		{"p99 of 1..100", hundred, 99, ms(99)},
		{"p100 is the maximum", hundred, 100, ms(100)},
		{"p50 of two rounds up to the first", []time.Duration{ms(1), ms(2)}, 50, ms(1)},
		{"p99 of ten is the maximum", hundred[:10], 99, ms(10)},
		{"p90 of ten", hundred[:10], 90, ms(9)},
		{"p above 100 is clamped", hundred[:3], 150, ms(3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{5, 5, 1, 9, 7}, 5},
	}
	for _, tt := range tests {
		in := append([]float64(nil), tt.xs...)
		if got := median(tt.xs); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.want)
		}
		for i := range in {
			if in[i] != tt.xs[i] {
				t.Fatalf("median modified its input: %v became %v", in, tt.xs)
			}
		}
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median(nil) = %v, want NaN", got)
	}
}

func TestSummarize(t *testing.T) {
	d := summarize([]time.Duration{ms(900), ms(300), ms(500), ms(400), ms(700)})
	if d.N != 5 || d.Min != ms(300) || d.Median != ms(500) || d.P90 != ms(900) || d.Max != ms(900) {
		t.Errorf("summarize = %+v", d)
	}
	if d.Sorted[0] != ms(300) || d.Sorted[4] != ms(900) {
		t.Errorf("Sorted = %v, want ascending", d.Sorted)
	}
	if e := summarize(nil); e.N != 0 || e.Median != 0 {
		t.Errorf("summarize(nil) = %+v", e)
	}
}

func TestParseTimeoutSets(t *testing.T) {
	sets, err := parseTimeoutSets("default, hashicorp=1s/1s/500ms")
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 2 || sets[0].Name != "default" || len(sets[0].Args) != 0 {
		t.Fatalf("sets = %+v", sets)
	}
	h := sets[1]
	if h.Name != "hashicorp" || h.Heartbeat != time.Second || h.Election != time.Second || h.Lease != 500*time.Millisecond {
		t.Errorf("hashicorp set = %+v", h)
	}
	want := []string{"--raft-heartbeat-timeout", "1s", "--raft-election-timeout", "1s", "--raft-leader-lease-timeout", "500ms"}
	if len(h.Args) != len(want) {
		t.Fatalf("args = %v, want %v", h.Args, want)
	}
	for i := range want {
		if h.Args[i] != want[i] {
			t.Errorf("args = %v, want %v", h.Args, want)
		}
	}
	for _, bad := range []string{"", "x=1s/1s", "=1s/1s/1s", "x=1s/banana/1s", "x=1s/0s/1s", "nodefault"} {
		if _, err := parseTimeoutSets(bad); err == nil {
			t.Errorf("parseTimeoutSets(%q): want an error", bad)
		}
	}
}

func TestMetricValue(t *testing.T) {
	text := []byte(`# HELP metasrv_raft_leader_changes_total Leader changes observed by this node.
# TYPE metasrv_raft_leader_changes_total counter
metasrv_raft_leader_changes_total_other 9
metasrv_raft_leader_changes_total 3
`)
	v, err := metricValue(text, "metasrv_raft_leader_changes_total")
	if err != nil || v != 3 {
		t.Errorf("metricValue = %v, %v; want 3", v, err)
	}
	if _, err := metricValue(text, "absent_metric"); err == nil {
		t.Error("want an error for an absent metric")
	}
}
