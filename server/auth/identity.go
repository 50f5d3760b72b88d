package auth

import (
	"crypto/tls"

	"github.com/metasrv/metasrv/server/certs"
)

// Scope is what an identity may do.
type Scope int

const (
	ScopeNone     Scope = iota // anonymous: the open routes only
	ScopeDatanode              // heartbeats, for its own id (or any id: a fleet token)
	ScopeRead                  // GETs
	ScopeAdmin                 // everything an operator does
	ScopePeer                  // a member: its own calls, and forwards on others' behalf
)

func (s Scope) String() string {
	switch s {
	case ScopeDatanode:
		return "datanode"
	case ScopeRead:
		return "read"
	case ScopeAdmin:
		return "admin"
	case ScopePeer:
		return "peer"
	}
	return "none"
}

// ParseScope reads a Scope's String.
func ParseScope(s string) (Scope, bool) {
	for sc := ScopeNone; sc <= ScopePeer; sc++ {
		if sc.String() == s {
			return sc, true
		}
	}
	return ScopeNone, false
}

// Identity is who sent a request.
type Identity struct {
	// Name is the certificate CN or the token NAME; Anonymous when neither.
	Name  string
	Scope Scope
	// DatanodeID is the one datanode this identity may heartbeat as; 0
	// for a fleet token (any id, but never a known id's address).
	DatanodeID uint64
	// Via says how it was established: "certificate", "token", or "".
	Via string
}

// Anonymous is the name of a request with no credential.
const Anonymous = "anonymous"

// Reads reports whether the identity may read.
func (i Identity) Reads() bool { return i.Scope >= ScopeRead }

// Writes reports whether the identity may change state as an operator.
func (i Identity) Writes() bool { return i.Scope >= ScopeAdmin }

// FromCertificate is the identity of a verified client certificate: the
// role decides the scope, the CN the name. A certificate of the trusted CA
// without a metasrv role is an operator (an organisation's own PKI);
// metasrv-client certificates carry read or admin in their
// OrganizationalUnit (admin when absent).
func FromCertificate(cs *tls.ConnectionState) (Identity, bool) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return Identity{}, false
	}
	leaf := cs.PeerCertificates[0]
	id := certs.IdentityOf(leaf)
	out := Identity{Name: id.Name, Via: "certificate"}
	switch id.Role {
	case certs.RoleNode:
		out.Scope = ScopePeer
	case certs.RoleDatanode:
		n, ok := certs.DatanodeID(id.Name)
		if !ok {
			return Identity{Name: id.Name, Via: "certificate"}, true // grants nothing
		}
		out.Scope, out.DatanodeID = ScopeDatanode, n
	default:
		out.Scope = ScopeAdmin
		for _, ou := range leaf.Subject.OrganizationalUnit {
			if ou == "read" {
				out.Scope = ScopeRead
			}
		}
	}
	return out, true
}
