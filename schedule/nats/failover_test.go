package nats

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/schedule"
)

// The environment of an executor process started by TestFailover.
const (
	execEnv   = "KISFLOW_SCHED_TEST_EXECUTOR" // its name; set only in an executor
	urlEnv    = "KISFLOW_SCHED_TEST_URL"      // the server
	paramsEnv = "KISFLOW_SCHED_TEST_PARAMS"   // driveParams as JSON
	recordEnv = "KISFLOW_SCHED_TEST_RECORD"   // the record file
	seedEnv   = "KISFLOW_FAILOVER_SEED"       // chooses the kill points (optional)
)

// The failover run: firings every interval, leases of leaseTTL, runs of
// steps*step; memberTTL is long enough that a loaded machine does not lose
// memberships (lost leases are tolerated: the record shows them).
const (
	interval  = 250 * time.Millisecond
	leaseTTL  = time.Second
	firings   = 24
	steps     = 4
	step      = 150 * time.Millisecond
	memberTTL = 3 * time.Second
)

// TestExecutorProcess is the executor role of TestFailover, run in a
// process of its own: it drives the firings, appends what it does to the
// record file, prints "claimed <token>" for each lease it wins, and
// "finished" when every firing is done; then it waits for its standard
// input to end (which also stops it early).
func TestExecutorProcess(t *testing.T) {
	name := os.Getenv(execEnv)
	if name == "" {
		t.Skip("an executor process of TestFailover")
	}
	var p driveParams
	require.NoError(t, json.Unmarshal([]byte(os.Getenv(paramsEnv)), &p))
	p.Executor = name
	rec, err := os.OpenFile(os.Getenv(recordEnv), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer rec.Close()
	// One write per line: lines of several processes never interleave.
	write := func(l schedule.Lease, event string) {
		line := fmt.Sprintf("%s %d %s %s %d %d\n", l.Firing.ID, l.Token, name, event, time.Now().UnixNano(), l.Expires.UnixNano())
		_, err := rec.WriteString(line)
		require.NoError(t, err)
	}
	var outMu sync.Mutex
	record := func(ev driveEvent, l schedule.Lease) {
		write(l, string(ev))
		if ev == evClaimed {
			outMu.Lock()
			fmt.Printf("claimed %d\n", l.Token)
			outMu.Unlock()
		}
	}
	run := func(ctx context.Context, l schedule.Lease) error {
		for i := range steps {
			write(l, "step"+strconv.Itoa(i))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(step):
			}
		}
		write(l, "end")
		return nil
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdinDone := make(chan struct{})
	go func() {
		defer close(stdinDone)
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	c := connect(t, os.Getenv(urlEnv), Config{MemberTTL: memberTTL})
	require.NoError(t, drive(ctx, c, p, run, record))
	require.NoError(t, c.Close())
	// Tell the parent, which then closes the standard input.
	outMu.Lock()
	fmt.Println("finished")
	outMu.Unlock()
	<-stdinDone
}

// executor is one executor process of TestFailover.
type executor struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
	read   chan struct{} // closed when its output is read to the end
	killed bool
}

// claimLine is a "claimed" line of an executor.
type claimLine struct {
	proc  *executor
	token uint64
}

func startExecutor(t *testing.T, name string, env []string, claims chan<- claimLine) *executor {
	t.Helper()
	e := &executor{name: name, read: make(chan struct{})}
	e.cmd = exec.Command(os.Args[0], "-test.run=^TestExecutorProcess$", "-test.count=1")
	e.cmd.Env = append(append(os.Environ(), env...), execEnv+"="+name)
	e.cmd.Stderr = &e.stderr
	var err error
	e.stdin, err = e.cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := e.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, e.cmd.Start())
	t.Cleanup(func() {
		if e.cmd.ProcessState == nil { // the test failed before waiting
			_ = e.cmd.Process.Kill()
			<-e.read
			_ = e.cmd.Wait()
		}
	})
	go func() {
		defer close(e.read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "finished" {
				_ = e.stdin.Close()
			}
			if tok, ok := strings.CutPrefix(sc.Text(), "claimed "); ok {
				if v, err := strconv.ParseUint(tok, 10, 64); err == nil {
					select {
					case claims <- claimLine{e, v}:
					default: // the controller has stopped listening
					}
				}
			}
		}
	}()
	return e
}

