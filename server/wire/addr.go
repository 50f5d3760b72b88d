package wire

import (
	"fmt"
	"net"
	"strings"
)

// CheckHostPort checks that s is HOST:PORT with a non-empty host and port,
// as every address in a body or flag must be.
func CheckHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want HOST:PORT: %v", err)
	}
	if host == "" || port == "" || strings.ContainsAny(host, " /") {
		return fmt.Errorf("want HOST:PORT")
	}
	return nil
}
