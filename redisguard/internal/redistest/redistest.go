// Package redistest runs a real redis-server for a test, in the way
// net/http/httptest runs a Go server: Start starts redis-server on
// 127.0.0.1 with a free port and no persistence, waits until it answers
// PING, and stops it when the test ends. Kill stops it mid-test, as an
// outage would.
//
// redis-server must be installed (the Debian package redis-server;
// .ci/run installs it). A test that needs it fails, never skips, when it
// is missing.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp/internal/localport"
)

const (
	// usrBin is where Debian installs redis-server.
	usrBin = "/usr/bin/redis-server"
	// notFound is the message of a missing redis-server.
	notFound = "redistest: redis-server not found on PATH nor at " + usrBin +
		": install it (apt-get install -y redis-server; .ci/run does)"
	// pollEvery and startTimeout bound the wait for a new server's PING.
	pollEvery    = 10 * time.Millisecond
	startTimeout = 10 * time.Second
	// stopTimeout bounds each of SIGTERM's and SIGKILL's waits.
	stopTimeout = 10 * time.Second
	// portTries is how many ports Start tries when the one it picked is
	// taken before redis-server binds it.
	portTries = 5
)

// Server is a running redis-server.
type Server struct {
	// Addr is its host:port, 127.0.0.1 and the port it listens on.
	Addr string

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	stderr  *os.File
	killed  bool

	stopped sync.Once
	stopErr error
}

// Find returns the path of redis-server, or an error saying how to
// install it.
func Find() (string, error) {
	if bin, err := exec.LookPath("redis-server"); err == nil {
		return bin, nil
	}
	if fi, err := os.Stat(usrBin); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return usrBin, nil
	}
	return "", errors.New(notFound)
}

// Start starts redis-server on 127.0.0.1 with a free port, without
// persistence (--save "" --appendonly no), and returns once it answers
// PING. At the end of the test it stops it; the test fails if the server
// had exited before then without Kill. Start fails the test if
// redis-server is missing or does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Launch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("redistest: %v", err)
		}
	})
	return s
}

// Launch is Start for a program without a testing.TB (a benchmark's
// main): the caller must Close the server on every path.
func Launch() (*Server, error) {
	bin, err := Find()
	if err != nil {
		return nil, err
	}
	for try := 1; ; try++ {
		port, err := localport.Free()
		if err != nil {
			return nil, err
		}
		s, err := launch(bin, port)
		if err == nil || try == portTries || !strings.Contains(err.Error(), "Address already in use") {
			return s, err
		}
	}
}

func launch(bin string, port int) (*Server, error) {
	stderr, err := os.CreateTemp("", "redistest-*.log")
	if err != nil {
		return nil, err
	}
	os.Remove(stderr.Name()) // kept open; gone with the process
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
		"--protected-mode", "yes", "--dir", os.TempDir())
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		stderr.Close()
		return nil, fmt.Errorf("redistest: starting %s: %w", bin, err)
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, exited: make(chan struct{}), stderr: stderr}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(); err != nil {
		_ = s.Kill()
		log := s.log()
		stderr.Close()
		return nil, fmt.Errorf("redistest: redis-server (%s) did not start: %v\nits output:\n%s", bin, err, log)
	}
	return s, nil
}

// waitReady polls, every pollEvery for at most startTimeout, until the
// server answers PING, returning early if it exits.
func (s *Server) waitReady() error {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for range int(startTimeout / pollEvery) {
		select {
		case <-s.exited:
			return fmt.Errorf("exited: %v", s.waitErr)
		case <-tick.C:
		}
		if ping(s.Addr) == nil {
			return nil
		}
	}
	return fmt.Errorf("no PONG on %s within %v", s.Addr, startTimeout)
}

// ping sends PING in RESP and reads the answer.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("answered %q", strings.TrimSpace(line))
	}
	return nil
}

// Kill ends the server at once (SIGKILL), as a crash would, and waits
// for it to exit. Close after Kill reports no error.
func (s *Server) Kill() error {
	s.killed = true
	_ = s.cmd.Process.Kill()
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-s.exited:
		return nil
	case <-t.C:
		return fmt.Errorf("redis-server (pid %d) did not exit after SIGKILL", s.cmd.Process.Pid)
	}
}

// Close stops the server, SIGTERM and then SIGKILL, each waited for at
// most 10 s. It reports an error if the server had exited by itself
// before. Calling it again returns the first call's result.
func (s *Server) Close() error {
	s.stopped.Do(func() {
		defer s.stderr.Close()
		select {
		case <-s.exited:
			if !s.killed {
				s.stopErr = fmt.Errorf("redis-server exited before it was stopped (%v); its output:\n%s", s.waitErr, s.log())
			}
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(stopTimeout)
		defer t.Stop()
		select {
		case <-s.exited:
			return
		case <-t.C:
		}
		if err := s.Kill(); err != nil {
			s.stopErr = err
		}
	})
	return s.stopErr
}

// log returns the start of the server's output.
func (s *Server) log() string {
	b := make([]byte, 8<<10)
	n, _ := s.stderr.ReadAt(b, 0)
	return string(b[:n])
}
