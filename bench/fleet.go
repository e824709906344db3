package main

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
	"strings"
	"sync"
	"time"

	"github.com/resilienthttp/resilienthttp/servicetest"
)

// ---- 8. A fleet without Redis ----
//
// Several OS processes, each with its own client and no shared state, call
// one service whose quota they share and were never told. The processes
// are this program itself, started again with fleetChildArg: os.Executable
// is the bench binary under `go run`, and the test binary under `go test`
// (whose TestMain hands the same argument to runFleetChild).

// fleetChildArg, as the first argument, makes the program one process of
// scenario 8's fleet; the second is its fleetJob as JSON.
const fleetChildArg = "-fleet-child"

// How long the parent waits for its children: to be ready (built their
// client), and, beyond the run's own bounds, to report and to exit.
const (
	fleetReadyTimeout = 30 * time.Second
	fleetSlack        = 15 * time.Second
)

// fleetJob is what one child process does.
type fleetJob struct {
	Contender string `json:"contender"`
	URL       string `json:"url"`
	Calls     int    `json:"calls"`
	Workers   int    `json:"workers"`
	BudgetMs  int64  `json:"budget_ms"`
	PerCallMs int64  `json:"per_call_ms"`
}

// fleetReport is what a child reports, one JSON line on its stdout.
type fleetReport struct {
	WallMs      float64  `json:"wall_ms"` // from the start signal, by the child's clock
	Calls       int      `json:"calls"`   // calls that ran
	OK200       int      `json:"ok_200"`
	Failed      int      `json:"failed"` // an error or a status >= 400
	BreakerOpen int      `json:"breaker_open"`
	NotRun      int      `json:"not_run"`
	ElapsedUs   []int64  `json:"elapsed_us"`       // each call's duration
	Errors      []string `json:"errors,omitempty"` // a few distinct error messages
}

// runFleetChild makes this process a fleet child when its arguments say
// so, and exits; otherwise it returns. main and TestMain call it first.
func runFleetChild() {
	if len(os.Args) >= 2 && os.Args[1] == fleetChildArg {
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "bench: "+fleetChildArg+" takes one argument, the job as JSON")
			os.Exit(2)
		}
		os.Exit(fleetChild(os.Args[2], os.Stdin, os.Stdout))
	}
}

// fleetChild runs job: it builds the contender's client, says "ready",
// waits for the parent's "go", makes the calls, and reports. It returns the
// process's exit status. The parent holds the child's stdin open until the
// child has exited, so end of input means the parent is gone: before "go"
// the child returns, after it the child exits at once.
func fleetChild(arg string, in io.Reader, out io.Writer) int {
	var job fleetJob
	if err := json.Unmarshal([]byte(arg), &job); err != nil {
		fmt.Fprintln(os.Stderr, "bench: fleet job:", err)
		return 2
	}
	if !slices.Contains(contenderKeys, job.Contender) && !slices.Contains(extraContenderKeys, job.Contender) {
		fmt.Fprintf(os.Stderr, "bench: fleet job: unknown contender %q\n", job.Contender)
		return 2
	}
	c := newContender(job.Contender, setup{})
	defer c.closeIdle()
	if _, err := fmt.Fprintln(out, "ready"); err != nil {
		return 3
	}
	br := bufio.NewReader(in)
	if line, err := br.ReadString('\n'); err != nil || line != "go\n" {
		return 3 // the parent is gone, or gave up
	}
	go func() {
		_, _ = io.Copy(io.Discard, br)
		os.Exit(3) // the parent is gone: stop calling its server
	}()
	l := runLoad(job.Calls, job.Workers, time.Duration(job.BudgetMs)*time.Millisecond, time.Duration(job.PerCallMs)*time.Millisecond,
		func(ctx context.Context, i int) outcome {
			return c.do(ctx, request{method: http.MethodGet, url: job.URL + "/" + strconv.Itoa(i)})
		})
	rep := fleetReport{WallMs: float64(l.wall) / float64(time.Millisecond), Calls: len(l.outcomes), Failed: l.failures(), NotRun: l.notRun}
	for _, o := range l.outcomes {
		rep.ElapsedUs = append(rep.ElapsedUs, o.elapsed.Microseconds())
		if o.err == nil && o.status == http.StatusOK {
			rep.OK200++
		}
		if breakerOpen(o.err) {
			rep.BreakerOpen++
		}
		if o.err != nil && len(rep.Errors) < 3 && !slices.Contains(rep.Errors, o.err.Error()) {
			rep.Errors = append(rep.Errors, o.err.Error())
		}
	}
	if err := json.NewEncoder(out).Encode(rep); err != nil {
		return 3
	}
	return 0
}

