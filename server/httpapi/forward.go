package httpapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/metasrv/metasrv/server/certs"
	"github.com/metasrv/metasrv/server/raftnode"
	"github.com/metasrv/metasrv/server/wire"
)

// maxRelayBody bounds an answer a follower relays from the leader (large
// route listings included).
const maxRelayBody = 256 << 20

// Headers of the forwarding protocol.
const (
	hdrForwardedBy = "X-Metasrv-Forwarded-By"
	// hdrClientAddr carries the original client address through a forward;
	// it is honoured only on forwarded requests.
	hdrClientAddr = "X-Metasrv-Client-Addr"
)

// newHTTPClient is the client for calls to other members. With nodeTLS it
// speaks HTTPS, verifies each member by the host it dials and presents this
// node's member certificate.
func newHTTPClient(nodeTLS *certs.Source) *http.Client {
	d := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	if nodeTLS != nil {
		tr.DialTLSContext = nodeTLS.DialTLS(d, tls.VersionTLS12, nil)
	}
	return &http.Client{Transport: tr}
}

// runFunc executes an operation on the leader. It returns raftnode.ErrNotLeader
// when nothing was applied because leadership moved.
type runFunc func(ctx context.Context, w http.ResponseWriter) error

// viaLeader runs op here if this node is the ready leader, else proxies the
// request to the leader, waiting up to --leader-wait for one to exist.
// Writes are retried only while nothing can have been applied.
func (s *Server) viaLeader(w http.ResponseWriter, r *http.Request, body []byte, write bool, op runFunc) {
	waitUntil := time.Now().Add(s.cfg.LeaderWait)
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.LeaderWait+s.cfg.ApplyTimeout)
	defer cancel()
	forwarded := s.forwardedByMember(r)
	var lastErr error
	for {
		if s.node.Removed() {
			writeError(w, s.removedErr())
			return
		}
		if s.node.IsLeader() {
			wctx, wcancel := context.WithDeadline(ctx, waitUntil)
			ready := s.node.WaitLeaderReady(wctx)
			wcancel()
			if ready {
				err := op(ctx, w)
				if err == nil {
					return
				}
				if !errors.Is(err, raftnode.ErrNotLeader) {
					writeError(w, err)
					return
				}
			}
		} else if forwarded {
			// One hop only: never forward a forwarded request again.
			writeError(w, errorf(http.StatusServiceUnavailable, wire.CodeNotLeader, "node %s is not the leader", s.cfg.NodeID))
			return
		} else if lid, addr := s.node.Leader(); addr != "" {
			if s.forward(ctx, w, r, body, addr, write) {
				return
			}
		} else if lid != "" {
			lastErr = errorf(http.StatusServiceUnavailable, wire.CodeNoLeader, "leader %s is known but not its RPC address yet", lid)
		}
		if time.Now().After(waitUntil) || !raftnode.SleepCtx(ctx, 20*time.Millisecond) {
			if lastErr == nil {
				lastErr = s.noLeaderErr(r.Context(), fmt.Sprintf("no leader elected within --leader-wait (%s)", s.cfg.LeaderWait))
			}
			writeError(w, lastErr)
			return
		}
	}
}

// forwardedByMember reports whether r is a forward from another member,
// which is never forwarded again (one hop, so two members with stale views
// cannot bounce a request). When members present certificates to each
// other, the header counts only from a member's certificate: a client that
// sends it is forwarded like any other. Without member certificates a
// forward cannot be told from a client, and a client that sends the header
// only cuts its own request short (503 not_leader from a follower).
func (s *Server) forwardedByMember(r *http.Request) bool {
	if r.Header.Get(hdrForwardedBy) == "" {
		return false
	}
	if s.cfg.NodeTLS != nil && s.cfg.NodeTLS.HasCert() {
		return trustedForward(r)
	}
	return true
}

// forward proxies the request to the leader at addr and relays its answer
// unchanged. It returns false, having written nothing, when the request can
// be retried because nothing was applied (the leader could not be reached,
// or it answered that it is not the leader).
func (s *Server) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte, addr string, write bool) bool {
	if !write {
		// A read forwarded to a leader that froze (SIGSTOP, GC, disk) or was
		// cut off would otherwise wait for the whole deadline although a new
		// leader may exist within a second. Reads have no side effects, so
		// give up as soon as this node learns of another leader and retry.
		var stop context.CancelFunc
		ctx, stop = s.cancelOnLeaderChange(ctx, addr)
		defer stop()
	}
	u := *r.URL
	u.Scheme, u.Host = s.scheme, addr
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		writeError(w, err)
		return true
	}
	for _, h := range []string{"Authorization", "Content-Type", "Accept", "User-Agent"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(hdrForwardedBy, s.cfg.NodeID)
	req.Header.Set(hdrClientAddr, clientAddr(r))
	id := identityOf(r)
	req.Header.Set(hdrIdentity, id.Name)
	req.Header.Set(hdrScope, id.Scope.String())
	resp, err := s.client.Load().Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			s.metrics.forwarded.WithLabelValues("unreachable").Inc()
			return false // never sent: nothing applied
		}
		if !write {
			s.metrics.forwarded.WithLabelValues("read_failed").Inc()
			return false
		}
		s.metrics.forwarded.WithLabelValues("outcome_unknown").Inc()
		s.node.NoteOutcomeUnknown()
		writeError(w, raftnode.OutcomeUnknown(err))
		return true
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxRelayBody+1))
	if err == nil && len(respBody) > maxRelayBody {
		// Never relay a cut-off answer as if it were whole.
		writeError(w, errorf(http.StatusBadGateway, "answer_too_large",
			"the leader's answer exceeds %d bytes; ask the leader (GET /admin/leader) directly", maxRelayBody))
		return true
	}
	if err != nil {
		if !write {
			// Never relay a truncated answer to a read: retry it.
			s.metrics.forwarded.WithLabelValues("read_failed").Inc()
			return false
		}
		s.node.NoteOutcomeUnknown()
		writeError(w, raftnode.OutcomeUnknown(err))
		return true
	}
	if resp.StatusCode == http.StatusServiceUnavailable && wire.Retryable(respBody) {
		s.metrics.forwarded.WithLabelValues("retry").Inc()
		return false
	}
	s.metrics.forwarded.WithLabelValues("ok").Inc()
	for _, h := range []string{"Content-Type", "Retry-After", "Allow"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(respBody)
	return true
}

// cancelOnLeaderChange returns a context that is cancelled when this node
// learns that the leader is no longer the one at addr.
func (s *Server) cancelOnLeaderChange(ctx context.Context, addr string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, a := s.node.Leader(); a != "" && a != addr {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// clientAddr is the address of whoever sent the request, looking through
// one forwarding hop. The forwarded address is believed only from a member
// that proved itself with its certificate (peer mTLS); from anyone else
// X-Metasrv-* headers are ignored, since any client could send them.
func clientAddr(r *http.Request) string {
	if r.Header.Get(hdrForwardedBy) != "" && trustedForward(r) {
		if a := r.Header.Get(hdrClientAddr); a != "" {
			return a
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
