package failover

import (
	"container/heap"
	"sort"

	"github.com/metasrv/metasrv/fsm"
)

// Load is a candidate target datanode and the regions it holds now.
type Load struct {
	ID      uint64
	Regions int
}

// Spread assigns n new regions to targets, fewest regions first (ties by
// id), and returns the chosen datanode for each region in order. It
// returns nil when there is no target.
func Spread(n int, targets []Load) []uint64 {
	if len(targets) == 0 || n <= 0 {
		return nil
	}
	h := make(loadHeap, len(targets))
	copy(h, targets)
	heap.Init(&h)
	out := make([]uint64, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, h[0].ID)
		h[0].Regions++
		heap.Fix(&h, 0)
	}
	return out
}

// PlanFailover moves up to max of the regions owned by failed onto the
// targets, fewest regions first. Regions are taken in id order, so the
// plan is deterministic for the same input.
func PlanFailover(failed uint64, regions []uint64, targets []Load, max int, phi float64) []fsm.Move {
	regions = append([]uint64(nil), regions...)
	sort.Slice(regions, func(i, j int) bool { return regions[i] < regions[j] })
	if max > 0 && len(regions) > max {
		regions = regions[:max]
	}
	dest := Spread(len(regions), targets)
	if dest == nil {
		return nil
	}
	moves := make([]fsm.Move, len(regions))
	for i, r := range regions {
		moves[i] = fsm.Move{Region: r, From: failed, To: dest[i], Phi: phi}
	}
	return moves
}

type loadHeap []Load

func (h loadHeap) Len() int { return len(h) }
func (h loadHeap) Less(i, j int) bool {
	if h[i].Regions != h[j].Regions {
		return h[i].Regions < h[j].Regions
	}
	return h[i].ID < h[j].ID
}
func (h loadHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *loadHeap) Push(x any)   { *h = append(*h, x.(Load)) }
func (h *loadHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
