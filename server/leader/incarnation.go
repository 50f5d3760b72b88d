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
	ask   ConfirmFunc
	now   func() time.Time
	slots chan struct{}

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
	confirmInFlight  = 64
)

func newConfirmCache(ask ConfirmFunc, now func() time.Time) *confirmCache {
	return &confirmCache{ask: ask, now: now, slots: make(chan struct{}, confirmInFlight), answers: map[uint64]*confirmAnswer{}}
}

// confirm checks that the datanode at addr is hb's incarnation, waiting at
// most timeout.
func (c *confirmCache) confirm(ctx context.Context, hb wire.Heartbeat, addr string, timeout time.Duration) error {
	if c == nil || c.ask == nil {
		return fmt.Errorf("%w: this node cannot ask datanodes (no prober configured); give datanode %d its own credential (datanode-%d)",
			ErrIncarnationUnconfirmed, hb.ID, hb.ID)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c.mu.Lock()
	a, ok := c.answers[hb.ID]
	if !ok || c.now().Sub(a.at) > confirmAnswerTTL {
		a = &confirmAnswer{at: c.now(), done: make(chan struct{})}
		c.answers[hb.ID] = a
		go c.fetch(hb.ID, addr, timeout, a)
	}
	c.mu.Unlock()
	select {
	case <-a.done:
	case <-ctx.Done():
		return fmt.Errorf("%w: datanode %d at %s did not answer GET /incarnation within %s", ErrIncarnationUnconfirmed, hb.ID, addr, timeout)
	}
	switch {
	case a.err != nil:
		return fmt.Errorf("%w: datanode %d at %s: %v", ErrIncarnationUnconfirmed, hb.ID, addr, a.err)
	case a.inc.ID != hb.ID || a.inc.StartTimeMs != hb.StartTimeMs:
		return fmt.Errorf("%w: datanode %d at %s is datanode %d started at %d ms, not started at %d ms as this heartbeat claims",
			ErrIncarnationMismatch, hb.ID, addr, a.inc.ID, a.inc.StartTimeMs, hb.StartTimeMs)
	case subtle.ConstantTimeCompare([]byte(wire.IncarnationKeyDigest(hb.IncarnationKey)), []byte(a.inc.KeySHA256)) != 1:
		return fmt.Errorf("%w: datanode %d at %s holds another incarnation key than this heartbeat", ErrIncarnationMismatch, hb.ID, addr)
	}
	return nil
}

func (c *confirmCache) fetch(id uint64, addr string, timeout time.Duration, a *confirmAnswer) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	select {
	case c.slots <- struct{}{}:
		a.inc, a.err = c.ask(ctx, id, addr)
		<-c.slots
	case <-ctx.Done():
		a.err = errors.New("too many confirmations in flight")
	}
	close(a.done) // publishes inc and err
}
