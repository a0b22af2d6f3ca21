package nats

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/schedule"
)

// Many executors race for many firings, first while they are free, then
// again once their leases expired: each time exactly one wins each firing,
// and the second winner's token is greater than the first's.
func TestClaimRaces(t *testing.T) {
	url := startServer(t).ClientURL()
	const claimers, firings = 6, 40
	cs := make([]*Coordinator, claimers)
	for i := range cs {
		cs[i] = connect(t, url, testConfig)
		defer func() { require.NoError(t, cs[i].Close()) }()
	}
	ctx := testCtx(t)
	f := func(k int) schedule.Firing { return firing("races", fmt.Sprintf("f%d", k)) }

	// race has every claimer go through the firings (half of them in
	// reverse order) until each firing is won; it returns the winning
	// leases of each firing.
	race := func(ttl time.Duration) map[int][]schedule.Lease {
		var (
			mu   sync.Mutex
			wins = map[int][]schedule.Lease{}
			wg   sync.WaitGroup
		)
		for i, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					pending := false
					for j := range firings {
						k := j
						if i%2 == 1 {
							k = firings - 1 - j
						}
						mu.Lock()
						won := len(wins[k]) > 0
						mu.Unlock()
						if won {
							continue
						}
						l, err := c.Claim(ctx, f(k), fmt.Sprintf("exec-%d", i), ttl)
						switch {
						case err == nil:
							mu.Lock()
							wins[k] = append(wins[k], l)
							mu.Unlock()
						case errors.Is(err, schedule.ErrClaimed):
							pending = true
						default:
							t.Errorf("Claim: %v", err)
							return
						}
					}
					if !pending || ctx.Err() != nil {
						return
					}
					time.Sleep(50 * time.Millisecond) // polling for the expiry
				}
			}()
		}
		wg.Wait()
		return wins
	}

	first := race(time.Second) // these leases are never renewed
	second := race(time.Minute)
	for k := range firings {
		require.Len(t, first[k], 1, "firing %d: first race won by %v", k, first[k])
		require.Len(t, second[k], 1, "firing %d: second race won by %v", k, second[k])
		require.Greater(t, second[k][0].Token, first[k][0].Token, "firing %d", k)
		c := cs[0]
		require.ErrorIs(t, c.Complete(ctx, first[k][0]), schedule.ErrLeaseLost, "firing %d: the expired lease completes", k)
		require.NoError(t, c.Complete(ctx, second[k][0]), "firing %d", k)
	}
}

func BenchmarkClaimComplete(b *testing.B) {
	url := startServer(b).ClientURL()
	c := connect(b, url, testConfig)
	defer c.Close()
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		l, err := c.Claim(ctx, firing("bench", fmt.Sprint(i)), "exec-a", time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Complete(ctx, l); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClaimRefused(b *testing.B) {
	url := startServer(b).ClientURL()
	c := connect(b, url, testConfig)
	defer c.Close()
	ctx := b.Context()
	f := firing("bench", "held")
	if _, err := c.Claim(ctx, f, "exec-a", time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Claim(ctx, f, "exec-b", time.Hour); !errors.Is(err, schedule.ErrClaimed) {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenew(b *testing.B) {
	url := startServer(b).ClientURL()
	c := connect(b, url, testConfig)
	defer c.Close()
	ctx := b.Context()
	l, err := c.Claim(ctx, firing("bench", "renewed"), "exec-a", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if l, err = c.Renew(ctx, l, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
