package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/raft"
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

func newHTTPClient() *http.Client {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	return &http.Client{Transport: tr}
}

// leaderRPC returns the leader's RPC address: from the replicated member
// table, else from the directory file (which does not wait on the log).
func (n *Node) leaderRPC() (id, addr string) {
	_, lid := n.raft.LeaderWithID()
	id = string(lid)
	switch {
	case id == "":
		return "", ""
	case id == n.cfg.NodeID:
		return id, n.cfg.AdvertiseRPCAddr
	}
	if m, ok := n.fsm.Member(id); ok && m.RPCAddr != "" {
		return id, m.RPCAddr
	}
	return id, n.dir.rpcAddr(id)
}

// runFunc executes an operation on the leader. It returns errRetryElsewhere
// when nothing was applied because leadership moved.
type runFunc func(ctx context.Context, w http.ResponseWriter) error

// viaLeader runs op here if this node is the ready leader, else proxies the
// request to the leader, waiting up to --leader-wait for one to exist.
// Writes are retried only while nothing can have been applied.
func (n *Node) viaLeader(w http.ResponseWriter, r *http.Request, body []byte, write bool, op runFunc) {
	waitUntil := time.Now().Add(n.cfg.LeaderWait)
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.LeaderWait+n.cfg.ApplyTimeout)
	defer cancel()
	forwarded := r.Header.Get(hdrForwardedBy) != ""
	lastErr := errorf(http.StatusServiceUnavailable, codeNoLeader, "no leader elected within --leader-wait (%s)", n.cfg.LeaderWait)
	for {
		if n.raft.State() == raft.Leader {
			wctx, wcancel := context.WithDeadline(ctx, waitUntil)
			ready := n.waitLeaderReady(wctx)
			wcancel()
			if ready {
				err := op(ctx, w)
				if err == nil {
					return
				}
				if !errors.Is(err, errRetryElsewhere) {
					writeError(w, err)
					return
				}
			}
		} else if forwarded {
			// One hop only: never forward a forwarded request again.
			writeError(w, errorf(http.StatusServiceUnavailable, codeNotLeader, "node %s is not the leader", n.cfg.NodeID))
			return
		} else if lid, addr := n.leaderRPC(); addr != "" {
			if n.forward(ctx, w, r, body, addr, write) {
				return
			}
		} else if lid != "" {
			lastErr = errorf(http.StatusServiceUnavailable, codeNoLeader, "leader %s is known but not its RPC address yet", lid)
		}
		if time.Now().After(waitUntil) || !sleepCtx(ctx, 20*time.Millisecond) {
			writeError(w, lastErr)
			return
		}
	}
}

// forward proxies the request to the leader at addr and relays its answer
// unchanged. It returns false, having written nothing, when the request can
// be retried because nothing was applied (the leader could not be reached,
// or it answered that it is not the leader).
func (n *Node) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte, addr string, write bool) bool {
	if !write {
		// A read forwarded to a leader that froze (SIGSTOP, GC, disk) or was
		// cut off would otherwise wait for the whole deadline although a new
		// leader may exist within a second. Reads have no side effects, so
		// give up as soon as this node learns of another leader and retry.
		var stop context.CancelFunc
		ctx, stop = n.cancelOnLeaderChange(ctx, addr)
		defer stop()
	}
	u := *r.URL
	u.Scheme, u.Host = "http", addr
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
	req.Header.Set(hdrForwardedBy, n.cfg.NodeID)
	req.Header.Set(hdrClientAddr, clientAddr(r))
	resp, err := n.client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			n.metrics.forwarded.WithLabelValues("unreachable").Inc()
			return false // never sent: nothing applied
		}
		if !write {
			n.metrics.forwarded.WithLabelValues("read_failed").Inc()
			return false
		}
		n.metrics.forwarded.WithLabelValues("outcome_unknown").Inc()
		n.metrics.outcomeUnknown.Inc()
		writeError(w, outcomeUnknown(err))
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
			n.metrics.forwarded.WithLabelValues("read_failed").Inc()
			return false
		}
		n.metrics.outcomeUnknown.Inc()
		writeError(w, outcomeUnknown(err))
		return true
	}
	if resp.StatusCode == http.StatusServiceUnavailable && retryableCode(respBody) {
		n.metrics.forwarded.WithLabelValues("retry").Inc()
		return false
	}
	n.metrics.forwarded.WithLabelValues("ok").Inc()
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
func (n *Node) cancelOnLeaderChange(ctx context.Context, addr string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, a := n.leaderRPC(); a != "" && a != addr {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// retryableCode reports whether an error body says nothing was applied
// because the receiver was not (yet) the leader.
func retryableCode(body []byte) bool {
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Code == codeNotLeader || e.Code == codeNoLeader
}

// clientAddr is the address of whoever sent the request, looking through
// one forwarding hop.
func clientAddr(r *http.Request) string {
	if r.Header.Get(hdrForwardedBy) != "" {
		if a := r.Header.Get(hdrClientAddr); a != "" {
			return a
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
