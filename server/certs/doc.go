// Package certs is metasrv's certificate layer: the roles and identities a
// certificate carries, loading and reloading PEM files (on demand, on SIGHUP
// and when their content changes), verifying peers against the current trust
// pool, and issuing certificates for `metasrv tls`.
//
// A certificate's Organization is its role (metasrv-node, metasrv-datanode,
// metasrv-client) and its CommonName the identity within that role; neither
// grants anything alone.
//
// It may import the standard library and prometheus only.
package certs
