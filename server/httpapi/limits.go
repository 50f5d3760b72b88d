package httpapi

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// limitListener caps the open connections of the API's listeners (the RPC
// port and the GreptimeDB-style port share one cap): past it, Accept waits
// for a connection to close, so a flood of idle connections cannot use up
// the process's file descriptors.
type limitListener struct {
	net.Listener
	sem chan struct{}
}

func newLimitListener(ln net.Listener, sem chan struct{}) net.Listener {
	if sem == nil {
		return ln
	}
	return &limitListener{Listener: ln, sem: sem}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// withDeadline bounds one request: its answer must be written by d (a
// write through the leader waits at most --leader-wait plus the apply
// timeout, so d covers that), after which the connection is closed.
func withDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Now().Add(d))
		_ = rc.SetReadDeadline(time.Now().Add(d))
		h.ServeHTTP(w, r)
		// net/http resets the read deadline for the next request on a
		// kept-alive connection, but not the write deadline.
		_ = rc.SetWriteDeadline(time.Time{})
	})
}
