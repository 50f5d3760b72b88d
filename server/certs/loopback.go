package certs

import (
	"context"
	"net"
	"time"
)

// Loopback reports whether every address host names is a loopback address
// (127.0.0.0/8 or ::1): the only place plaintext is allowed without
// --insecure. An empty host, 0.0.0.0 and :: listen everywhere and are not
// loopback; a host name is loopback only if all it resolves to is, and a
// name that does not resolve is not.
func Loopback(host string) bool {
	if host == "" {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return false
		}
	}
	return true
}

// LoopbackAddr is Loopback for the host of a HOST:PORT address.
func LoopbackAddr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	return err == nil && Loopback(host)
}
