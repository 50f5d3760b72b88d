package failover_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/metasrv/metasrv/failover"
	"github.com/metasrv/metasrv/fsm"
)

func TestSpread(t *testing.T) {
	cases := []struct {
		name    string
		n       int
		targets []failover.Load
		want    []uint64
	}{
		{"no targets", 3, nil, nil},
		{"empty targets", 3, []failover.Load{}, nil},
		{"nothing to place", 0, []failover.Load{{ID: 1}}, nil},
		{"negative count", -2, []failover.Load{{ID: 1}}, nil},
		{"one target takes all", 3, []failover.Load{{ID: 7, Regions: 9}}, []uint64{7, 7, 7}},
		{"equal loads round-robin by id", 5, []failover.Load{{ID: 1}, {ID: 2}, {ID: 3}}, []uint64{1, 2, 3, 1, 2}},
		{"ties by id whatever the input order", 3, []failover.Load{{ID: 3}, {ID: 1}, {ID: 2}}, []uint64{1, 2, 3}},
		{"fewest regions first", 4, []failover.Load{{ID: 1, Regions: 3}, {ID: 2}, {ID: 3, Regions: 1}}, []uint64{2, 2, 3, 2}},
		{"fills the emptiest up to the others", 3, []failover.Load{{ID: 1, Regions: 4}, {ID: 2, Regions: 1}}, []uint64{2, 2, 2}},
		{"then alternates", 6, []failover.Load{{ID: 1, Regions: 2}, {ID: 2}}, []uint64{2, 2, 1, 2, 1, 2}},
		{"large ids", 2, []failover.Load{{ID: 1 << 63}, {ID: 1<<63 + 1}}, []uint64{1 << 63, 1<<63 + 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.targets)
			got := failover.Spread(tc.n, tc.targets)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Spread(%d, %v) = %v, want %v", tc.n, tc.targets, got, tc.want)
			}
			if !reflect.DeepEqual(in, tc.targets) {
				t.Errorf("Spread modified its input: %v, was %v", tc.targets, in)
			}
		})
	}
}

// Spread keeps the spread of region counts at most one apart among the
// targets it fills.
func TestSpreadBalances(t *testing.T) {
	targets := []failover.Load{{ID: 5}, {ID: 2, Regions: 3}, {ID: 9, Regions: 1}, {ID: 4}}
	got := failover.Spread(21, targets)
	count := map[uint64]int{}
	for _, l := range targets {
		count[l.ID] = l.Regions
	}
	for _, id := range got {
		count[id]++
	}
	lo, hi := 1<<30, 0
	for _, c := range count {
		lo, hi = min(lo, c), max(hi, c)
	}
	if hi-lo > 1 {
		t.Errorf("after spreading 21 regions: counts %v differ by %d, want at most 1", count, hi-lo)
	}
}

func TestPlanFailover(t *testing.T) {
	targets := []failover.Load{{ID: 2, Regions: 1}, {ID: 3}}
	cases := []struct {
		name    string
		regions []uint64
		targets []failover.Load
		max     int
		want    []fsm.Move
	}{
		{"no targets", []uint64{1, 2}, nil, 10, nil},
		{"no regions", nil, targets, 10, nil},
		{"all regions, fewest first", []uint64{4, 1, 7}, targets, 10, []fsm.Move{
			{Region: 1, From: 1, To: 3, Phi: 9.5}, {Region: 4, From: 1, To: 2, Phi: 9.5}, {Region: 7, From: 1, To: 3, Phi: 9.5}}},
		{"capped: lowest ids first", []uint64{9, 3, 5, 1, 7}, targets, 2, []fsm.Move{
			{Region: 1, From: 1, To: 3, Phi: 9.5}, {Region: 3, From: 1, To: 2, Phi: 9.5}}},
		{"cap equal to the count", []uint64{2, 1}, targets, 2, []fsm.Move{
			{Region: 1, From: 1, To: 3, Phi: 9.5}, {Region: 2, From: 1, To: 2, Phi: 9.5}}},
		{"max 0 means no cap", []uint64{3, 2, 1}, targets, 0, []fsm.Move{
			{Region: 1, From: 1, To: 3, Phi: 9.5}, {Region: 2, From: 1, To: 2, Phi: 9.5}, {Region: 3, From: 1, To: 3, Phi: 9.5}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			regions := slices.Clone(tc.regions)
			got := failover.PlanFailover(1, tc.regions, tc.targets, tc.max, 9.5)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("PlanFailover = %+v\nwant %+v", got, tc.want)
			}
			if !reflect.DeepEqual(regions, tc.regions) {
				t.Errorf("PlanFailover reordered its input: %v, was %v", tc.regions, regions)
			}
		})
	}
}

// The same failed datanode, regions and loads give the same plan whatever
// the order the regions come in.
func TestPlanFailoverIsDeterministic(t *testing.T) {
	targets := []failover.Load{{ID: 4, Regions: 2}, {ID: 2, Regions: 2}, {ID: 3}}
	orders := [][]uint64{
		{10, 11, 12, 13, 14, 15},
		{15, 14, 13, 12, 11, 10},
		{12, 10, 15, 11, 14, 13},
	}
	want := failover.PlanFailover(1, orders[0], targets, 4, 8.5)
	if len(want) != 4 {
		t.Fatalf("plan %+v: want 4 moves (the cap)", want)
	}
	for _, o := range orders[1:] {
		for i := 0; i < 3; i++ {
			if got := failover.PlanFailover(1, o, targets, 4, 8.5); !reflect.DeepEqual(got, want) {
				t.Fatalf("PlanFailover(%v) = %+v, want %+v", o, got, want)
			}
		}
	}
}
