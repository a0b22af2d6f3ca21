package connectors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stub is a connector that does nothing, for registry tests.
type stub struct{ cfg Config }

func (*stub) Init(context.Context) error                                  { return nil }
func (*stub) Writer(context.Context, string) (Writer, error)              { return nil, ErrConfig }
func (*stub) Reader(context.Context, string, ReadOptions) (Reader, error) { return nil, ErrConfig }
func (*stub) Close(context.Context) error                                 { return nil }

func newStub(cfg Config) (Connector, error) { return &stub{cfg: cfg}, nil }

func TestRegistryZeroValue(t *testing.T) {
	var r Registry
	assert.Empty(t, r.Types())
	_, err := r.New(Config{Name: "orders", Type: "memory"})
	assert.ErrorIs(t, err, ErrUnknownType)

	require.NoError(t, r.Register("memory", newStub))
	c, err := r.New(Config{Name: "orders", Type: "memory"})
	require.NoError(t, err)
	require.NoError(t, c.Close(t.Context()))
}

func TestNewRegistryIsEmpty(t *testing.T) {
	assert.Empty(t, NewRegistry().Types(), "no type is built in: this package has no implementation")
	_, err := NewRegistry().New(Config{Name: "orders", Type: "memory"})
	assert.ErrorIs(t, err, ErrUnknownType)
}
func TestRegistryRegisterErrors(t *testing.T) {
	r := NewRegistry()
	r.MustRegister("memory", newStub)
	err := r.Register("memory", newStub)
	assert.ErrorContains(t, err, `"memory"`)
	assert.ErrorContains(t, err, "already registered")

	err = r.Register("nats", nil)
	assert.ErrorContains(t, err, `"nats"`)
	assert.ErrorContains(t, err, "nil factory")

	assert.Error(t, r.Register("", newStub))
	assert.Equal(t, []string{"memory"}, r.Types(), "failed registrations change nothing")
}

func TestRegistryMustRegisterPanics(t *testing.T) {
	r := NewRegistry()
	r.MustRegister("memory", newStub)
	assert.PanicsWithValue(t, `connectors: register connector type "nats": nil factory`, func() {
		r.MustRegister("nats", nil)
	})
	assert.Panics(t, func() { r.MustRegister("memory", newStub) })
	r.MustRegister("nats", newStub)
	assert.Equal(t, []string{"memory", "nats"}, r.Types())
}

func TestRegistryNewErrors(t *testing.T) {
	r := NewRegistry()
	_, err := r.New(Config{Name: "events", Type: "kafka"})
	require.ErrorIs(t, err, ErrUnknownType)
	assert.ErrorContains(t, err, `"events"`)
	assert.ErrorContains(t, err, `"kafka"`)

	cause := errors.New("no addrs")
	r.MustRegister("broken", func(cfg Config) (Connector, error) { return nil, cause })
	_, err = r.New(Config{Name: "events", Type: "broken"})
	require.ErrorIs(t, err, cause)
	assert.ErrorContains(t, err, `"events"`)

	r.MustRegister("empty", func(cfg Config) (Connector, error) { return nil, nil })
	_, err = r.New(Config{Name: "events", Type: "empty"})
	assert.ErrorContains(t, err, `"events"`)

	r.MustRegister("picky", func(cfg Config) (Connector, error) {
		return nil, fmt.Errorf("param capacity=%q: %w", cfg.Params["capacity"], ErrConfig)
	})
	_, err = r.New(Config{Name: "events", Type: "picky", Params: map[string]string{"capacity": "many"}})
	require.ErrorIs(t, err, ErrConfig)
	assert.ErrorContains(t, err, `"events"`)
	assert.ErrorContains(t, err, `"picky"`)
	assert.ErrorContains(t, err, "capacity")
}

func TestRegistryPassesConfig(t *testing.T) {
	var r Registry
	var got Config
	r.MustRegister("spy", func(cfg Config) (Connector, error) {
		got = cfg
		return newStub(cfg)
	})
	want := Config{Name: "events", Type: "spy", Addrs: "a:1,b:2", Key: "k", Params: map[string]string{"x": "y"}}
	c, err := r.New(want)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	require.NoError(t, c.Close(context.Background()))
}

func TestRegistryTypesSorted(t *testing.T) {
	var r Registry
	for _, typ := range []string{"redis", "memory", "nats", "amqp"} {
		r.MustRegister(typ, newStub)
	}
	assert.Equal(t, []string{"amqp", "memory", "nats", "redis"}, r.Types())
}

func TestRegistryConcurrentUse(t *testing.T) {
	var r Registry
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			typ := fmt.Sprintf("t%02d", i)
			assert.NoError(t, r.Register(typ, newStub))
			c, err := r.New(Config{Name: typ, Type: typ})
			if assert.NoError(t, err) {
				assert.NoError(t, c.Close(context.Background()))
			}
			r.Types()
		})
	}
	wg.Wait()
	assert.Len(t, r.Types(), 16)
}
