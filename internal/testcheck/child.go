package testcheck

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// Child is a copy of the test binary running one test in a process of its
// own: a worker or executor that a test of several processes starts,
// reads and stops.
type Child struct {
	// Cmd is the process, started.
	Cmd *exec.Cmd
	// Stdin is the child's standard input; closing it is how a parent
	// asks its children to stop.
	Stdin io.WriteCloser

	stderr syncBuffer
	read   chan struct{}
}

// StartChild starts the test binary running only the test named test (a
// test that plays the child when its environment says so), with env added
// to the parent's environment. It calls line with each line of the child's
// standard output, from a goroutine of its own, until the output ends.
// When t ends with the child not waited for (t failed before waiting), the
// child is killed and, once its output is read, waited for.
func StartChild(t testing.TB, test string, env []string, line func(string)) *Child {
	t.Helper()
	c := &Child{read: make(chan struct{})}
	c.Cmd = exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	c.Cmd.Env = append(os.Environ(), env...)
	c.Cmd.Stderr = &c.stderr
	var err error
	if c.Stdin, err = c.Cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.Cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.Cmd.ProcessState == nil {
			_ = c.Cmd.Process.Kill()
			<-c.read
			_ = c.Cmd.Wait()
		}
	})
	go func() {
		defer close(c.read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line(sc.Text())
		}
	}()
	return c
}

// Read returns a channel closed when the child's standard output is read
// to the end: the child has ended (or closed its output) and line is no
// longer called. Cmd.Wait may be called then.
func (c *Child) Read() <-chan struct{} { return c.read }

// Stderr returns what the child has written to its standard error.
func (c *Child) Stderr() string { return c.stderr.String() }

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// StopOnStdinEOF calls stop, from a goroutine of its own, once the
// process's standard input ends: a child's way to stop when its parent
// closes Child.Stdin (or dies). The channel it returns is closed after
// stop returns.
func StopOnStdinEOF(stop func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	return done
}
