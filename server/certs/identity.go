package certs

import (
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"
)

// Roles, carried in a certificate's Organization.
const (
	RoleNode     = "metasrv-node"     // a metasrv member; CN is its node id
	RoleDatanode = "metasrv-datanode" // a datanode; CN is datanode-<id>
	RoleClient   = "metasrv-client"   // an operator or tool; CN is its name
)

// Identity is who a verified certificate speaks for: the pair (role, name).
// A name alone grants nothing.
type Identity struct {
	Role string
	Name string
}

func (i Identity) String() string { return i.Role + "/" + i.Name }

// IdentityOf reads the role and name of a certificate. The role is the first
// Organization that is a metasrv role; it is empty when there is none.
func IdentityOf(c *x509.Certificate) Identity {
	id := Identity{Name: c.Subject.CommonName}
	for _, o := range c.Subject.Organization {
		switch o {
		case RoleNode, RoleDatanode, RoleClient:
			id.Role = o
			return id
		}
	}
	return id
}

// DatanodeName is the CommonName of datanode id's certificate.
func DatanodeName(id uint64) string { return "datanode-" + strconv.FormatUint(id, 10) }

// DatanodeID parses a name made by DatanodeName.
func DatanodeID(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, "datanode-")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseUint(s, 10, 64)
	return id, err == nil && strconv.FormatUint(id, 10) == s
}

// ErrIdentity is wrapped by every refusal of a verified chain for its role
// or name.
var ErrIdentity = fmt.Errorf("certificate identity refused")
