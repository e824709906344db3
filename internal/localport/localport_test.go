package localport

import (
	"net"
	"strconv"
	"testing"
)

// A port Free returns can be bound on 127.0.0.1 at once, and lies below the
// ephemeral range while that has room.
func TestFreeCanBeBound(t *testing.T) {
	port, err := Free()
	if err != nil {
		t.Fatal(err)
	}
	if port < 20000 || port >= 32000 {
		t.Errorf("port %d, want one in 20000-31999", port)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("binding the port Free returned: %v", err)
	}
	ln.Close()
}
