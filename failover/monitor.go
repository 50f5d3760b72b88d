package failover

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/metasrv/metasrv/server/wire"
)

// Datanode statuses.
const (
	StatusAlive   = "alive"
	StatusSuspect = "suspect" // more than two intervals without a heartbeat
	StatusFailed  = "failed"  // phi above the threshold
	StatusUnknown = "unknown" // not tracked by this leader
)

// MonitorConfig configures a Monitor.
type MonitorConfig struct {
	Detector          DetectorConfig
	HeartbeatInterval time.Duration
	// RegionLease is how long a heartbeat answer lets a datanode serve its
	// regions (3 × heartbeat + 1 s by default).
	RegionLease time.Duration
	// LeaseMargin covers clock-rate differences between leader and datanode.
	LeaseMargin time.Duration
	// HistorySize is how many heartbeats per datanode are kept for
	// GET /admin/heartbeat.
	HistorySize int
}

// RegionStat is what a datanode reports about one region.
type RegionStat = wire.RegionStat

// Heartbeat is one heartbeat as received by the leader (its Received time
// is stamped on arrival).
type Heartbeat = wire.Heartbeat

// NodeStatus is the leader's view of one datanode.
type NodeStatus struct {
	Status        string
	Phi           float64
	LastHeartbeat time.Time // or the seed instant
	Heartbeated   bool      // a real heartbeat arrived this term
	LeaseUntil    time.Time
	LeaseExpired  bool // LeaseUntil + LeaseMargin has passed
}

// Monitor is the leader's per-term record of datanode heartbeats: failure
// detectors, granted leases and which regions each datanode serves.
// A new leader cannot know its predecessor's grants, so Seed assumes every
// datanode heartbeated and renewed its lease the instant before.
type Monitor struct {
	cfg MonitorConfig
	now func() time.Time

	mu    sync.Mutex
	nodes map[uint64]*tracked
	// holders indexes, per region, the datanodes that reported it or were
	// told to open it; unheard holds seeded datanodes not heard from yet.
	// They keep ServedElsewhere independent of the number of datanodes.
	holders map[uint64]map[uint64]struct{}
	unheard map[uint64]struct{}
}

type tracked struct {
	det        *Detector
	leaseUntil time.Time
	serving    map[uint64]bool // reported in its last heartbeat
	opening    map[uint64]bool // granted since, not yet reported
	history    []Heartbeat     // incarnation keys cleared
	key        string          // the current incarnation's key
}

// NewMonitor returns an empty monitor.
func NewMonitor(cfg MonitorConfig, now func() time.Time) *Monitor {
	if cfg.HistorySize <= 0 {
		cfg.HistorySize = 10
	}
	return &Monitor{cfg: cfg, now: now, nodes: map[uint64]*tracked{},
		holders: map[uint64]map[uint64]struct{}{}, unheard: map[uint64]struct{}{}}
}

// Seed starts tracking ids as if each had just heartbeated and renewed its
// lease (a grace period after a leader change).
func (m *Monitor) Seed(ids []uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for _, id := range ids {
		if _, ok := m.nodes[id]; !ok {
			m.nodes[id] = &tracked{det: NewDetector(m.cfg.Detector, now), leaseUntil: now.Add(m.cfg.RegionLease)}
			m.unheard[id] = struct{}{}
		}
	}
}

// ErrImplausible is returned for a heartbeat that cannot be true: its seq
// jumps too far ahead, it claims the current incarnation without that
// incarnation's key, or its incarnation is older than the current one,
// starts in the future, or starts past seq MaxSeqJump. Such a heartbeat
// changes nothing; accepting it would make every later real heartbeat look
// stale.
var ErrImplausible = errors.New("implausible heartbeat")

// Plausibility bounds on heartbeats.
const (
	MaxSeqJump     = 10000            // above the last seq of the same incarnation
	MaxStartAhead  = 60 * time.Second // of the leader's clock, for a new incarnation
	maxStartAheadM = int64(MaxStartAhead / time.Millisecond)
)

// Check reports whether hb is plausible next to what was heard from its
// datanode; it changes nothing.
func (m *Monitor) Check(hb Heartbeat) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.checkLocked(hb)
}

