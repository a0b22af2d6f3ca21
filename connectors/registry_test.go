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

func TestRegistryZeroValue(t *testing.T) {
	var r Registry
	assert.Empty(t, r.Types())
	_, err := r.New(Config{Name: "orders", Type: MemoryType})
	assert.ErrorIs(t, err, ErrUnknownType)

	require.NoError(t, r.Register(MemoryType, newMemoryConnector))
	c, err := r.New(Config{Name: "orders", Type: MemoryType})
	require.NoError(t, err)
	require.NoError(t, c.Close(t.Context()))
}

func TestRegistryBuiltins(t *testing.T) {
	for name, r := range map[string]*Registry{"NewRegistry": NewRegistry(), "Default": Default} {
		assert.Equal(t, []string{MemoryType}, r.Types(), name)
		c, err := r.New(Config{Name: "orders", Type: "memory"})
		require.NoError(t, err, name)
		assert.IsType(t, &Memory{}, c, name)
		require.NoError(t, c.Close(t.Context()))
	}
}

func TestRegistryRegisterErrors(t *testing.T) {
	r := NewRegistry()
	err := r.Register(MemoryType, newMemoryConnector)
	assert.ErrorContains(t, err, `"memory"`)
	assert.ErrorContains(t, err, "already registered")

	err = r.Register("nats", nil)
	assert.ErrorContains(t, err, `"nats"`)
	assert.ErrorContains(t, err, "nil factory")

	assert.Error(t, r.Register("", newMemoryConnector))
	assert.Equal(t, []string{MemoryType}, r.Types(), "failed registrations change nothing")
}

func TestRegistryMustRegisterPanics(t *testing.T) {
	r := NewRegistry()
	assert.PanicsWithValue(t, `connectors: register connector type "nats": nil factory`, func() {
		r.MustRegister("nats", nil)
	})
	assert.Panics(t, func() { r.MustRegister(MemoryType, newMemoryConnector) })
	r.MustRegister("nats", newMemoryConnector)
	assert.Equal(t, []string{MemoryType, "nats"}, r.Types())
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

	_, err = r.New(Config{Name: "events", Type: MemoryType, Params: map[string]string{"capacity": "many"}})
	require.ErrorIs(t, err, ErrConfig)
	assert.ErrorContains(t, err, `"events"`)
	assert.ErrorContains(t, err, "capacity")
}

func TestRegistryPassesConfig(t *testing.T) {
	var r Registry
	var got Config
	r.MustRegister("spy", func(cfg Config) (Connector, error) {
		got = cfg
		return NewMemory(cfg), nil
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
		r.MustRegister(typ, newMemoryConnector)
	}
	assert.Equal(t, []string{"amqp", "memory", "nats", "redis"}, r.Types())
}

func TestRegistryConcurrentUse(t *testing.T) {
	var r Registry
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			typ := fmt.Sprintf("t%02d", i)
			assert.NoError(t, r.Register(typ, newMemoryConnector))
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