// fleetProc is one running child, seen from the parent.
type fleetProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan fleetLine // its stdout, a line at a time
	eof    chan struct{}  // closed when its stdout is done
	stderr *cappedBuffer

	stopOnce sync.Once
	waitErr  error
	untrack  func()
}

// fleetLine is a line a child wrote, and when the parent read it.
type fleetLine struct {
	text string
	at   time.Time
}

// startFleetProc starts a child of exe for job.
func startFleetProc(exe string, job fleetJob) (*fleetProc, error) {
	arg, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	fp := &fleetProc{
		cmd:    exec.Command(exe, fleetChildArg, string(arg)),
		lines:  make(chan fleetLine, 4),
		eof:    make(chan struct{}),
		stderr: &cappedBuffer{max: 16 << 10},
	}
	fp.cmd.Stderr = fp.stderr
	if fp.stdin, err = fp.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := fp.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := fp.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", exe, err)
	}
	fp.untrack = track(fp.kill)
	go func() {
		defer close(fp.eof)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 8<<20)
		for sc.Scan() {
			select {
			case fp.lines <- fleetLine{sc.Text(), time.Now()}:
			default: // a chatty child's extra lines; the parent reads only two
			}
		}
	}()
	return fp, nil
}

// line returns the child's next line, waiting at most timeout.
func (fp *fleetProc) line(timeout time.Duration) (fleetLine, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l := <-fp.lines:
		return l, nil
	case <-fp.eof:
		select {
		case l := <-fp.lines:
			return l, nil
		default:
		}
		return fleetLine{}, fmt.Errorf("fleet child exited early; stderr: %s", fp.stderr)
	case <-t.C:
		return fleetLine{}, fmt.Errorf("fleet child gave no answer within %v", timeout)
	}
}

// wait waits, at most timeout, for the child to exit by itself, then kills
// it if it has not, and returns how it exited.
func (fp *fleetProc) wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-fp.eof:
	case <-t.C:
	}
	fp.kill()
	return fp.waitErr
}

// kill ends the child if it is still running and reaps it; it does so once,
// and is what an interrupted run calls.
func (fp *fleetProc) kill() {
	fp.stopOnce.Do(func() {
		select {
		case <-fp.eof: // exited, or about to: its stdout is closed
		default:
			_ = fp.cmd.Process.Kill()
			t := time.NewTimer(10 * time.Second)
			select {
			case <-fp.eof:
			case <-t.C: // Wait below closes the pipe all the same
			}
			t.Stop()
		}
		fp.waitErr = fp.cmd.Wait()
		fp.untrack()
	})
}

// cappedBuffer keeps the first max bytes written to it.
type cappedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}

// fleetRunResult is one run of the fleet.
type fleetRunResult struct {
	wall        time.Duration   // the last process's, from the common start
	procWalls   []time.Duration // each process's, from the common start
	selfWalls   []time.Duration // each process's, by its own clock from reading the signal
	n429        int
	attempts    int // requests the server received
	calls       int // calls that ran, over all processes
	ok200       int
	failed      int
	breakerOpen int
	notRun      int
	latencies   []time.Duration
	errors      []string
}

// fleetRun starts p.fleetProcs children calling one servicetest server with
// the shared quota, starts them together, and gathers their reports.
// Every child is stopped on every path.
func fleetRun(p params, k string) (r fleetRunResult, err error) {
	q := p.fleetQuota
	srv := servicetest.New(servicetest.WithRateLimit(q.rps, q.burst))
	defer srv.Close()
	exe, err := os.Executable()
	if err != nil {
		return r, err
	}
	job := fleetJob{
		Contender: k, URL: srv.URL + "/v1/items", Calls: p.fleetN, Workers: p.fleetWorkers,
		BudgetMs: p.budget.Milliseconds(), PerCallMs: p.perCall.Milliseconds(),
	}
	var procs []*fleetProc
	defer func() {
		for _, fp := range procs {
			fp.kill()
		}
	}()
	for range p.fleetProcs {
		fp, err := startFleetProc(exe, job)
		if err != nil {
			return r, err
		}
		procs = append(procs, fp)
	}
	for _, fp := range procs {
		l, err := fp.line(fleetReadyTimeout)
		if err != nil {
			return r, err
		}
		if l.text != "ready" {
			return r, fmt.Errorf("fleet child said %q, want ready; stderr: %s", l.text, fp.stderr)
		}
	}
	start := time.Now()
	for _, fp := range procs {
		if _, err := io.WriteString(fp.stdin, "go\n"); err != nil {
			return r, fmt.Errorf("starting a fleet child's calls: %w", err)
		}
	}
	deadline := start.Add(p.budget + p.perCall + fleetSlack)
	for _, fp := range procs {
		l, err := fp.line(time.Until(deadline))
		if err != nil {
			return r, err
		}
		var rep fleetReport
		if err := json.Unmarshal([]byte(l.text), &rep); err != nil {
			return r, fmt.Errorf("fleet child's report %q: %w", trim(l.text, 200), err)
		}
		w := l.at.Sub(start)
		r.procWalls = append(r.procWalls, w)
		r.selfWalls = append(r.selfWalls, time.Duration(rep.WallMs*float64(time.Millisecond)))
		r.wall = max(r.wall, w)
		r.calls += rep.Calls
		r.ok200 += rep.OK200
		r.failed += rep.Failed
		r.breakerOpen += rep.BreakerOpen
		r.notRun += rep.NotRun
		for _, us := range rep.ElapsedUs {
			r.latencies = append(r.latencies, time.Duration(us)*time.Microsecond)
		}
		for _, e := range rep.Errors {
			if len(r.errors) < 3 && !slices.Contains(r.errors, e) {
				r.errors = append(r.errors, e)
			}
		}
	}
	for _, fp := range procs {
		if err := fp.wait(fleetSlack); err != nil {
			return r, fmt.Errorf("fleet child: %w; stderr: %s", err, fp.stderr)
		}
	}
	slices.Sort(r.latencies)
	r.n429 = statusCount(srv, http.StatusTooManyRequests)
	r.attempts = srv.Total()
	return r, nil
}

