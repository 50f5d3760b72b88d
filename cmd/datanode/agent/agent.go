package agent

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/metasrv/metasrv/server/auth"
	"github.com/metasrv/metasrv/server/certs"
	"github.com/metasrv/metasrv/server/wire"
)

// Config configures an Agent.
type Config struct {
	ID      uint64   // the datanode's id
	Addr    string   // the address reported to metasrv
	Metasrv []string // metasrv RPC addresses (any members)
	DataDir string   // where the open regions are kept across restarts ("": nowhere)
	Logger  hclog.Logger
	Now     func() time.Time // default time.Now
	// TLS, when set, makes heartbeats HTTPS: metasrv is verified against
	// its CA and by the host dialled, and its certificate (role
	// metasrv-datanode, CN datanode-<id>), if any, is presented.
	TLS *certs.Source
	// TokenFile holds this datanode's secret (alone on a line), sent as a
	// bearer token with every heartbeat, also when metasrv does not ask
	// for one, so authentication can be switched on agents first.
	TokenFile string
}

func newClient(src *certs.Source) *http.Client {
	if src == nil {
		return &http.Client{}
	}
	tr := src.Transport(5 * time.Second)
	tr.MaxIdleConnsPerHost, tr.IdleConnTimeout = 4, 90*time.Second
	return &http.Client{Transport: tr}
}

// ReloadToken re-reads the token file (SIGHUP); on error the old secret
// stays.
func (a *Agent) ReloadToken() error {
	if a.cfg.TokenFile == "" {
		return nil
	}
	s, err := auth.ReadSecretFile(a.cfg.TokenFile)
	if err != nil {
		return err
	}
	a.token.Store(&s)
	return nil
}

func (a *Agent) bearer() string {
	if t := a.token.Load(); t != nil {
		return *t
	}
	return ""
}

func (a *Agent) scheme() string {
	if a.cfg.TLS != nil {
		return "https://"
	}
	return "http://"
}

// Agent is the datanode's heartbeat loop and region set. It serves a
// region only while it has it open and holds a valid lease from the
// metasrv leader.
type Agent struct {
	cfg    Config
	log    hclog.Logger
	client *http.Client
	token  atomic.Pointer[string]
	start  time.Time
	seq    uint64
	key    string // this incarnation's key (see wire.Heartbeat)

	mu         sync.Mutex
	open       map[uint64]bool
	leaseUntil time.Time
	interval   time.Duration
	leader     string // RPC address of the metasrv leader, if known
}

const defaultInterval = 3 * time.Second

// New returns an agent with the region set persisted in cfg.DataDir (if
// any) open; it serves nothing until a heartbeat grants a lease.
func New(cfg Config) (*Agent, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, client: newClient(cfg.TLS), start: cfg.Now(),
		key: rand.Text(), open: map[uint64]bool{}, interval: defaultInterval}
	if err := a.ReloadToken(); err != nil {
		return nil, fmt.Errorf("--token-file: %w", err)
	}
	if err := a.load(); err != nil {
		return nil, err
	}
	return a, nil
}

// Incarnation says which process this is (GET /incarnation).
func (a *Agent) Incarnation() wire.Incarnation {
	return wire.Incarnation{ID: a.cfg.ID, StartTimeMs: a.start.UnixMilli(), KeySHA256: wire.IncarnationKeyDigest(a.key)}
}

