// Package nginxtest runs a real nginx in front of a test's server, in the
// way net/http/httptest runs a Go one: Start writes a temporary nginx.conf,
// starts nginx on 127.0.0.1 with a free port and stops it when the test
// ends. It puts nginx's request limiting (limit_req) between a client and
// an upstream, so tests see the 429s and 503s nginx really sends: its
// status, its HTML body, with or without Retry-After.
//
// nginx must be installed (the Debian package nginx; .ci/run installs it).
// A test that needs it fails, never skips, when it is missing.
package nginxtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp/internal/localport"
)

// Config describes what the nginx started by Start serves. The zero Config
// answers every path itself with 200 OK and no limit.
type Config struct {
	// Upstream is the base URL, http://host:port with no path, of the
	// server nginx passes every request to, its URI unchanged: typically a
	// servicetest or httptest server's URL. nginx opens a new connection
	// to it for each request and never retries one, so the upstream sees
	// exactly the requests nginx let through; its answers, error statuses
	// and headers included, reach the client unchanged. If the upstream
	// fails (a reset, a closed connection) the client gets nginx's 502.
	//
	// Empty: nginx answers each request it lets through itself, with
	// 200 OK, Content-Type text/plain and the body "ok\n".
	Upstream string

	// Rate is the quota of the requests that match no Location, in
	// requests per second (limit_req_zone's rate), kept per client address
	// (so all of a test's requests share it); 0 means no limit. nginx
	// counts in whole requests per second or per minute, so Rate*60 must
	// be a whole number: 0.5 is nginx's 30r/m.
	//
	// nginx's quota has no tokens saved up: at Rate 5 and Burst 0 it lets
	// through one request per 200ms and turns away any that comes sooner.
	Rate float64

	// Burst is how many requests over the Rate nginx holds rather than
	// turns away (limit_req's burst); 0 is nginx's default. They are
	// delayed to the Rate unless NoDelay. A Burst needs a Rate.
	Burst int

	// NoDelay makes nginx pass the requests a Burst admits at once
	// (limit_req's nodelay) instead of delaying them to the Rate. It
	// applies to every limited location.
	NoDelay bool

	// Status is the status of the answers to requests a quota turned away
	// (limit_req_status), from 400 to 599, usually 429; 0 means nginx's
	// default, 503. Either way the body is nginx's own HTML error page. It
	// applies to every limited location.
	Status int

	// RetryAfter, when set, is the value of the Retry-After header sent
	// with the answers to requests a quota turned away, and only with
	// them: answers from the Upstream keep the headers it sent, and
	// nginx's other answers get none. Empty: the answers carry no
	// Retry-After, as nginx sends them by default. Quotes, backslashes,
	// "$" and control characters are not allowed.
	RetryAfter string

	// Locations gives path prefixes quotas of their own, each in its own
	// limit_req_zone, so two paths behind one host can be limited
	// separately. A request takes the quota of the Location with the
	// longest prefix of its path, or Config's Rate and Burst if none.
	Locations []Location
}

// A Location is a path prefix with its own quota (see Config.Locations).
type Location struct {
	// Path is the prefix, as in nginx's "location /v1/orders": it starts
	// with "/", is not "/" itself, appears once in Config.Locations, and
	// has no spaces, quotes or any of {};#\$.
	Path string

	// Rate and Burst are the location's quota, in the units and with the
	// meaning of Config's; a Rate of 0 means the location is not limited.
	// Config's NoDelay, Status and RetryAfter apply to it.
	Rate  float64
	Burst int
}

// A Server is a running nginx started by Start or Launch.
type Server struct {
	// URL is the base URL, http://127.0.0.1:port with no trailing slash.
	URL string

	dir     string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd.Wait has returned
	waitErr error         // cmd.Wait's result; read after exited is closed

	ownDir  bool // Launch made dir; Close removes it
	stopped sync.Once
	stopErr error // stop's result, set by stopped
}

// notFound is Require's message; tests fail with it, never skip.
const notFound = "nginx not found: .ci/run installs it (apt-get install nginx)"

