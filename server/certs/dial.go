package certs

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// Transport is an http.Transport for https:// URLs whose connections come
// from DialTLS (TLS 1.2 or later), dialled within dialTimeout. Callers may
// tune its pool.
func (s *Source) Transport(dialTimeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{DialContext: d.DialContext, DialTLSContext: s.DialTLS(d, tls.VersionTLS12, nil)}
}

// DialTLS returns a DialTLSContext for http.Transport that verifies each
// server against the source's current pool and the host it dials (its SAN),
// presenting the source's certificate when it has one. Unlike
// TLSClientConfig it sees the host also when it is an IP address.
func (s *Source) DialTLS(d *net.Dialer, minVersion uint16, accept Accept) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		raw, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := tls.Client(raw, s.ClientConfig(minVersion, host, accept))
		if err := c.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		return c, nil
	}
}
