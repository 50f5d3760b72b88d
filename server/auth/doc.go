// Package auth decides who a request to the API is and what it may do:
// identities from verified client certificates (server/certs roles) and
// from named tokens in files, and the scopes they grant (read, admin, a
// datanode's heartbeat, a member's forwarding).
//
// Token files hold lines NAME:SECRET (# starts a comment); a NAME may
// appear twice while its secret rotates; files are re-read on Reload.
//
// It may import server/certs and the standard library.
package auth