// TestFailover runs three executor processes on one server, SIGKILLs the
// one running a firing, and later another, at seeded random points, and
// restarts them. Every firing must be done exactly once, by a run that
// finished, and each lease of a dead holder must have been claimed again
// within one firing interval of its expiry.
func TestFailover(t *testing.T) {
	if os.Getenv(execEnv) != "" {
		t.Skip("the parent of the executor processes")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(seedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		seed = v
	}
	t.Logf("seed %d (set %s to repeat)", seed, seedEnv)
	rng := rand.New(rand.NewPCG(seed, seed))

	url := startServer(t).ClientURL()
	p := driveParams{
		Scene: "failover", Task: "tick", Start: time.Now().Add(1500 * time.Millisecond).Round(0),
		Interval: interval, Firings: firings, TTL: leaseTTL,
	}
	params, err := json.Marshal(p)
	require.NoError(t, err)
	recPath := t.TempDir() + "/record"
	env := []string{urlEnv + "=" + url, paramsEnv + "=" + string(params), recordEnv + "=" + recPath}

	claims := make(chan claimLine, 1024)
	var all []*executor // every process started, in order
	start := func(name string) *executor {
		e := startExecutor(t, name, env, claims)
		all = append(all, e)
		return e
	}
	for i := range 3 {
		start(fmt.Sprintf("exec-%d", i))
	}

	// The kill plan: the holder of the k1-th claim seen, then the holder of
	// a claim at least gap claims later (in another process if possible);
	// each killed up to half-way into its run and restarted 0.2 to 1.2s
	// after its death.
	k1, gap := 1+rng.IntN(4), 3+rng.IntN(4)
	var kills []kill
	seen := 0
	var trace []string // what the controller saw and did, shown on failure
	timeout := time.After(2 * deadline)
	for len(kills) < 2 {
		var cl claimLine
		select {
		case cl = <-claims:
		case <-timeout:
			var states []string
			for _, e := range all {
				select {
				case <-e.read:
					states = append(states, fmt.Sprintf("%s: ended (killed %v):\n%s", e.name, e.killed, e.stderr.String()))
				default:
					states = append(states, e.name+": running")
				}
			}
			t.Fatalf("only %d kills before the deadline (claims seen: %d); trace: %s\nexecutors:\n%s", len(kills), seen, strings.Join(trace, " "), strings.Join(states, "\n"))
		}
		seen++
		trace = append(trace, fmt.Sprintf("%s:%d", cl.proc.name, cl.token))
		if cl.proc.killed || (len(kills) == 0 && seen < k1) || (len(kills) == 1 && seen < k1+gap) {
			continue
		}
		// The second victim is another process; the restarted first
		// victim only if no other one wins a claim for a while (the
		// executor that wakes first tends to win every race).
		if len(kills) == 1 && cl.proc.name == kills[0].name && seen < k1+gap+6 {
			continue
		}
		time.Sleep(time.Duration(rng.Int64N(int64(steps * step / 2)))) // into the run
		require.NoError(t, cl.proc.cmd.Process.Kill())                 // SIGKILL
		cl.proc.killed = true
		kills = append(kills, kill{cl.proc.name, cl.token})
		<-cl.proc.read
		_ = cl.proc.cmd.Wait()
		time.Sleep(200*time.Millisecond + time.Duration(rng.Int64N(int64(time.Second)))) // before the restart
		start(cl.proc.name)
		// The claims read meanwhile are stale: their runs may be over.
		trace = append(trace, "killed:"+cl.proc.name)
		for len(claims) > 0 {
			<-claims
			trace = append(trace, "drained")
		}
	}

	// Every live process stops once every firing is done.
	for _, e := range all {
		if e.killed {
			continue
		}
		select {
		case <-e.read:
		case <-time.After(2 * deadline):
			t.Fatalf("executor %s did not finish", e.name)
		}
		require.NoError(t, e.cmd.Wait(), "executor %s failed:\n%s", e.name, e.stderr.String())
	}

	checkRecord(t, url, p, recPath, kills)
}

// recRun is one lease's run, as the record shows it.
type recRun struct {
	token       uint64
	executor    string
	claimed     time.Time
	lastExpires time.Time // the holder's Expires after its last claim or renewal
	ended       bool
	completed   bool
	refused     bool
	lost        bool
	renewals    int
}

// kill is a process TestFailover killed, and the lease it was running.
type kill struct {
	name  string
	token uint64
}

func checkRecord(t *testing.T, url string, p driveParams, recPath string, kills []kill) {
	t.Helper()
	data, err := os.ReadFile(recPath)
	require.NoError(t, err)
	runs := map[string]map[uint64]*recRun{} // firing ID -> token -> run
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var (
			id, who, event string
			token          uint64
			at, expires    int64
		)
		_, err := fmt.Sscanf(line, "%s %d %s %s %d %d", &id, &token, &who, &event, &at, &expires)
		require.NoError(t, err, "record line %q", line)
		if runs[id] == nil {
			runs[id] = map[uint64]*recRun{}
		}
		r := runs[id][token]
		if r == nil {
			r = &recRun{token: token, executor: who}
			runs[id][token] = r
		}
		switch event {
		case string(evClaimed):
			r.claimed, r.lastExpires = time.Unix(0, at), time.Unix(0, expires)
		case string(evRenewed):
			r.lastExpires = time.Unix(0, expires)
			r.renewals++
		case "end":
			r.ended = true
		case string(evCompleted):
			r.completed = true
		case string(evRefused):
			r.refused = true
		case string(evLost):
			r.lost = true
		}
	}

	c := connect(t, url, testConfig)
	defer func() { require.NoError(t, c.Close()) }()
	var worst time.Duration // the longest re-claim after an expiry, past one interval
	partial, refused, renewals := 0, 0, 0
	for k := range p.Firings {
		f := p.firing(k)
		e, _, err := c.get(testCtx(t), firingKey(f))
		require.NoError(t, err)
		require.NotNil(t, e, "firing %d (%s) lost: no done marker", k, f.ID)
		var v firingValue
		require.NoError(t, json.Unmarshal(e.value, &v))
		require.Equal(t, stateDone, v.State, "firing %d not done", k)

		byToken := runs[f.ID]
		tokens := slices.Sorted(func(yield func(uint64) bool) {
			for tok := range byToken {
				if !yield(tok) {
					return
				}
			}
		})
		done := byToken[v.Token]
		require.NotNil(t, done, "firing %d: the completing lease %d has no run in the record", k, v.Token)
		require.True(t, done.ended, "firing %d: completed by lease %d whose run did not end", k, v.Token)
		completions := 0
		for i, tok := range tokens {
			r := byToken[tok]
			renewals += r.renewals
			require.False(t, r.claimed.IsZero(), "firing %d: lease %d ran without a claim", k, tok)
			if r.completed {
				completions++
				require.Equal(t, v.Token, tok, "firing %d: lease %d completed, but the done marker is lease %d's", k, tok, v.Token)
			}
			require.LessOrEqual(t, tok, v.Token, "firing %d: lease %d claimed after the firing was done by %d", k, tok, v.Token)
			if tok != v.Token {
				if !r.ended {
					partial++
					t.Logf("firing %d: partial run of lease %d by %s (killed or lost mid-run)", k, tok, r.executor)
				} else {
					refused++
					t.Logf("firing %d: run of lease %d by %s ended, its Complete refused=%v", k, tok, r.executor, r.refused)
				}
			}
			if i > 0 {
				prev := byToken[tokens[i-1]]
				// The earlier lease ended on the server at its holder's last
				// Expires (plus the server's rounding and expiry scan); a
				// live executor claims at its next tick.
				over := r.claimed.Sub(prev.lastExpires) - p.Interval
				worst = max(worst, over)
				t.Logf("firing %d: lease %d (%s) claimed %v after lease %d (%s) expired",
					k, tok, r.executor, r.claimed.Sub(prev.lastExpires).Round(time.Millisecond), prev.token, prev.executor)
			}
		}
		require.LessOrEqual(t, completions, 1, "firing %d completed %d times", k, completions)
	}
	for _, kl := range kills {
		t.Logf("killed %s while it ran lease %d", kl.name, kl.token)
	}
	t.Logf("%d firings done once each; %d partial runs, %d runs ended but not completing, %d renewals; worst re-claim delay past expiry + one interval: %v",
		p.Firings, partial, refused, renewals, worst.Round(time.Millisecond))
	require.Positive(t, renewals, "no lease was renewed: the runs are too short to test renewal")
	// The bound: a lease is claimed again within its TTL plus one firing
	// interval of its last renewal. The tolerance covers what the bound
	// leaves out: the server counts TTLs in whole seconds and scans for
	// expiry every 250ms or more, and the processes share a loaded machine.
	require.LessOrEqual(t, worst, reclaimTolerance, "a lease was claimed again later than its TTL plus one interval plus %v", reclaimTolerance)
}

// reclaimTolerance is what the re-claim bound allows beyond lease TTL plus
// one firing interval.
const reclaimTolerance = 2 * time.Second
