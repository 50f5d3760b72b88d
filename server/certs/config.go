package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// Accept decides whether a verified identity may use a connection; nil
// accepts any.
type Accept func(Identity) error

// ServerConfig is a tls.Config for a listener that presents the source's
// certificate. With requireClient a client certificate is required; with
// it false one is asked for and verified only if given. Client chains are
// verified against the source's current pool, then passed to accept.
func (s *Source) ServerConfig(minVersion uint16, requireClient bool, accept Accept) *tls.Config {
	auth := tls.RequestClientCert
	if requireClient {
		auth = tls.RequireAnyClientCert
	}
	return &tls.Config{
		MinVersion:     minVersion,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.certificate() },
		ClientAuth:     auth,
		// The pool is read at each handshake, so a reloaded CA applies at
		// once; the standard verification would freeze it in ClientCAs.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				if requireClient {
					return errors.New("no client certificate")
				}
				return nil
			}
			id, err := s.Verify(cs.PeerCertificates, x509.ExtKeyUsageClientAuth)
			if err != nil {
				return err
			}
			return check(accept, id)
		},
	}
}

// ClientConfig is a tls.Config for dialing serverName (a host name or IP
// that must be in the server's certificate), presenting the source's
// certificate when it has one. The server's chain is verified against the
// source's current pool, then passed to accept.
func (s *Source) ClientConfig(minVersion uint16, serverName string, accept Accept) *tls.Config {
	return s.clientConfig(minVersion, serverName, true, accept)
}

// IdentityClientConfig is ClientConfig for peers that are dialled by
// identity rather than host name (raft members, by node id): the server's
// chain is verified against the source's current pool and its identity
// passed to accept, which decides; its SAN is not checked.
func (s *Source) IdentityClientConfig(minVersion uint16, accept Accept) *tls.Config {
	return s.clientConfig(minVersion, "", false, accept)
}

func (s *Source) clientConfig(minVersion uint16, serverName string, checkHost bool, accept Accept) *tls.Config {
	return &tls.Config{
		MinVersion: minVersion,
		ServerName: serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c, err := s.certificate(); err == nil {
				return c, nil
			}
			return &tls.Certificate{}, nil // none: the server decides
		},
		// Verification is ours (VerifyConnection) so it reads the current
		// pool; InsecureSkipVerify only turns off the frozen built-in one.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, err := s.Verify(cs.PeerCertificates, x509.ExtKeyUsageServerAuth)
			if err != nil {
				return err
			}
			if checkHost {
				if err := cs.PeerCertificates[0].VerifyHostname(serverName); err != nil {
					return err
				}
			}
			return check(accept, id)
		},
	}
}

func check(accept Accept, id Identity) error {
	if accept == nil {
		return nil
	}
	if err := accept(id); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrIdentity, id, err)
	}
	return nil
}