// fleetTarget is issue 11's target for resilienthttp in scenario 8, for
// each run.
const (
	fleetMaxWallOverIdeal = 1.5
	fleetMax429Pct        = 3.0
)

func fleet(p params, keys []string) (*ScenarioResult, error) {
	q := p.fleetQuota
	total := p.fleetProcs * p.fleetN
	ideal := float64(total-q.burst) / q.rps
	rows := make([]*Row, len(keys))
	errs := make([]error, len(keys))
	runOne := func(i int) {
		k := keys[i]
		runs := p.fleetPeerRuns
		if strings.HasPrefix(k, "resilienthttp") {
			runs = p.fleetRuns
		}
		var rs []fleetRunResult
		for range runs {
			r, err := fleetRun(p, k)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", k, err)
				return
			}
			rs = append(rs, r)
		}
		rows[i] = fleetRow(k, rs, p, ideal)
	}
	// resilienthttp alone first, then the peers side by side: its five runs
	// are the measurement, and other processes starting or
	// spinning would only add noise to them.
	var ours, peers []int
	for i, k := range keys {
		if strings.HasPrefix(k, "resilienthttp") {
			ours = append(ours, i)
		} else {
			peers = append(peers, i)
		}
	}
	for _, group := range [][]int{ours, peers} {
		var wg sync.WaitGroup
		for _, i := range group {
			spawn(&wg, func() { runOne(i) })
		}
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	t := &Table{
		Columns: []string{"contender", "runs", "wall s, each run", "worst × ideal", "429s, each run", "worst 429s % of calls",
			"failures", "breaker-open failures", "not run", "p99 latency ms"},
		Rows: rows,
	}
	var notes []string
	if rh := row(t, "resilienthttp"); rh != nil {
		met, how := fleetTargetMet(rh)
		rh.Figures["issue_target_met"] = met
		notes = append(notes, "Issue 11's target for resilienthttp: "+how+".")
	}
	notes = append(notes, fmt.Sprintf("%d OS processes (this program, started again), each with its own client and %d goroutines making %d GETs, "+
		"share one servicetest.WithRateLimit(%g, %d) quota (429 with Retry-After beyond it) that nobody told them; "+
		"ideal wall time (%d·%d−%d)/%g = %.1f s. A run's wall time is the last process's, from a start signal sent to all of them at once, after each had built its client. "+
		"resilienthttp runs %d times, alone; each peer %d time(s), side by side. 429s are counted at the server; %% of calls is of the %d calls of a run.",
		p.fleetProcs, p.fleetWorkers, p.fleetN, q.rps, q.burst, p.fleetProcs, p.fleetN, q.burst, q.rps, ideal,
		p.fleetRuns, p.fleetPeerRuns, total))
	t.Note = strings.Join(notes, " ")
	return &ScenarioResult{Tables: []*Table{t}}, nil
}

