package redistest

import (
	"testing"
)

func TestStartAnswersPingAndKillStopsIt(t *testing.T) {
	s := Start(t)
	if err := ping(s.Addr); err != nil {
		t.Fatalf("PING to a started server: %v", err)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := ping(s.Addr); err == nil {
		t.Fatal("PING answered after Kill")
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after Kill: %v, want nil", err)
	}
}

func TestTwoServersGetTwoPorts(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr == b.Addr {
		t.Fatalf("both on %s", a.Addr)
	}
}
