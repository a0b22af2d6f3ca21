package nats_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/kisflow/kisflow/schedule"
	schednats "github.com/kisflow/kisflow/schedule/nats"
)

// Two executors, each with its coordinator (as in two processes), race for
// one firing: one wins it, runs it and completes it; the other is told.
func Example() {
	dir, _ := os.MkdirTemp("", "schednats")
	defer os.RemoveAll(dir)
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		panic(err)
	}
	s.Start()
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	if !s.ReadyForConnections(10 * time.Second) {
		panic("no server")
	}
	ctx := context.Background()
	a, err := schednats.Connect(ctx, s.ClientURL(), schednats.Config{})
	if err != nil {
		panic(err)
	}
	defer a.Close()
	b, err := schednats.Connect(ctx, s.ClientURL(), schednats.Config{})
	if err != nil {
		panic(err)
	}
	defer b.Close()

	due := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	f := schedule.Firing{Scene: "billing", Task: "invoice", Due: due, ID: "invoice@" + due.Format(time.RFC3339)}
	l, err := a.Claim(ctx, f, "host-a", 30*time.Second)
	fmt.Println("host-a claims:", err == nil)
	_, err = b.Claim(ctx, f, "host-b", 30*time.Second)
	fmt.Println("host-b refused, claimed by another:", errors.Is(err, schedule.ErrClaimed))
	// ... host-a runs the firing, renewing l every 10s ...
	fmt.Println("host-a completes:", a.Complete(ctx, l) == nil)
	_, err = b.Claim(ctx, f, "host-b", 30*time.Second)
	fmt.Println("host-b refused, done:", errors.Is(err, schedule.ErrDone))
	// Output:
	// host-a claims: true
	// host-b refused, claimed by another: true
	// host-a completes: true
	// host-b refused, done: true
}
