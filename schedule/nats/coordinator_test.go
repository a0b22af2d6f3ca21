package nats

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/schedule"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

func firing(scene, id string) schedule.Firing {
	return schedule.Firing{Scene: scene, Task: "report", Due: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ID: id}
}

// waitClosed fails the test unless ch is closed before the deadline.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(deadline):
		t.Fatalf("%s: not within %v", what, deadline)
	}
}

func TestServerGone(t *testing.T) {
	s := startServer(t)
	// No reconnect buffer: requests made while disconnected fail at once
	// instead of waiting for the request timeout.
	c := connect(t, s.ClientURL(), testConfig, natsio.ReconnectBufSize(-1))
	defer func() { require.NoError(t, c.Close()) }()
	ctx := testCtx(t)
	m, err := c.Join(ctx, "billing", "exec-a")
	require.NoError(t, err)
	l, err := c.Claim(ctx, firing("billing", "f1"), "exec-a", time.Minute)
	require.NoError(t, err)

	stopServer(s)
	// The renewals fail; a TTL after the last good one the membership is lost.
	waitClosed(t, m.Lost(), "membership lost after the server went away")
	require.NoError(t, m.Leave(ctx), "leaving a lost membership")

	for name, err := range map[string]error{
		"claim":     func() error { _, err := c.Claim(ctx, firing("billing", "f2"), "exec-a", time.Minute); return err }(),
		"renew":     func() error { _, err := c.Renew(ctx, l, time.Minute); return err }(),
		"complete":  c.Complete(ctx, l),
		"executors": func() error { _, err := c.Executors(ctx, "billing"); return err }(),
		"join":      func() error { _, err := c.Join(ctx, "billing", "exec-b"); return err }(),
	} {
		require.Error(t, err, name)
		t.Logf("%s: %v", name, err)
		require.ErrorIs(t, err, ErrUnreachable, name)
		for _, not := range []error{schedule.ErrClaimed, schedule.ErrDone, schedule.ErrLeaseLost} {
			require.NotErrorIs(t, err, not, "%s: a server that is gone is not a decision of the coordinator", name)
		}
		require.Contains(t, err.Error(), "schedule/nats: "+name, name)
	}
}

func TestConnectNoServer(t *testing.T) {
	s := startServer(t)
	url := s.ClientURL()
	stopServer(s)
	_, err := Connect(testCtx(t), url, testConfig)
	require.ErrorContains(t, err, "schedule/nats: connect to "+url)
}

func TestJoinTakesOver(t *testing.T) {
	url := startServer(t).ClientURL()
	a, b := connect(t, url, testConfig), connect(t, url, testConfig)
	defer func() { require.NoError(t, a.Close()) }()
	defer func() { require.NoError(t, b.Close()) }()
	ctx := testCtx(t)
	old, err := a.Join(ctx, "billing", "exec-a")
	require.NoError(t, err)
	// A restarted process joins under the same name before the old key expired.
	m, err := b.Join(ctx, "billing", "exec-a")
	require.NoError(t, err)
	waitClosed(t, old.Lost(), "the old membership lost to the new Join")
	require.NoError(t, old.Leave(ctx))
	es, err := b.Executors(ctx, "billing")
	require.NoError(t, err)
	require.Len(t, es, 1, "the old membership's Leave must not delete the new one")
	select {
	case <-m.Lost():
		t.Fatal("the new membership is lost")
	default:
	}
	require.NoError(t, m.Leave(ctx))
	require.NoError(t, m.Leave(ctx), "second Leave")
	es, err = a.Executors(ctx, "billing")
	require.NoError(t, err)
	require.Empty(t, es)
}

func TestCompleteTwiceAndRenewDone(t *testing.T) {
	url := startServer(t).ClientURL()
	c := connect(t, url, testConfig)
	defer func() { require.NoError(t, c.Close()) }()
	ctx := testCtx(t)
	f := firing("billing", "f1")
	l, err := c.Claim(ctx, f, "exec-a", time.Minute)
	require.NoError(t, err)
	require.NoError(t, c.Complete(ctx, l))
	require.NoError(t, c.Complete(ctx, l), "a retried Complete of the completing lease")
	_, err = c.Renew(ctx, l, time.Minute)
	require.ErrorIs(t, err, schedule.ErrLeaseLost)
	require.ErrorIs(t, err, schedule.ErrDone)
	// A forged lease with another token is refused, and says by whom.
	forged := l
	forged.Token++
	err = c.Complete(ctx, forged)
	require.ErrorIs(t, err, schedule.ErrLeaseLost)
	require.ErrorContains(t, err, `completed by lease`)
}

// The server alone judges expiry: a holder whose clock is wrong (here, a
// lease whose Expires is long past, or far ahead) renews and completes as
// long as the server holds its lease, and cannot keep it past the server's
// TTL.
func TestExpiryIsTheServers(t *testing.T) {
	url := startServer(t).ClientURL()
	a, b := connect(t, url, testConfig), connect(t, url, testConfig)
	defer func() { require.NoError(t, a.Close()) }()
	defer func() { require.NoError(t, b.Close()) }()
	ctx := testCtx(t)
	f := firing("billing", "f1")
	l, err := a.Claim(ctx, f, "exec-a", time.Minute)
	require.NoError(t, err)
	behind := l
	behind.Expires = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	r, err := a.Renew(ctx, behind, time.Second)
	require.NoError(t, err, "the server still holds the lease")
	ahead := r
	ahead.Expires = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	var l2 schedule.Lease
	for {
		l2, err = b.Claim(ctx, f, "exec-b", time.Minute)
		if !errors.Is(err, schedule.ErrClaimed) {
			break
		}
		time.Sleep(100 * time.Millisecond) // polling for the server's expiry
	}
	require.NoError(t, err)
	require.Greater(t, l2.Token, l.Token)
	require.ErrorIs(t, a.Complete(ctx, ahead), schedule.ErrLeaseLost)
	require.NoError(t, b.Complete(ctx, l2))
}

