// Package fleet runs a fleet of replicas as separate OS processes, for
// redisguard's integration tests and its benchmark: each replica is the
// calling program started again (a test binary, or the bench's), with a
// Job in its environment, and builds its own resilienthttp client, with or
// without a redisguard.Store, as one replica of a service would.
//
// The protocol on the replica's stdin and stdout: the replica prints
// "ready" once its client is built and waits for "go"; it prints "half"
// when half its calls have ended, if the job asks, and a Report as one
// JSON line at the end. End of its stdin means the parent is gone: it
// exits.
package fleet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/redisguard"
)

// EnvJob is the environment variable that makes a process a replica: its
// value is the Job as JSON.
const EnvJob = "REDISGUARD_FLEET_JOB"

// Job is what one replica does.
type Job struct {
	// Redis is the redis-server's host:port; empty means local guards
	// only (no store).
	Redis    string `json:"redis"`
	Prefix   string `json:"prefix"`
	BudgetMs int    `json:"budget_ms"`
	// URL is the service's base URL; call i GETs URL/i.
	URL     string `json:"url"`
	Calls   int    `json:"calls"`
	Workers int    `json:"workers"`
	// Half asks for the "half" line.
	Half bool `json:"half"`
	// CallTimeoutMs bounds each call (default 30 s).
	CallTimeoutMs int `json:"call_timeout_ms"`
}

// Report is what a replica reports.
type Report struct {
	WallMs float64  `json:"wall_ms"` // from "go" to the last call's end
	Calls  int      `json:"calls"`
	Failed int      `json:"failed"` // an error of any kind
	Open   int      `json:"open"`   // of them, refused by an open breaker
	Errors []string `json:"errors,omitempty"`
	// MaxTakeUs is the slowest Store.Take, in µs: the most any call
	// waited for Redis. Takes counts them.
	MaxTakeUs int64 `json:"max_take_us"`
	Takes     int64 `json:"takes"`
	// FirstCallUs is the first call's duration.
	FirstCallUs int64            `json:"first_call_us"`
	Store       redisguard.Stats `json:"store"`
}

// timedStore measures the store's Take, the one method that may wait for
// Redis.
type timedStore struct {
	resilienthttp.GuardStore
	max, n atomic.Int64
}

func (t *timedStore) Take(ctx context.Context, k resilienthttp.GuardKey) (time.Duration, bool, bool) {
	start := time.Now()
	d, taken, ok := t.GuardStore.Take(ctx, k)
	took := time.Since(start).Microseconds()
	t.n.Add(1)
	for {
		cur := t.max.Load()
		if took <= cur || t.max.CompareAndSwap(cur, took) {
			break
		}
	}
	return d, taken, ok
}

// RunIfReplica makes this process a replica when EnvJob is set, and exits
// with its status; otherwise it returns. TestMain and main call it first.
func RunIfReplica() {
	arg, ok := os.LookupEnv(EnvJob)
	if !ok {
		return
	}
	os.Exit(replica(arg, os.Stdin, os.Stdout))
}

func replica(arg string, in io.Reader, out io.Writer) int {
	var job Job
	if err := json.Unmarshal([]byte(arg), &job); err != nil {
		fmt.Fprintln(os.Stderr, "fleet: job:", err)
		return 2
	}
	opts := []resilienthttp.Option{}
	var ts *timedStore
	var store *redisguard.Store
	if job.Redis != "" {
		rdb := redis.NewClient(&redis.Options{Addr: job.Redis})
		defer rdb.Close()
		store = redisguard.New(rdb, redisguard.WithPrefix(job.Prefix),
			redisguard.WithBudget(time.Duration(job.BudgetMs)*time.Millisecond))
		defer store.Close()
		ts = &timedStore{GuardStore: store}
		opts = append(opts, resilienthttp.WithGuardStore(ts))
	}
	c := resilienthttp.New(opts...)
	defer c.CloseIdleConnections()
	if _, err := fmt.Fprintln(out, "ready"); err != nil {
		return 3
	}
	br := bufio.NewReader(in)
	if line, err := br.ReadString('\n'); err != nil || line != "go\n" {
		return 3
	}
	go func() {
		_, _ = io.Copy(io.Discard, br)
		os.Exit(3) // the parent is gone: stop calling its server
	}()
	timeout := 30 * time.Second
	if job.CallTimeoutMs > 0 {
		timeout = time.Duration(job.CallTimeoutMs) * time.Millisecond
	}
	var (
		mu    sync.Mutex
		rep   Report
		next  atomic.Int64
		ended atomic.Int64
		half  sync.Once
		wg    sync.WaitGroup
	)
	start := time.Now()
	for range max(job.Workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= job.Calls {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, job.URL+"/"+strconv.Itoa(i), nil)
				t0 := time.Now()
				resp, err := c.Do(req)
				took := time.Since(t0)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				cancel()
				mu.Lock()
				rep.Calls++
				if i == 0 {
					rep.FirstCallUs = took.Microseconds()
				}
				if err != nil {
					rep.Failed++
					if errors.Is(err, resilienthttp.ErrCircuitOpen) {
						rep.Open++
					}
					if len(rep.Errors) < 3 && !slices.Contains(rep.Errors, err.Error()) {
						rep.Errors = append(rep.Errors, err.Error())
					}
				}
				mu.Unlock()
				if job.Half && int(ended.Add(1)) >= job.Calls/2 {
					half.Do(func() { fmt.Fprintln(out, "half") })
				}
			}
		}()
	}
	wg.Wait()
	rep.WallMs = float64(time.Since(start)) / float64(time.Millisecond)
	if ts != nil {
		rep.MaxTakeUs, rep.Takes = ts.max.Load(), ts.n.Load()
		rep.Store = store.Stats()
	}
	if err := json.NewEncoder(out).Encode(rep); err != nil {
		return 3
	}
	return 0
}