func (m *Monitor) checkLocked(hb Heartbeat) error {
	if hb.StartTimeMs > m.now().UnixMilli()+maxStartAheadM {
		return fmt.Errorf("%w: datanode %d started at %d ms, more than %s ahead of the leader's clock", ErrImplausible, hb.ID, hb.StartTimeMs, MaxStartAhead)
	}
	t, ok := m.nodes[hb.ID]
	if !ok || len(t.history) == 0 {
		return nil
	}
	last := t.history[len(t.history)-1]
	switch {
	case hb.StartTimeMs == last.StartTimeMs && subtle.ConstantTimeCompare([]byte(hb.IncarnationKey), []byte(t.key)) != 1:
		return fmt.Errorf("%w: datanode %d's incarnation %d was heard with another incarnation key", ErrImplausible, hb.ID, hb.StartTimeMs)
	case hb.StartTimeMs > last.StartTimeMs && hb.Seq > MaxSeqJump:
		return fmt.Errorf("%w: datanode %d's new incarnation %d starts at seq %d (a restarted datanode counts from 1)", ErrImplausible, hb.ID, hb.StartTimeMs, hb.Seq)
	case hb.StartTimeMs < last.StartTimeMs:
		return fmt.Errorf("%w: datanode %d incarnation %d is older than the current one (%d)", ErrImplausible, hb.ID, hb.StartTimeMs, last.StartTimeMs)
	case hb.StartTimeMs == last.StartTimeMs && hb.Seq > last.Seq && hb.Seq-last.Seq > MaxSeqJump:
		return fmt.Errorf("%w: datanode %d seq %d is more than %d above the last one (%d)", ErrImplausible, hb.ID, hb.Seq, MaxSeqJump, last.Seq)
	}
	return nil
}

// Heard reports whether hb's incarnation is the one this monitor last
// took from its datanode: if not, hb would start (or switch to) an
// incarnation.
func (m *Monitor) Heard(hb Heartbeat) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.nodes[hb.ID]
	return ok && len(t.history) > 0 && t.history[len(t.history)-1].StartTimeMs == hb.StartTimeMs
}

// Observe records a heartbeat and returns the lease it grants.
func (m *Monitor) Observe(hb Heartbeat) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, _ := m.observeLocked(hb)
	return t.leaseUntil
}

// Grant records a heartbeat from a datanode that owns the given regions
// and returns those it may open now: owned, not reported open, and not
// possibly served by any other datanode. The check and the grant are one
// step, and a granted region counts as served by its new owner until that
// owner's next heartbeat says otherwise, so no two datanodes are ever told
// to open the same region.
// granted is false when hb was not taken (stale or implausible): it
// renews no lease, and its answer must not say it does.
func (m *Monitor) Grant(hb Heartbeat, owned []uint64) (open []uint64, granted bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.checkLocked(hb) != nil {
		return nil, false
	}
	t, stale := m.observeLocked(hb)
	if stale {
		return nil, false // its sender gave up on it; the next heartbeat will ask again
	}
	for _, r := range owned {
		if t.serving[r] || m.servedElsewhereLocked(r, hb.ID) {
			continue
		}
		if t.opening == nil {
			t.opening = map[uint64]bool{}
		}
		t.opening[r] = true
		m.hold(r, hb.ID)
		open = append(open, r)
	}
	return open, true
}

// observeLocked records hb; stale is true for a late heartbeat older than
// one already seen (it changes nothing).
func (m *Monitor) observeLocked(hb Heartbeat) (t *tracked, stale bool) {
	now := m.now()
	hb.Received = now
	t, ok := m.nodes[hb.ID]
	if ok && len(t.history) > 0 {
		last := t.history[len(t.history)-1]
		if hb.StartTimeMs == last.StartTimeMs && hb.Seq != 0 && hb.Seq <= last.Seq {
			return t, true
		}
	}
	if !ok {
		t = &tracked{det: NewDetector(m.cfg.Detector, now)}
		m.nodes[hb.ID] = t
	} else {
		t.det.Heartbeat(now)
	}
	t.leaseUntil = now.Add(m.cfg.RegionLease)
	m.release(hb.ID, t)
	delete(m.unheard, hb.ID)
	t.serving = make(map[uint64]bool, len(hb.Regions))
	for _, r := range hb.Regions {
		t.serving[r] = true
		m.hold(r, hb.ID)
	}
	t.opening = nil // this heartbeat says what it really opened
	t.key, hb.IncarnationKey = hb.IncarnationKey, ""
	t.history = append(t.history, hb)
	if len(t.history) > m.cfg.HistorySize {
		t.history = t.history[len(t.history)-m.cfg.HistorySize:]
	}
	return t, false
}

