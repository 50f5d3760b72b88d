package fsm

import (
	"fmt"
	"strconv"
	"time"
)

func (f *FSM) applySetMaintenance(index uint64, c SetMaintenance) Result {
	cur := f.st.Maintenance
	if c.IfEpoch != nil && *c.IfEpoch != cur.Epoch {
		return Result{Code: RejectEpochMismatch,
			Reason: fmt.Sprintf("if_epoch=%d but the current epoch is %d", *c.IfEpoch, cur.Epoch)}
	}
	if c.TTL < 0 || (c.TTL > 0 && !c.Enabled) {
		return Result{Code: RejectInvalid, Reason: "ttl must be positive and only given when enabling"}
	}

	next := cur
	next.Enabled = c.Enabled
	next.Reason = c.Reason
	next.By = c.By
	next.Identity = c.Identity
	next.ExpiresAt = nil // an enable without ttl clears any earlier expiry
	if c.TTL > 0 {
		t := c.Time.Add(c.TTL)
		next.ExpiresAt = &t
	}
	if cur.Enabled == next.Enabled && cur.Reason == next.Reason && cur.By == next.By && cur.Identity == next.Identity &&
		timeEqual(cur.ExpiresAt, next.ExpiresAt) {
		return Result{Applied: true} // idempotent repeat: no epoch bump, no event
	}
	if cur.Enabled != next.Enabled {
		t := c.Time
		next.Since = &t
	}
	next.Epoch = cur.Epoch + 1
	f.st.Maintenance = next

	typ := EventMaintenanceUpdated
	switch {
	case next.Enabled && !cur.Enabled:
		typ = EventMaintenanceEnabled
	case !next.Enabled && cur.Enabled:
		typ = EventMaintenanceDisabled
	}
	ev := Event{Index: index, Time: c.Time, Type: typ, By: c.By, Identity: c.Identity, Reason: c.Reason, Epoch: next.Epoch}
	if next.ExpiresAt != nil {
		ev.Fields = map[string]string{"expires_at": next.ExpiresAt.UTC().Format(time.RFC3339Nano)}
	}
	f.addEvent(ev)
	return Result{Applied: true}
}

func (f *FSM) applyExpireMaintenance(index uint64, c ExpireMaintenance) Result {
	cur := f.st.Maintenance
	// A timer armed for an older window must never end a newer one.
	if !cur.Enabled || cur.Epoch != c.Epoch {
		return Result{Code: RejectEpochMismatch,
			Reason: fmt.Sprintf("window epoch %d is no longer current (epoch %d, enabled=%t)", c.Epoch, cur.Epoch, cur.Enabled)}
	}
	t := c.Time
	next := Maintenance{Enabled: false, Epoch: cur.Epoch + 1, By: "ttl", Reason: "maintenance ttl expired", Since: &t}
	f.st.Maintenance = next
	f.addEvent(Event{Index: index, Time: c.Time, Type: EventMaintenanceExpired, By: "ttl", Epoch: next.Epoch,
		Fields: map[string]string{"expired_epoch": strconv.FormatUint(c.Epoch, 10)}})
	return Result{Applied: true}
}

func timeEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
