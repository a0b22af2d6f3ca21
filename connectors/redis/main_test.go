package redis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/internal/leaktest"
)

// requireEnv, when set, makes a missing redis-server an error instead of a
// reason to skip.
const requireEnv = "KISFLOW_REQUIRE_REDIS"

var (
	// testAddr is the address of the server TestMain started.
	testAddr string
	// skipReason is set when there is no redis-server to test against.
	skipReason string
	// serverBin is the redis-server executable.
	serverBin string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	code := runWithServer(m)
	if code == 0 {
		// Every connector and client is closed by now: nothing of ours
		// may still run.
		if err := goleak.Find(leaktest.Options()...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak: leaked goroutines:", err)
			code = 1
		}
	}
	return code
}

// runWithServer runs the tests against a redis-server of their own, or
// without one (tests that need it skip) when there is none to start.
func runWithServer(m *testing.M) int {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(requireEnv) != "" {
			fmt.Fprintf(os.Stderr, "redis-server is not on PATH and %s is set; install it with testdata/install-redis.sh\n", requireEnv)
			return 1
		}
		skipReason = "redis-server is not on PATH: install it (testdata/install-redis.sh) to run the Redis connector tests; set " + requireEnv + " to make this an error"
		fmt.Fprintln(os.Stderr, "SKIP:", skipReason)
		return m.Run()
	}
	serverBin = bin
	srv, err := startServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start redis-server:", err)
		return 1
	}
	testAddr = srv.addr
	code := m.Run()
	if err := srv.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop redis-server:", err)
		code = 1
	}
	return code
}

// server is a redis-server process listening on a unix socket only.
type server struct {
	cmd    *exec.Cmd
	dir    string
	addr   string // unix:///dir/redis.sock
	exited chan struct{}
	err    error // of cmd.Wait, set before exited closes
}

// startServer starts redis-server in a temporary directory and returns once
// it answers PING.
func startServer() (*server, error) {
	dir, err := os.MkdirTemp("", "kisflow-redis-")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "redis.sock")
	logPath := filepath.Join(dir, "redis.log")
	cmd := exec.Command(serverBin,
		"--port", "0",
		"--unixsocket", sock,
		"--unixsocketperm", "700",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", dir,
		"--logfile", logPath,
	)
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s := &server{cmd: cmd, dir: dir, addr: "unix://" + sock, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	if err := s.awaitReady(10 * time.Second); err != nil {
		log, _ := os.ReadFile(logPath)
		_ = s.stop()
		return nil, fmt.Errorf("%w; server log:\n%s", err, log)
	}
	return s, nil
}

// awaitReady polls the server with PING until it answers, it exits or
// the timeout passes.
func (s *server) awaitReady(timeout time.Duration) error {
	opts, err := goredis.ParseURL(s.addr)
	if err != nil {
		return err
	}
	opts.MaxRetries = -1
	client := goredis.NewClient(opts)
	defer client.Close()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("redis-server exited: %v", s.err)
		case <-deadline.C:
			return fmt.Errorf("redis-server did not answer PING within %v: %w", timeout, err)
		case <-tick.C:
		}
	}
}

// stop kills the server, waits for it to exit and removes its directory.
func (s *server) stop() error {
	select {
	case <-s.exited:
	default:
		if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return err
		}
		<-s.exited
	}
	return os.RemoveAll(s.dir)
}
