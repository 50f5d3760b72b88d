package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/wire"
)

// Bounds on operator-supplied text and durations.
const (
	maxReasonLen = 1024
	maxByLen     = 256
	maxTTL       = 10 * 365 * 24 * time.Hour
)

func toVerbose(m fsm.Maintenance) wire.Maintenance {
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	v := wire.Maintenance(m)
	v.Since, v.ExpiresAt = utc(m.Since), utc(m.ExpiresAt)
	return v
}

// maintenanceGetAccess: GET /admin/maintenance?enable=... is the legacy
// setter, a write for auth, forwarding and metrics.
func maintenanceGetAccess(r *http.Request) access {
	if r.URL.Query().Has("enable") {
		return write
	}
	return read
}

type maintenanceRead struct{ verbose bool }

func parseMaintenanceRead(r *http.Request, _ []byte) (any, error) {
	v, err := boolParam(r, "verbose", false)
	return maintenanceRead{verbose: v}, err
}

func (s *Server) parseMaintenanceGet(r *http.Request, body []byte) (any, error) {
	if maintenanceGetAccess(r) == write {
		return s.parseMaintenanceSet(nil)(r, body)
	}
	return parseMaintenanceRead(r, body)
}

func (s *Server) runMaintenanceGet(ctx context.Context, w http.ResponseWriter, r *http.Request, in any) error {
	if _, ok := in.(fsm.SetMaintenance); ok {
		return s.runMaintenanceSet(ctx, w, r, in)
	}
	return s.runMaintenanceRead(ctx, w, r, in)
}

func (s *Server) runMaintenanceRead(_ context.Context, w http.ResponseWriter, _ *http.Request, in any) error {
	m := s.fsm.Maintenance()
	if in.(maintenanceRead).verbose {
		writeJSON(w, http.StatusOK, toVerbose(m))
	} else {
		writeJSON(w, http.StatusOK, wire.Enabled{Enabled: m.Enabled})
	}
	return nil
}

// parseMaintenanceSet validates a maintenance write. fixed is the value
// set by the route itself (/enable, /disable); nil means it comes from
// the enable parameter, which must then be exactly true or false.
func (s *Server) parseMaintenanceSet(fixed *bool) func(r *http.Request, _ []byte) (any, error) {
	return func(r *http.Request, _ []byte) (any, error) {
		q := r.URL.Query()
		c := fsm.SetMaintenance{}
		if fixed != nil {
			c.Enabled = *fixed
		} else {
			if !q.Has("enable") {
				return nil, badRequest("missing parameter enable: use ?enable=true or ?enable=false")
			}
			switch v := q.Get("enable"); v {
			case "true":
				c.Enabled = true
			case "false":
				c.Enabled = false
			default:
				return nil, badRequest("enable=%q: want exactly true or false", v)
			}
		}
		reason, a, err := s.reasonAndActor(r)
		if err != nil {
			return nil, err
		}
		c.Reason, c.By, c.Identity = reason, a.By, a.Identity
		if q.Has("ttl") {
			if !c.Enabled {
				return nil, badRequest("ttl applies only when enabling maintenance")
			}
			d, err := time.ParseDuration(q.Get("ttl"))
			if err != nil {
				return nil, badRequest("ttl=%q: want a duration such as 30m or 2h", q.Get("ttl"))
			}
			if d <= 0 || d > maxTTL {
				return nil, badRequest("ttl=%q: must be positive and at most %s", q.Get("ttl"), maxTTL)
			}
			c.TTL = d
		}
		if q.Has("if_epoch") {
			e, err := strconv.ParseUint(q.Get("if_epoch"), 10, 64)
			if err != nil {
				return nil, badRequest("if_epoch=%q: want a non-negative integer", q.Get("if_epoch"))
			}
			c.IfEpoch = &e
		}
		return c, nil
	}
}

func (s *Server) runMaintenanceSet(ctx context.Context, w http.ResponseWriter, _ *http.Request, in any) error {
	c := in.(fsm.SetMaintenance)
	c.Time = s.cfg.Now().UTC()
	res, err := s.node.Commit(ctx, fsm.CmdSetMaintenance, c)
	if err != nil {
		return err
	}
	// Debug, not Info: at thousands of writes a second the line cost ~4% of
	// the leader's CPU; the event ring (GET /admin/events) is the audit trail.
	s.log.Debug("maintenance set", "enabled", res.Maintenance.Enabled, "epoch", res.Maintenance.Epoch,
		"by", c.By, "reason", c.Reason, "ttl", c.TTL, "index", res.Index)
	writeJSON(w, http.StatusOK, wire.Enabled{Enabled: res.Maintenance.Enabled})
	return nil
}

// boolParam reads an optional true/false query parameter.
func boolParam(r *http.Request, name string, def bool) (bool, error) {
	q := r.URL.Query()
	if !q.Has(name) {
		return def, nil
	}
	switch q.Get(name) {
	case "true", "":
		return true, nil
	case "false":
		return false, nil
	}
	return false, badRequest("%s=%q: want true or false", name, q.Get(name))
}

// reasonAndActor reads the optional reason and by parameters of an
// operator write; by replaces the actor's default (the caller's identity,
// or for an anonymous caller its address).
func (s *Server) reasonAndActor(r *http.Request) (reason string, a fsm.Actor, err error) {
	q := r.URL.Query()
	a = s.actor(r)
	if q.Has("reason") {
		reason = q.Get("reason")
		if len(reason) > maxReasonLen {
			return "", a, badRequest("reason is longer than %d bytes", maxReasonLen)
		}
	}
	if q.Has("by") {
		a.By = q.Get("by")
		if a.By == "" || len(a.By) > maxByLen {
			return "", a, badRequest("by must be 1 to %d bytes", maxByLen)
		}
	}
	return reason, a, nil
}
