package leader

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Errors of datanode registration.
var (
	// ErrDatanodeLimit: --max-datanodes are registered already.
	ErrDatanodeLimit = errors.New("datanode limit reached")
	// ErrRegisterRate: registrations arrive faster than
	// --datanode-register-rate allows; retry shortly.
	ErrRegisterRate = errors.New("datanode registrations are arriving too fast")
)

// Registration defaults (GreptimeDB-scale fleets register in bursts at
// start; a flood of fake ones must not fill the table).
const (
	DefaultMaxDatanodes  = 10000
	DefaultRegisterRate  = 20.0 // per second
	DefaultRegisterBurst = 100
)

// bucket is a token bucket on a clock of the caller's.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second; 0 means unlimited
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

func (b *bucket) take(now time.Time) bool {
	if b == nil || b.rate <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// admitRegistration decides whether a datanode that is not registered (or
// registers a new address) may be now.
func (l *Leader) admitRegistration(id uint64, known bool) error {
	if !known && l.cfg.MaxDatanodes > 0 && l.fsm.DatanodeCount() >= l.cfg.MaxDatanodes {
		return fmt.Errorf("%w: %d datanodes are registered (--max-datanodes); remove one (DELETE /admin/datanodes/ID) to register datanode %d", ErrDatanodeLimit, l.cfg.MaxDatanodes, id)
	}
	if !l.registrations.take(l.cfg.Now()) {
		return fmt.Errorf("%w (--datanode-register-rate %g/s): datanode %d, retry shortly", ErrRegisterRate, l.cfg.RegisterRate, id)
	}
	return nil
}
