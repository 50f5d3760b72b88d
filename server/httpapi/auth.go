package httpapi

import (
	"context"
	"net/http"

	"github.com/metasrv/metasrv/fsm"
	"github.com/metasrv/metasrv/server/auth"
)

// Headers a member adds when it forwards a request: who the client was
// and what it may do. The leader believes them only from a member that
// proved itself with its certificate (peer mTLS); from anyone else they
// are ignored, and the forwarded token is checked again.
const (
	hdrIdentity = "X-Metasrv-Identity"
	hdrScope    = "X-Metasrv-Scope"
)

type identityKey struct{}

// identityOf is the identity authorize established for r.
func identityOf(r *http.Request) auth.Identity {
	if id, ok := r.Context().Value(identityKey{}).(auth.Identity); ok {
		return id
	}
	return auth.Identity{Name: auth.Anonymous}
}

func withIdentity(r *http.Request, id auth.Identity) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
}

// identify is who sent r: a member forwarding on a client's behalf (by its
// certificate, with the forwarded identity), a verified client
// certificate, a token, or anonymous.
func (s *Server) identify(r *http.Request) auth.Identity {
	if id, ok := auth.FromCertificate(r.TLS); ok {
		if id.Scope == auth.ScopePeer && r.Header.Get(hdrForwardedBy) != "" {
			if name := r.Header.Get(hdrIdentity); name != "" {
				sc, _ := auth.ParseScope(r.Header.Get(hdrScope))
				return auth.Identity{Name: name, Scope: sc, Via: "forwarded by " + id.Name}
			}
		}
		if id.Scope != auth.ScopeNone || id.DatanodeID != 0 {
			return id
		}
	}
	if tok, ok := bearer(r); ok {
		if id, ok := s.cfg.Tokens.Lookup(tok); ok {
			return id
		}
	}
	return auth.Identity{Name: auth.Anonymous}
}

// trustedForward reports whether r's forwarding headers (client address,
// identity) come from a member that proved itself by certificate.
func trustedForward(r *http.Request) bool {
	id, ok := auth.FromCertificate(r.TLS)
	return ok && id.Scope == auth.ScopePeer
}

// What is authenticated, from the node's settings.
func (s *Server) writesNeedAuth() bool {
	return s.cfg.ClientCertAuth || s.cfg.Tokens.Has(auth.ScopeAdmin)
}
func (s *Server) readsNeedAuth() bool {
	return s.cfg.Tokens.Has(auth.ScopeRead)
}
func (s *Server) heartbeatsNeedAuth() bool {
	return s.cfg.ClientCertAuth || s.cfg.Tokens.Has(auth.ScopeDatanode)
}
func (s *Server) anyAuth() bool {
	return s.writesNeedAuth() || s.readsNeedAuth() || s.heartbeatsNeedAuth()
}

// authorize decides whether r may use path with access acc, and returns r
// carrying its identity. Open routes answer anyone.
func (s *Server) authorize(path string, acc access, r *http.Request) (*http.Request, error) {
	id := s.identify(r)
	r = withIdentity(r, id)
	if openRoutes[path] {
		return r, nil
	}
	if path == heartbeatRoute {
		switch {
		case !s.heartbeatsNeedAuth():
		case id.Scope == auth.ScopeDatanode:
		case id.Scope == auth.ScopeNone:
			return r, errorf(http.StatusUnauthorized, codeUnauthorized, "a heartbeat needs a datanode's credential: its certificate (role metasrv-datanode) or a --datanode-token-file secret")
		default:
			return r, errorf(http.StatusForbidden, codeForbidden, "%s is not a datanode's credential", id.Name)
		}
		return r, nil
	}
	if id.Scope == auth.ScopeDatanode {
		return r, errorf(http.StatusForbidden, codeForbidden, "%s is a datanode's credential: it may only send heartbeats", id.Name)
	}
	if s.cfg.ClientCertAuth && id.Scope == auth.ScopeNone {
		return r, errorf(http.StatusUnauthorized, codeUnauthorized, "%s needs a client certificate from the trusted CA, or a token (this node runs with --client-cert-auth)", path)
	}
	switch acc {
	case write:
		if s.writesNeedAuth() && !id.Writes() {
			if id.Scope == auth.ScopeNone {
				return r, errorf(http.StatusUnauthorized, codeUnauthorized, "this write needs the header Authorization: Bearer <admin token> (or an operator's client certificate)")
			}
			return r, errorf(http.StatusForbidden, codeForbidden, "%s may read but not write", id.Name)
		}
	default:
		if path == "/metrics" && s.cfg.MetricsPublic {
			return r, nil
		}
		if s.readsNeedAuth() && !id.Reads() {
			return r, errorf(http.StatusUnauthorized, codeUnauthorized, "%s needs a read or admin credential (this node runs with --read-token-file)", path)
		}
	}
	return r, nil
}

// actor is who a write through r is recorded as: By is the caller's
// identity, or for an anonymous caller its address; Identity is the
// authenticated identity, set only once every member speaks
// fsm.IdentityProtocol (until then replicas of older binaries would apply
// the entry without it).
func (s *Server) actor(r *http.Request) fsm.Actor {
	id := identityOf(r)
	a := fsm.Actor{By: id.Name}
	if id.Name == auth.Anonymous || id.Name == "" {
		a.By = clientAddr(r)
	}
	if s.node != nil && s.node.ClusterProtocol() >= fsm.IdentityProtocol {
		a.Identity = id.Name
		if a.Identity == "" {
			a.Identity = auth.Anonymous
		}
	}
	return a
}
