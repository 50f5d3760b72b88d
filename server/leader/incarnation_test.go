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
// confirmed at once, and a silent address is not asked again until its
// failure is older than confirmFailureTTL.
func TestConfirmationsCannotBeCrowdedOut(t *testing.T) {
	var asked atomic.Int64
	release := make(chan struct{})
	var released sync.Once
	defer released.Do(func() { close(release) })
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
	var clock atomic.Int64 // seconds past base
	base := time.Now()
	now := func() time.Time { return base.Add(time.Duration(clock.Load()) * time.Second) }
	c := newConfirmCache(ask, now)
	var wg sync.WaitGroup
	for id := uint64(100); id < 100+3*confirmInFlight; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.confirm(context.Background(), wire.Heartbeat{ID: id, StartTimeMs: 7, IncarnationKey: "k"}, "silent", time.Minute, false)
		}()
	}
	// Every slot of the decoys' pool is taken (they hold it until released).
	deadline := time.Now().Add(20 * time.Second)
	for len(c.slots) < confirmInFlight {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d decoy slots taken", len(c.slots), confirmInFlight)
		}
		time.Sleep(time.Millisecond)
	}
	// The owner's claim must not wait for a decoy's slot: its bound is
	// far below the decoys' hold.
	if err := c.confirm(context.Background(), wire.Heartbeat{ID: 1, StartTimeMs: 7, IncarnationKey: "k"}, "real", 2*time.Second, true); err != nil {
		t.Fatalf("an owner's claim while decoys fill the slots: %v", err)
	}
	if err := c.confirm(context.Background(), wire.Heartbeat{ID: 1, StartTimeMs: 7, IncarnationKey: "other"}, "real", time.Second, true); !errors.Is(err, ErrIncarnationMismatch) {
		t.Fatalf("a claim with another key: %v", err)
	}
	released.Do(func() { close(release) })
	wg.Wait()
	silent := func() error {
		return c.confirm(context.Background(), wire.Heartbeat{ID: 100, StartTimeMs: 7, IncarnationKey: "k"}, "silent", time.Second, false)
	}
	// Past the answer TTL but within the failure TTL: not asked again.
	clock.Store(int64((confirmAnswerTTL + time.Second) / time.Second))
	before := asked.Load()
	for range 5 {
		if err := silent(); !errors.Is(err, ErrIncarnationUnconfirmed) {
			t.Fatalf("a silent address: %v", err)
		}
	}
	if n := asked.Load() - before; n != 0 {
		t.Fatalf("a silent address was asked %d more times within %s", n, confirmFailureTTL)
	}
	// Past the failure TTL it is asked again.
	clock.Store(int64((confirmFailureTTL + 2*time.Second) / time.Second))
	_ = silent()
	if n := asked.Load() - before; n != 1 {
		t.Fatalf("after %s a silent address was asked %d times, want 1", confirmFailureTTL, n)
	}
}
