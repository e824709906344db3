// Package localport picks ports for the real servers the tests start
// (nginx, redis-server), which must be told a port before they bind it.
package localport

import (
	"math/rand/v2"
	"net"
	"strconv"
)

// Free returns a port that was free on 127.0.0.1 a moment ago. It is
// picked below the usual ephemeral range (Linux: 32768 up), so that the
// clients and servers other tests start, which take ephemeral ports, are
// unlikely to take it before the caller's server binds it; a caller whose
// server finds it taken asks again. Past 100 ports found taken it returns
// one from the ephemeral range.
func Free() (int, error) {
	for range 100 {
		port := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