// fleetRow turns a contender's runs into its row.
func fleetRow(k string, rs []fleetRunResult, p params, ideal float64) *Row {
	total := p.fleetProcs * p.fleetN
	var walls, over, pct429 []float64
	var n429s, attempts, failures []int
	var procWalls, selfWalls [][]float64
	var lat []time.Duration
	failed, breaker, notRun := 0, 0, 0
	var errs []string
	for _, r := range rs {
		walls = append(walls, round(r.wall.Seconds(), 3))
		over = append(over, round(r.wall.Seconds()/ideal, 3))
		pct429 = append(pct429, round(100*float64(r.n429)/float64(total), 2))
		n429s = append(n429s, r.n429)
		attempts = append(attempts, r.attempts)
		failures = append(failures, r.failed)
		var pw []float64
		for _, w := range r.procWalls {
			pw = append(pw, round(w.Seconds(), 3))
		}
		procWalls = append(procWalls, pw)
		var sw []float64
		for _, w := range r.selfWalls {
			sw = append(sw, round(w.Seconds(), 3))
		}
		selfWalls = append(selfWalls, sw)
		lat = append(lat, r.latencies...)
		failed += r.failed
		breaker += r.breakerOpen
		notRun += r.notRun
		for _, e := range r.errors {
			if len(errs) < 3 && !slices.Contains(errs, e) {
				errs = append(errs, e)
			}
		}
	}
	slices.Sort(lat)
	join := func(vs []float64, f string) string {
		var s []string
		for _, v := range vs {
			s = append(s, fmt.Sprintf(f, v))
		}
		return strings.Join(s, ", ")
	}
	ints := func(vs []int) string {
		var s []string
		for _, v := range vs {
			s = append(s, strconv.Itoa(v))
		}
		return strings.Join(s, ", ")
	}
	breakerCell := "n/a"
	figures := map[string]any{
		"runs": len(rs), "run_walls_s": walls, "run_wall_over_ideal": over, "run_process_walls_s": procWalls,
		"run_process_self_walls_s": selfWalls,
		"wall_over_ideal_max":      slices.Max(over), "ideal_s": round(ideal, 3),
		"run_429s": n429s, "run_429_pct_of_calls": pct429, "status_429_pct_max": slices.Max(pct429),
		"run_attempts_at_server": attempts, "run_failures": failures, "failures": failed, "not_run": notRun,
		"p99_latency_ms": msF(percentile(lat, 99)),
		"processes":      p.fleetProcs, "calls_per_process": p.fleetN, "goroutines_per_process": p.fleetWorkers,
		"calls_per_run": total,
	}
	if hasBreaker[k] {
		breakerCell = strconv.Itoa(breaker)
		figures["breaker_open_failures"] = breaker
	}
	if len(errs) > 0 {
		figures["sample_errors"] = errs
	}
	return &Row{
		Contender: k,
		Cells: []string{contenderNames[k], strconv.Itoa(len(rs)), join(walls, "%.2f"), fmt.Sprintf("%.2f×", slices.Max(over)),
			ints(n429s), fmt.Sprintf("%.1f%%", slices.Max(pct429)), ints(failures), breakerCell, strconv.Itoa(notRun),
			ms(percentile(lat, 99))},
		Figures: figures,
	}
}

// fleetTargetMet says whether resilienthttp's row meets the target
// in every run, and how each run compares.
func fleetTargetMet(r *Row) (bool, string) {
	over := figList(r, "run_wall_over_ideal")
	pct := figList(r, "run_429_pct_of_calls")
	fails := figList(r, "run_failures")
	ok := len(over) > 0
	var bad []string
	for i := range over {
		if over[i] > fleetMaxWallOverIdeal {
			ok = false
			bad = append(bad, fmt.Sprintf("run %d took %.2f×", i+1, over[i]))
		}
		if i < len(pct) && pct[i] > fleetMax429Pct {
			ok = false
			bad = append(bad, fmt.Sprintf("run %d had %.1f%% 429s", i+1, pct[i]))
		}
		if i < len(fails) && fails[i] > 0 {
			ok = false
			bad = append(bad, fmt.Sprintf("run %d had %.0f failures", i+1, fails[i]))
		}
	}
	how := fmt.Sprintf("≤ %.1f× ideal, ≤ %g%% 429s and 0 failed in each of %d runs", fleetMaxWallOverIdeal, fleetMax429Pct, len(over))
	if ok {
		return true, how + ": met"
	}
	return false, how + ": NOT met (" + strings.Join(bad, "; ") + ")"
}

// figList is a row's list figure by name, as numbers: []float64 or []int
// from a run, []any of float64 from results.json; nil when missing.
func figList(r *Row, name string) []float64 {
	if r == nil {
		return nil
	}
	var out []float64
	switch v := r.Figures[name].(type) {
	case []float64:
		return v
	case []int:
		for _, x := range v {
			out = append(out, float64(x))
		}
	case []any:
		for _, x := range v {
			f, ok := x.(float64)
			if !ok {
				return nil
			}
			out = append(out, f)
		}
	}
	return out
}
