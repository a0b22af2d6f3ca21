package testcheck

import (
	"fmt"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/internal/leaktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaktest.Options()...)
}

// childEnv tells the test binary it runs TestChildProcess as a child.
const childEnv = "TESTCHECK_CHILD"

// TestChildProcess is the child of the tests below: it prints its name
// and two lines, writes to its standard error, and ends when its standard
// input ends.
func TestChildProcess(t *testing.T) {
	name := os.Getenv(childEnv)
	if name == "" {
		t.Skip("run as a child by TestStartChild")
	}
	fmt.Printf("hello %s\nline 2\n", name)
	fmt.Fprintln(os.Stderr, "to stderr")
	_, _ = io.Copy(io.Discard, os.Stdin)
	fmt.Println("bye")
}

func TestStartChild(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("the parent")
	}
	var (
		mu    sync.Mutex
		lines []string
	)
	c := StartChild(t, "TestChildProcess", []string{childEnv + "=first"}, func(l string) {
		mu.Lock()
		lines = append(lines, l)
		mu.Unlock()
	})
	require.NoError(t, c.Stdin.Close())
	<-c.Read()
	require.NoError(t, c.Cmd.Wait())
	require.Contains(t, c.Stderr(), "to stderr\n")
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(lines), 3, "lines %q", lines)
	require.Equal(t, []string{"hello first", "line 2", "bye"}, lines[:3], "the child's lines, in order, before the test binary's own")
}

// A child its test does not wait for is killed and waited for when the
// test ends.
func TestStartChildKilledAtCleanup(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("the parent")
	}
	var c *Child
	t.Run("forgets its child", func(t *testing.T) {
		c = StartChild(t, "TestChildProcess", []string{childEnv + "=second"}, func(string) {})
	})
	require.NotNil(t, c.Cmd.ProcessState, "waited for")
	require.False(t, c.Cmd.ProcessState.Success(), "killed")
	select {
	case <-c.Read():
	default:
		t.Fatal("output not read to the end")
	}
}