// Proc is a running replica, seen from the parent.
type Proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	eof    chan struct{}
	stderr lockedBuffer
	once   sync.Once
	err    error
}

// lockedBuffer is a replica's stderr, written by exec's copier and read
// by the parent.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < 16<<10 {
		b.buf.Write(p)
	}
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start starts exe (with args) as a replica for job.
func Start(exe string, args []string, job Job) (*Proc, error) {
	b, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	p := &Proc{cmd: exec.Command(exe, args...), lines: make(chan string, 8), eof: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), EnvJob+"="+string(b))
	p.cmd.Stderr = &p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		defer close(p.eof)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	return p, nil
}

// Line returns the replica's next line, waiting at most timeout.
func (p *Proc) Line(timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l := <-p.lines:
		return l, nil
	case <-p.eof:
		select {
		case l := <-p.lines:
			return l, nil
		default:
		}
		return "", fmt.Errorf("replica exited early; stderr: %s", p.stderr.String())
	case <-t.C:
		return "", fmt.Errorf("replica gave no line within %v", timeout)
	}
}

// Go tells the replica to start.
func (p *Proc) Go() error {
	_, err := io.WriteString(p.stdin, "go\n")
	return err
}

// Report reads the replica's report, skipping a "half" line, waiting at
// most timeout.
func (p *Proc) Report(timeout time.Duration) (Report, error) {
	deadline := time.Now().Add(timeout)
	for range 4 {
		l, err := p.Line(time.Until(deadline))
		if err != nil {
			return Report{}, err
		}
		if l == "half" {
			continue
		}
		var r Report
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			return Report{}, fmt.Errorf("replica's report %q: %v", l, err)
		}
		return r, nil
	}
	return Report{}, errors.New("replica sent no report")
}

// Stop closes the replica's stdin (it exits if still running), kills it
// after 10 s, and reaps it. It is safe to call more than once.
func (p *Proc) Stop() error {
	p.once.Do(func() {
		p.stdin.Close()
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case <-p.eof:
		case <-t.C:
			_ = p.cmd.Process.Kill()
		}
		p.err = p.cmd.Wait()
	})
	return p.err
}

// Run starts n replicas of job, waits until all are ready, starts them at
// once, calls onHalf (if not nil) when the first says "half", and returns
// their reports. Every replica is stopped before it returns.
func Run(exe string, args []string, n int, job Job, onHalf func()) ([]Report, error) {
	procs := make([]*Proc, 0, n)
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	for range n {
		p, err := Start(exe, args, job)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		if l, err := p.Line(30 * time.Second); err != nil || l != "ready" {
			return nil, fmt.Errorf("replica not ready: %q %v", l, err)
		}
	}
	for _, p := range procs {
		if err := p.Go(); err != nil {
			return nil, err
		}
	}
	if onHalf != nil {
		if l, err := procs[0].Line(2 * time.Minute); err != nil || l != "half" {
			return nil, fmt.Errorf("replica did not say half: %q %v", l, err)
		}
		onHalf()
	}
	reports := make([]Report, 0, n)
	for _, p := range procs {
		r, err := p.Report(2 * time.Minute)
		if err != nil {
			return nil, err
		}
		reports = append(reports, r)
	}
	return reports, nil
}
