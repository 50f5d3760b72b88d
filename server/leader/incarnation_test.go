package leader

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metasrv/metasrv/server/wire"
)

// Claims for datanodes that own no region, sent to addresses that never
// answer, fill their own slots only: an owner's restart is still
// confirmed, and a silent address is not asked again for a while.
func TestConfirmationsCannotBeCrowdedOut(t *testing.T) {
	var asked atomic.Int64
	release := make(chan struct{})
	defer close(release)
	ask := func(ctx context.Context, id uint64, addr string) (wire.Incarnation, error) {
		asked.Add(1)
		if addr == "silent" {
			select {
			case <-ctx.Done():
			case <-release:
			}
			return wire.Incarnation{}, errors.New("no answer")
		}
		return wire.Incarnation{ID: id, StartTimeMs: 7, KeySHA256: wire.IncarnationKeyDigest("k")}, nil
	}
	c := newConfirmCache(ask, time.Now)
	var wg sync.WaitGroup
	for id := uint64(100); id < 100+3*confirmInFlight; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.confirm(context.Background(), wire.Heartbeat{ID: id, StartTimeMs: 7, IncarnationKey: "k"}, "silent", 500*time.Millisecond, false)
		}()
	}
	time.Sleep(50 * time.Millisecond) // let the decoys take their slots (the owner must pass regardless)
	if err := c.confirm(context.Background(), wire.Heartbeat{ID: 1, StartTimeMs: 7, IncarnationKey: "k"}, "real", time.Second, true); err != nil {
		t.Fatalf("an owner's claim while decoys fill the slots: %v", err)
	}
	if err := c.confirm(context.Background(), wire.Heartbeat{ID: 1, StartTimeMs: 7, IncarnationKey: "other"}, "real", time.Second, true); !errors.Is(err, ErrIncarnationMismatch) {
		t.Fatalf("a claim with another key: %v", err)
	}
	wg.Wait()
	before := asked.Load()
	for range 5 {
		if err := c.confirm(context.Background(), wire.Heartbeat{ID: 100, StartTimeMs: 7, IncarnationKey: "k"}, "silent", 100*time.Millisecond, false); !errors.Is(err, ErrIncarnationUnconfirmed) {
			t.Fatalf("a silent address: %v", err)
		}
	}
	if n := asked.Load() - before; n != 0 {
		t.Fatalf("a silent address was asked %d more times within %s", n, confirmFailureTTL)
	}
}