func TestDoneRetention(t *testing.T) {
	url := startServer(t).ClientURL()
	cfg := testConfig
	cfg.DoneRetention = time.Second
	c := connect(t, url, cfg)
	defer func() { require.NoError(t, c.Close()) }()
	ctx := testCtx(t)
	f := firing("billing", "f1")
	l, err := c.Claim(ctx, f, "exec-a", time.Minute)
	require.NoError(t, err)
	require.NoError(t, c.Complete(ctx, l))
	// Once the done marker is gone, the firing can be claimed again.
	var l2 schedule.Lease
	for {
		l2, err = c.Claim(ctx, f, "exec-a", time.Minute)
		if !errors.Is(err, schedule.ErrDone) {
			break
		}
		time.Sleep(100 * time.Millisecond) // polling for the marker's expiry
	}
	require.NoError(t, err)
	require.Greater(t, l2.Token, l.Token)
}

func TestBadConfig(t *testing.T) {
	url := startServer(t).ClientURL()
	_, err := Connect(testCtx(t), url, Config{Bucket: "a.b"})
	require.ErrorContains(t, err, `bucket name "a.b"`)
	_, err = Connect(testCtx(t), url, Config{MemberTTL: -time.Second})
	require.ErrorContains(t, err, "negative")

	// A bucket of the same name made without per-key TTLs is refused.
	nc, err := natsio.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateKeyValue(testCtx(t), jetstream.KeyValueConfig{Bucket: "plain"})
	require.NoError(t, err)
	_, err = New(testCtx(t), js, Config{Bucket: "plain"})
	require.ErrorContains(t, err, `bucket "plain"`)
	require.ErrorContains(t, err, "per-key TTLs")
	// New does not own the connection: Close leaves it open.
	c, err := New(testCtx(t), js, Config{Bucket: "shared"})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.True(t, nc.IsConnected())
	_, err = c.Claim(testCtx(t), firing("s", "f"), "exec-a", time.Minute)
	require.ErrorIs(t, err, errClosed)
}

// Leases and done markers are stored: they outlive a restart of the server.
func TestServerRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServerAt(t, dir, -1)
	port := s.Addr().(*net.TCPAddr).Port
	url := s.ClientURL()
	a, b := connect(t, url, testConfig), connect(t, url, testConfig)
	defer func() { require.NoError(t, a.Close()) }()
	defer func() { require.NoError(t, b.Close()) }()
	ctx := testCtx(t)
	held, done := firing("billing", "held"), firing("billing", "done")
	l, err := a.Claim(ctx, held, "exec-a", time.Minute)
	require.NoError(t, err)
	d, err := a.Claim(ctx, done, "exec-a", time.Minute)
	require.NoError(t, err)
	require.NoError(t, a.Complete(ctx, d))

	stopServer(s)
	startServerAt(t, dir, port)
	// The clients reconnect by themselves; wait for it.
	for !a.js.Conn().IsConnected() || !b.js.Conn().IsConnected() {
		select {
		case <-ctx.Done():
			t.Fatal("the clients did not reconnect")
		case <-time.After(50 * time.Millisecond):
		}
	}
	_, err = b.Claim(ctx, held, "exec-b", time.Minute)
	require.ErrorIs(t, err, schedule.ErrClaimed)
	_, err = b.Claim(ctx, done, "exec-b", time.Minute)
	require.ErrorIs(t, err, schedule.ErrDone)
	require.NoError(t, a.Complete(ctx, l))
}

// A renewal that happened on the server though its reply was lost (here,
// written behind the renewer's back with the membership's own ID) does not
// lose the membership: the renewer adopts the revision and goes on.
func TestRenewalReplyLost(t *testing.T) {
	url := startServer(t).ClientURL()
	c := connect(t, url, testConfig)
	defer func() { require.NoError(t, c.Close()) }()
	ctx := testCtx(t)
	ms, err := c.Join(ctx, "billing", "exec-a")
	require.NoError(t, err)
	m := ms.(*membership)
	e, _, err := c.get(ctx, m.key)
	require.NoError(t, err)
	require.NotNil(t, e)
	var v memberValue
	require.NoError(t, json.Unmarshal(e.value, &v))
	require.NotEmpty(t, v.ID)
	rev, err := c.put(ctx, m.key, e.value, e.rev, testConfig.MemberTTL)
	require.NoError(t, err)
	// The renewer's next write is refused, it adopts rev, and renews again.
	for {
		e, _, err := c.get(ctx, m.key)
		require.NoError(t, err)
		require.NotNil(t, e, "the membership's key expired")
		if e.rev > rev {
			break
		}
		select {
		case <-ms.Lost():
			t.Fatal("the membership was lost to its own write")
		case <-ctx.Done():
			t.Fatal("no renewal after the adopted one")
		case <-time.After(50 * time.Millisecond):
		}
	}
	select {
	case <-ms.Lost():
		t.Fatal("the membership was lost to its own write")
	default:
	}
	require.NoError(t, ms.Leave(ctx))
}
