package fsm

import "slices"

// owners is a secondary index of the routes: datanode id → the ids of the
// regions it owns, in no particular order. It is derived state (never
// serialised): kept up to date by every Apply that creates, drops or moves
// a region, and rebuilt by Restore. It makes the per-heartbeat RegionsOf
// and the per-datanode counts cost O(regions of that datanode), not
// O(all regions).
type owners map[uint64][]uint64

func buildOwners(regions map[uint64]*Region) owners {
	o := owners{}
	for id, r := range regions {
		o[r.Datanode] = append(o[r.Datanode], id)
	}
	return o
}

func (o owners) add(dn, region uint64) { o[dn] = append(o[dn], region) }

// remove drops the given regions from dn's list in one pass.
func (o owners) remove(dn uint64, regions ...uint64) {
	ids := o[dn]
	if len(regions) == 1 {
		if i := slices.Index(ids, regions[0]); i >= 0 {
			ids[i] = ids[len(ids)-1]
			ids = ids[:len(ids)-1]
		}
	} else {
		drop := make(map[uint64]bool, len(regions))
		for _, id := range regions {
			drop[id] = true
		}
		ids = slices.DeleteFunc(ids, func(id uint64) bool { return drop[id] })
	}
	if len(ids) == 0 {
		delete(o, dn)
	} else {
		o[dn] = ids
	}
}

// RegionsOf returns the regions owned by datanode dn, sorted by id.
func (f *FSM) RegionsOf(dn uint64) []Region {
	f.mu.RLock()
	defer f.mu.RUnlock()
	ids := f.owners[dn]
	out := make([]Region, 0, len(ids))
	for _, id := range ids {
		out = append(out, *f.st.Regions[id])
	}
	slices.SortFunc(out, func(a, b Region) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// RegionCounts returns how many regions each datanode owns (datanodes
// owning none are absent).
func (f *FSM) RegionCounts() map[uint64]int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[uint64]int, len(f.owners))
	for dn, ids := range f.owners {
		out[dn] = len(ids)
	}
	return out
}

func (f *FSM) regionCountLocked(dn uint64) int { return len(f.owners[dn]) }

// RegionsByOwner returns every region grouped by owning datanode, read in
// one step (one consistent view of who owns what), in no particular order.
func (f *FSM) RegionsByOwner() map[uint64][]Region {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[uint64][]Region, len(f.owners))
	for dn, ids := range f.owners {
		regs := make([]Region, 0, len(ids))
		for _, id := range ids {
			regs = append(regs, *f.st.Regions[id])
		}
		out[dn] = regs
	}
	return out
}