// Serving returns the regions served now: open and under a valid lease.
func (a *Agent) Serving() []uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []uint64{}
	if !a.cfg.Now().Before(a.leaseUntil) {
		return out
	}
	for id := range a.open {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (a *Agent) openRegions() []uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]uint64, 0, len(a.open))
	for id := range a.open {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Run heartbeats until ctx ends. Each round starts one interval after the
// previous one started, whatever happened, so a frozen or cut-off leader
// costs at most one interval. Only one Run may be active at a time.
func (a *Agent) Run(ctx context.Context) {
	for {
		sent := a.cfg.Now()
		a.mu.Lock()
		interval := a.interval
		a.mu.Unlock()
		rctx, cancel := context.WithTimeout(ctx, interval)
		err := a.heartbeat(rctx, sent, interval)
		cancel()
		if err != nil && ctx.Err() == nil {
			a.log.Warn("heartbeat failed", "error", err)
		}
		// The answer may have set a new interval (the leader's
		// --heartbeat-interval): keep to it from this round on, or a
		// leader asking for beats faster than the 3 s default would see
		// a fresh datanode miss its second beat and declare it failed.
		a.mu.Lock()
		interval = a.interval
		a.mu.Unlock()
		wait := time.Until(sent.Add(interval))
		if err != nil {
			wait = min(wait, interval/4) // retry sooner, never later than the interval
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// heartbeat sends one heartbeat: to the known leader first, then to every
// configured metasrv; a "not leader" answer with a hint is followed at once.
func (a *Agent) heartbeat(ctx context.Context, sent time.Time, interval time.Duration) error {
	a.seq++ // only the run loop sends heartbeats
	hb := wire.Heartbeat{ID: a.cfg.ID, Addr: a.cfg.Addr, StartTimeMs: a.start.UnixMilli(), Seq: a.seq,
		IncarnationKey: a.key, Regions: a.openRegions()}
	perTry := max(interval/3, 100*time.Millisecond)
	a.mu.Lock()
	targets := []string{}
	if a.leader != "" {
		targets = append(targets, a.leader)
	}
	a.mu.Unlock()
	targets = append(targets, a.cfg.Metasrv...)
	tried := map[string]bool{}
	var errs []error
	for i := 0; i < len(targets) && ctx.Err() == nil; i++ {
		addr := targets[i]
		if tried[addr] {
			continue
		}
		tried[addr] = true
		resp, hint, err := a.send(ctx, addr, hb, perTry)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			if hint != "" && !tried[hint] {
				// Follow the hint next, before the remaining addresses.
				targets = append(targets[:i+1], append([]string{hint}, targets[i+1:]...)...)
			}
			continue
		}
		a.apply(resp, hb.Seq, sent, addr)
		return nil
	}
	a.mu.Lock()
	a.leader = ""
	a.mu.Unlock()
	return errors.Join(errs...)
}

// send is Send to addr, bounded by timeout too.
func (a *Agent) send(ctx context.Context, addr string, hb wire.Heartbeat, timeout time.Duration) (wire.HeartbeatResponse, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return Send(ctx, a.client, a.scheme()+addr, a.bearer(), hb)
}

// apply obeys a heartbeat answer: close what it no longer owns, open what
// it is told to, and renew the lease from the moment the heartbeat was
// sent (never later than the leader's own view of the grant) — only when
// the answer acknowledges this heartbeat (seq): an answer to one the
// leader did not take grants nothing, though the leader may let the lease
// lapse and move the regions. A leader that predates AckSeq leaves it out.
func (a *Agent) apply(hr wire.HeartbeatResponse, seq uint64, sent time.Time, from string) {
	acked := hr.AckSeq == nil || (*hr.AckSeq == seq && hr.LeaseMs > 0)
	a.mu.Lock()
	owned := map[uint64]bool{}
	for _, id := range hr.Regions {
		owned[id] = true
	}
	changed := false
	for id := range a.open {
		if !owned[id] {
			delete(a.open, id)
			changed = true
			a.log.Info("closed region", "region", id)
		}
	}
	for _, id := range hr.Open {
		if acked && owned[id] && !a.open[id] {
			a.open[id] = true
			changed = true
			a.log.Info("opened region", "region", id)
		}
	}
	if acked {
		a.leaseUntil = sent.Add(time.Duration(hr.LeaseMs) * time.Millisecond)
	} else {
		a.log.Warn("the leader did not take this heartbeat; the lease is not renewed", "seq", seq, "ack_seq", *hr.AckSeq)
	}
	if hr.HeartbeatIntervalMs > 0 {
		a.interval = time.Duration(hr.HeartbeatIntervalMs) * time.Millisecond
	}
	if a.leader != from {
		a.log.Info("heartbeating to leader", "leader_id", hr.LeaderID, "addr", from)
	}
	a.leader = from
	a.mu.Unlock()
	if changed {
		if err := a.save(); err != nil {
			a.log.Warn("cannot persist regions", "error", err)
		}
	}
}

// Persistence: the open region set survives restarts (it is still served
// only under a fresh lease).

func (a *Agent) stateFile() string { return filepath.Join(a.cfg.DataDir, "regions.json") }

func (a *Agent) load() error {
	if a.cfg.DataDir == "" {
		return nil
	}
	if err := os.MkdirAll(a.cfg.DataDir, 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile(a.stateFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var ids []uint64
	if err := json.Unmarshal(b, &ids); err != nil {
		return fmt.Errorf("parse %s: %w", a.stateFile(), err)
	}
	for _, id := range ids {
		a.open[id] = true
	}
	return nil
}

func (a *Agent) save() error {
	if a.cfg.DataDir == "" {
		return nil
	}
	b, _ := json.Marshal(a.openRegions())
	tmp := a.stateFile() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, a.stateFile())
}
