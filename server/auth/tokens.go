package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/metasrv/metasrv/server/certs"
)

// MinSecretLen is the length under which a secret is warned about.
const MinSecretLen = 32

// Files names the token files; empty names are not used.
type Files struct {
	Admin, Read, Datanode string
	// Legacy is the single --admin-token, named "admin-token".
	Legacy string
}

type entry struct {
	secret string // kept for Own and OwnRead (admin and read entries)
	name   string
	scope  Scope
	dn     uint64 // bound datanode id, datanode scope only
	digest [sha256.Size]byte
}

// Tokens are the named secrets the node accepts.
type Tokens struct {
	files Files

	mu      sync.RWMutex
	entries []entry
	own     string // the secret this node presents on its own calls
	ownRead string // and on its own reads (never an admin secret)
	// Warnings from the last load (short secrets), for the caller's log.
	warnings []string
}

// LoadTokens reads the files once; a missing or malformed file fails.
func LoadTokens(f Files) (*Tokens, error) {
	t := &Tokens{files: f}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Reload re-reads the files; on error the previous tokens stay.
func (t *Tokens) Reload() error {
	var entries []entry
	var warnings []string
	for _, f := range []struct {
		name  string
		scope Scope
	}{{t.files.Admin, ScopeAdmin}, {t.files.Read, ScopeRead}, {t.files.Datanode, ScopeDatanode}} {
		if f.name == "" {
			continue
		}
		es, ws, err := readTokenFile(f.name, f.scope)
		if err != nil {
			return err
		}
		entries, warnings = append(entries, es...), append(warnings, ws...)
	}
	if t.files.Legacy != "" {
		entries = append(entries, entry{name: "admin-token", scope: ScopeAdmin, secret: t.files.Legacy, digest: sha256.Sum256([]byte(t.files.Legacy))})
		if len(t.files.Legacy) < MinSecretLen {
			warnings = append(warnings, fmt.Sprintf("--admin-token is shorter than %d bytes", MinSecretLen))
		}
	}
	own, ownRead := "", ""
	for _, e := range entries {
		if e.scope == ScopeAdmin && own == "" {
			own = e.secret
		}
		if e.scope == ScopeRead && ownRead == "" {
			ownRead = e.secret
		}
	}
	if t.files.Legacy != "" {
		own = t.files.Legacy
	}
	t.mu.Lock()
	t.entries, t.warnings, t.own, t.ownRead = entries, warnings, own, ownRead
	t.mu.Unlock()
	return nil
}

// Own is the secret this node presents when it calls another member's API
// (join, self-registration, a compat-port write): --admin-token, else the
// first secret of --admin-token-file; "" when neither is set (members then
// prove themselves with their certificates).
func (t *Tokens) Own() string {
	if t == nil {
		return ""
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.own
}

// OwnRead is the secret this node presents on its own reads of other
// members (probes, status): the first of --read-token-file, never an
// admin secret, since the address probed comes from the member table.
func (t *Tokens) OwnRead() string {
	if t == nil {
		return ""
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.ownRead
}

// Warnings are the last load's warnings.
func (t *Tokens) Warnings() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append([]string(nil), t.warnings...)
}

// Has reports whether any token of scope is configured.
func (t *Tokens) Has(scope Scope) bool {
	if t == nil {
		return false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, e := range t.entries {
		if e.scope == scope {
			return true
		}
	}
	return false
}

func readTokenFile(name string, scope Scope) ([]entry, []string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, nil, err
	}
	var out []entry
	var warnings []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		n, secret, ok := strings.Cut(l, ":")
		n, secret = strings.TrimSpace(n), strings.TrimSpace(secret)
		if !ok || n == "" || secret == "" {
			return nil, nil, fmt.Errorf("%s line %d: want NAME:SECRET", name, line)
		}
		e := entry{name: n, scope: scope, digest: sha256.Sum256([]byte(secret))}
		if scope == ScopeAdmin || scope == ScopeRead {
			e.secret = secret
		}
		if scope == ScopeDatanode {
			e.dn, _ = certs.DatanodeID(n) // datanode-<id> binds; other names are fleet tokens
		}
		if len(secret) < MinSecretLen {
			warnings = append(warnings, fmt.Sprintf("%s: the secret of %s is shorter than %d bytes", name, n, MinSecretLen))
		}
		out = append(out, e)
	}
	return out, warnings, sc.Err()
}

// Lookup finds the identity a secret belongs to. Every entry is compared
// (in constant time per entry), so timing does not tell which matched.
func (t *Tokens) Lookup(secret string) (Identity, bool) {
	if t == nil || secret == "" {
		return Identity{}, false
	}
	d := sha256.Sum256([]byte(secret))
	t.mu.RLock()
	defer t.mu.RUnlock()
	var found *entry
	for i := range t.entries {
		if subtle.ConstantTimeCompare(d[:], t.entries[i].digest[:]) == 1 && found == nil {
			found = &t.entries[i]
		}
	}
	if found == nil {
		return Identity{}, false
	}
	return Identity{Name: found.name, Scope: found.scope, DatanodeID: found.dn, Via: "token"}, true
}

// ReadSecretFile reads a client's secret: the file's first non-empty,
// non-comment line.
func ReadSecretFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return l, nil
		}
	}
	return "", fmt.Errorf("%s holds no secret", name)
}