// Require returns the path of the nginx binary, the one on PATH or else
// /usr/sbin/nginx (not on a non-root user's PATH on Debian), and fails the
// test with a message saying that .ci/run installs it if there is none.
func Require(t testing.TB) string {
	t.Helper()
	bin, err := find(sbinNginx)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// sbinNginx is where the Debian package puts nginx.
const sbinNginx = "/usr/sbin/nginx"

// find looks for nginx on PATH, then at sbin.
func find(sbin string) (string, error) {
	if bin, err := exec.LookPath("nginx"); err == nil {
		return bin, nil
	}
	if fi, err := os.Stat(sbin); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return sbin, nil
	}
	return "", errors.New(notFound)
}

const (
	// startTimeout bounds the wait for nginx to listen.
	startTimeout = 10 * time.Second
	// pollEvery is how often the start poll looks; startTimeout/pollEvery
	// bounds the number of looks.
	pollEvery = 5 * time.Millisecond
	// stopTimeout bounds the wait for nginx to exit after SIGTERM, and
	// then after SIGKILL.
	stopTimeout = 10 * time.Second
	// portTries is how many ports Start tries when the one it picked is
	// taken before nginx binds it.
	portTries = 5
)

// errPortTaken says nginx could not bind its port.
var errPortTaken = errors.New("port taken")

// Start starts nginx on 127.0.0.1 serving cfg, and returns once it accepts
// connections. Its prefix directory, with nginx.conf, the pid file, the
// error log and the temporary files, is in t.TempDir(); it logs no
// requests (access_log off). At the end of the test (t.Cleanup) Start
// stops nginx and waits for it to exit, and the test fails if nginx had
// exited before then.
//
// Start fails the test if nginx is not installed (see Require), if cfg is
// invalid, or if nginx does not start, with nginx's error log in the
// message.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	bin := Require(t)
	s, err := startIn(bin, t.TempDir(), cfg)
	if err != nil {
		t.Fatalf("nginxtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.stopOnce(); err != nil {
			t.Errorf("nginxtest: %v", err)
		}
	})
	return s
}

// Launch is Start for a program that has no testing.TB, such as a
// benchmark's main: it starts nginx on 127.0.0.1 serving cfg, in a
// temporary prefix directory of its own, and returns once nginx accepts
// connections. The caller must call Close, on every path, to stop nginx
// and remove the directory.
//
// Launch returns an error if nginx is not installed (see Require), if cfg
// is invalid, or if nginx does not start, with nginx's error log in it.
func Launch(cfg Config) (*Server, error) {
	bin, err := find(sbinNginx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "nginxtest-*")
	if err != nil {
		return nil, err
	}
	s, err := startIn(bin, dir, cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("nginxtest: %w", err)
	}
	s.ownDir = true
	return s, nil
}

// Close stops nginx, SIGTERM and then SIGKILL, each waited for at most
// 10 s, and removes the prefix directory if Launch made it. It reports an
// error if nginx had exited before, or would not exit. Calling it again
// returns the first call's result; Start's cleanup after a Close does
// nothing more.
func (s *Server) Close() error {
	err := s.stopOnce()
	if s.ownDir {
		if rmErr := os.RemoveAll(s.dir); rmErr != nil && err == nil {
			err = rmErr
		}
	}
	return err
}