// Forget stops tracking a removed datanode.
func (m *Monitor) Forget(id uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.nodes[id]; ok {
		m.release(id, t)
	}
	delete(m.unheard, id)
	delete(m.nodes, id)
}

func (m *Monitor) hold(region, id uint64) {
	h := m.holders[region]
	if h == nil {
		h = map[uint64]struct{}{}
		m.holders[region] = h
	}
	h[id] = struct{}{}
}

// release drops datanode id from the index of every region it held.
func (m *Monitor) release(id uint64, t *tracked) {
	for _, set := range []map[uint64]bool{t.serving, t.opening} {
		for r := range set {
			if h := m.holders[r]; h != nil {
				delete(h, id)
				if len(h) == 0 {
					delete(m.holders, r)
				}
			}
		}
	}
}

// Status returns the leader's view of datanode id.
func (m *Monitor) Status(id uint64) NodeStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.nodes[id]
	if !ok {
		return NodeStatus{Status: StatusUnknown}
	}
	now := m.now()
	phi := t.det.Phi(now)
	st := NodeStatus{Phi: phi, LastHeartbeat: t.det.Last(), Heartbeated: len(t.history) > 0,
		LeaseUntil: t.leaseUntil, LeaseExpired: now.After(t.leaseUntil.Add(m.cfg.LeaseMargin))}
	switch {
	case phi > m.cfg.Detector.Threshold:
		st.Status = StatusFailed
	case now.Sub(t.det.Last()) > 2*m.cfg.HeartbeatInterval:
		st.Status = StatusSuspect
	default:
		st.Status = StatusAlive
	}
	return st
}

// Reported reports whether datanode id listed region in its last
// heartbeat this term.
func (m *Monitor) Reported(id, region uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.nodes[id]
	return ok && t.serving[region]
}

// ServedElsewhere reports whether any datanode other than owner may still
// serve region: it reported it (or has not heartbeated yet this term) and
// its lease has not run out. The owner may open the region only when this
// is false, so no region is ever served twice.
func (m *Monitor) ServedElsewhere(region, owner uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.servedElsewhereLocked(region, owner)
}

func (m *Monitor) servedElsewhereLocked(region, owner uint64) bool {
	now := m.now()
	leased := func(id uint64) bool {
		t, ok := m.nodes[id]
		return ok && id != owner && !now.After(t.leaseUntil.Add(m.cfg.LeaseMargin))
	}
	for id := range m.unheard {
		if leased(id) {
			return true // not heard from this term: it may serve anything
		}
		if t, ok := m.nodes[id]; !ok || now.After(t.leaseUntil.Add(m.cfg.LeaseMargin)) {
			delete(m.unheard, id) // its assumed lease is over: it serves nothing
		}
	}
	for id := range m.holders[region] {
		if leased(id) {
			return true
		}
	}
	return false
}

// StillServing reports whether datanode id may still serve any region
// under a lease this leader knows of (or has not reported yet this term).
func (m *Monitor) StillServing(id uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.nodes[id]
	if !ok || m.now().After(t.leaseUntil.Add(m.cfg.LeaseMargin)) {
		return false
	}
	return len(t.history) == 0 || len(t.serving) > 0 || len(t.opening) > 0
}

// History returns the kept heartbeats of every datanode, oldest first,
// datanodes sorted by id.
func (m *Monitor) History() [][]Heartbeat {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]uint64, 0, len(m.nodes))
	for id, t := range m.nodes {
		if len(t.history) > 0 {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := make([][]Heartbeat, 0, len(ids))
	for _, id := range ids {
		out = append(out, append([]Heartbeat(nil), m.nodes[id].history...))
	}
	return out
}
