package leader

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/metasrv/metasrv/server/wire"
)

// A fleet credential (a datanode token not bound to one id) may speak for
// any datanode, so its word that datanode N restarted, or that this is the
// process a new leader should pin, is checked with the datanode itself:
// the leader asks N's registered address which incarnation serves there
// and the digest of its key. A forger cannot answer on the real datanode's
// address nor send a key matching the digest, and once pinned, heartbeats
// without the key are refused (failover.Monitor).
var (
	ErrIncarnationMismatch    = errors.New("the datanode at the registered address is another incarnation")
	ErrIncarnationUnconfirmed = errors.New("the datanode's incarnation could not be confirmed")
)

// ConfirmFunc asks the datanode at addr which incarnation it is
// (GET /incarnation). It must verify, when it can, that the answer comes
// from datanode id.
type ConfirmFunc func(ctx context.Context, id uint64, addr string) (wire.Incarnation, error)

// confirmCache keeps each datanode's last answer for a short while, so a
// flood of forged claims costs the datanode at most one question per
// confirmAnswerTTL, and caps the questions in flight.
type confirmCache struct {
	ask ConfirmFunc
	now func() time.Time
	// Datanodes that own regions ask through their own slots, so claims
	// for datanodes that own none (which a fleet token can register in
	// any number) cannot crowd out the ones whose regions are at stake.
	slots, ownerSlots chan struct{}

	mu      sync.Mutex
	answers map[uint64]*confirmAnswer
}

type confirmAnswer struct {
	at   time.Time
	inc  wire.Incarnation
	err  error
	done chan struct{} // closed once inc and err are set
}

const (
	confirmAnswerTTL = time.Second
	// A datanode that could not be asked is not asked again for a while:
	// a flood of claims for silent addresses holds no slot for long.
	confirmFailureTTL = 10 * time.Second
	confirmInFlight   = 64
)

func newConfirmCache(ask ConfirmFunc, now func() time.Time) *confirmCache {
	return &confirmCache{ask: ask, now: now, slots: make(chan struct{}, confirmInFlight),
		ownerSlots: make(chan struct{}, confirmInFlight), answers: map[uint64]*confirmAnswer{}}
}

func (a *confirmAnswer) fresh(now time.Time) bool {
	select {
	case <-a.done:
		if a.err != nil {
			return now.Sub(a.at) <= confirmFailureTTL
		}
	default:
	}
	return now.Sub(a.at) <= confirmAnswerTTL
}

// confirm checks that the datanode at addr is hb's incarnation, waiting at
// most timeout. owner says the datanode owns regions.
func (c *confirmCache) confirm(ctx context.Context, hb wire.Heartbeat, addr string, timeout time.Duration, owner bool) error {
	if c == nil || c.ask == nil {
		return fmt.Errorf("%w: this node cannot ask datanodes (no prober configured); give datanode %d its own credential (datanode-%d)",
			ErrIncarnationUnconfirmed, hb.ID, hb.ID)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c.mu.Lock()
	a, ok := c.answers[hb.ID]
	if !ok || !a.fresh(c.now()) {
		a = &confirmAnswer{at: c.now(), done: make(chan struct{})}
		c.answers[hb.ID] = a
		slots := c.slots
		if owner {
			slots = c.ownerSlots
		}
		go c.fetch(hb.ID, addr, timeout, a, slots)
	}
	c.mu.Unlock()
	select {
	case <-a.done:
	case <-ctx.Done():
		return &confirmError{sentinel: ErrIncarnationUnconfirmed, id: hb.ID, detail: fmt.Sprintf("no answer to GET /incarnation within %s", timeout)}
	}

	switch {
	case a.err != nil:
		return &confirmError{sentinel: ErrIncarnationUnconfirmed, id: hb.ID, detail: a.err.Error()}
	case a.inc.ID != hb.ID || a.inc.StartTimeMs != hb.StartTimeMs:
		return &confirmError{sentinel: ErrIncarnationMismatch, id: hb.ID,
			detail: fmt.Sprintf("it is datanode %d started at %d ms, not started at %d ms as claimed", a.inc.ID, a.inc.StartTimeMs, hb.StartTimeMs)}
	case subtle.ConstantTimeCompare([]byte(wire.IncarnationKeyDigest(hb.IncarnationKey)), []byte(a.inc.KeySHA256)) != 1:
		return &confirmError{sentinel: ErrIncarnationMismatch, id: hb.ID, detail: "it holds another incarnation key"}
	}
	return nil
}

func (c *confirmCache) fetch(id uint64, addr string, timeout time.Duration, a *confirmAnswer, slots chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	select {
	case slots <- struct{}{}:
		a.inc, a.err = c.ask(ctx, id, addr)
		<-slots
	case <-ctx.Done():
		a.err = errors.New("too many confirmations in flight")
	}
	close(a.done) // publishes inc and err
}

// confirmError tells the client only which check failed: what the
// registered address answered (or that it did not) goes to the leader's
// log, so the leader's questions cannot serve to scan its network.
type confirmError struct {
	sentinel error
	id       uint64
	detail   string
}

func (e *confirmError) Error() string {
	if e.sentinel == ErrIncarnationMismatch {
		return fmt.Sprintf("%v: the process at datanode %d's registered address is not the incarnation this heartbeat claims", e.sentinel, e.id)
	}
	return fmt.Sprintf("%v: datanode %d's registered address did not confirm it (the next heartbeat asks again)", e.sentinel, e.id)
}

func (e *confirmError) Unwrap() error { return e.sentinel }