// stopOnce runs stop once and returns its result every time.
func (s *Server) stopOnce() error {
	s.stopped.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

// startIn starts nginx with its prefix directory dir, trying another port
// when the one it picked was taken before nginx bound it.
func startIn(bin, dir string, cfg Config) (*Server, error) {
	if err := os.Mkdir(filepath.Join(dir, "html"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "html", "ok"), []byte("ok\n"), 0o644); err != nil {
		return nil, err
	}
	for try := 1; ; try++ {
		port, err := localport.Free()
		if err != nil {
			return nil, err
		}
		conf, err := cfg.render(dir, port)
		if err != nil {
			return nil, err
		}
		s, err := launch(bin, dir, port, conf)
		if errors.Is(err, errPortTaken) && try < portTries {
			continue
		}
		return s, err
	}
}

// launch writes conf to dir and runs nginx with it until it listens on
// port. On failure nginx is stopped and the error includes its error log.
func launch(bin, dir string, port int, conf string) (*Server, error) {
	confPath := filepath.Join(dir, "nginx.conf")
	errLog := filepath.Join(dir, "error.log")
	for _, f := range []string{errLog, filepath.Join(dir, "stderr"), filepath.Join(dir, "nginx.pid")} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	// nginx writes to stderr only before it has read the config (-e sends
	// even that to the error log); a file needs no copying goroutine.
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		return nil, err
	}
	defer stderr.Close()

	cmd := exec.Command(bin, "-p", dir+"/", "-e", errLog, "-c", confPath)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.Env = environ()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &Server{
		URL:    "http://127.0.0.1:" + strconv.Itoa(port),
		dir:    dir,
		cmd:    cmd,
		exited: make(chan struct{}),
	}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(port); err != nil {
		select {
		case <-s.exited:
		default:
			if stopErr := s.stop(); stopErr != nil {
				err = fmt.Errorf("%v; %v", err, stopErr)
			}
		}
		log := s.ErrorLog()
		if strings.Contains(log, "Address already in use") {
			err = fmt.Errorf("%w: %v", errPortTaken, err)
		}
		return nil, fmt.Errorf("nginx (%s) did not start: %w\nerror log:\n%s\nnginx.conf:\n%s", bin, err, log, conf)
	}
	return s, nil
}

// environ is the test's environment without NGINX, which nginx reads as a
// list of listening sockets inherited from an old master process.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NGINX=") {
			env = append(env, kv)
		}
	}
	return env
}

// waitReady polls, every pollEvery for at most startTimeout, until nginx
// has written its pid file (which it does after binding its port) and the
// port accepts a connection. It returns early if nginx exits.
func (s *Server) waitReady(port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	pidFile := filepath.Join(s.dir, "nginx.pid")
	want := strconv.Itoa(s.cmd.Process.Pid)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	for range int(startTimeout / pollEvery) {
		select {
		case <-s.exited:
			return fmt.Errorf("nginx exited: %v", s.waitErr)
		case <-deadline.C:
			return fmt.Errorf("not listening on %s after %v", addr, startTimeout)
		case <-tick.C:
		}
		pid, err := os.ReadFile(pidFile)
		if err != nil || strings.TrimSpace(string(pid)) != want {
			continue
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			continue
		}
		c.Close()
		return nil
	}
	return fmt.Errorf("not listening on %s after %v", addr, startTimeout)
}

// stop ends nginx, SIGTERM and then SIGKILL, each waited for at most
// stopTimeout, and reports whether it had exited on its own before.
func (s *Server) stop() error {
	select {
	case <-s.exited:
		return fmt.Errorf("nginx exited before it was stopped (%v); error log:\n%s", s.waitErr, s.ErrorLog())
	default:
	}
	// SIGTERM is nginx's fast shutdown: it closes the connections the
	// test's clients still hold and exits.
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-s.exited:
		return nil
	case <-timer.C:
	}
	_ = s.cmd.Process.Kill()
	timer.Reset(stopTimeout)
	select {
	case <-s.exited:
		return fmt.Errorf("nginx did not exit within %v of SIGTERM and was killed", stopTimeout)
	case <-timer.C:
		return fmt.Errorf("nginx (pid %d) did not exit even after SIGKILL", s.cmd.Process.Pid)
	}
}

// ErrorLog returns what nginx has written to its error log so far (at level
// warn and above), and anything it wrote to stderr: each request a quota
// turned away, for one, logged as "limiting requests". It is for failure
// messages; its content is nginx's, not a contract.
func (s *Server) ErrorLog() string {
	var b strings.Builder
	for _, name := range []string{"stderr", "error.log"} {
		if data, err := os.ReadFile(filepath.Join(s.dir, name)); err == nil {
			b.Write(data)
		}
	}
	return b.String()
}
