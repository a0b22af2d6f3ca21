package connectors

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Factory builds a connector from its configuration. It must not connect to
// anything: connecting is [Connector.Init]'s job. It returns an error for a
// configuration it cannot use, preferably wrapping [ErrConfig].
type Factory func(cfg Config) (Connector, error)

// Registry maps connector types ([Config.Type]) to the factories that build
// them. It is safe for concurrent use.
//
// The zero value is an empty registry, ready to use, as is the one
// [NewRegistry] returns. Nothing is registered by default: a program
// registers the types it uses, for instance the in-memory topic with
// memory.Register (package github.com/kisflow/kisflow/connectors/memory).
type Registry struct {
	mu        sync.RWMutex
	factories map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{}
}

// Register adds the factory for typ. It returns an error if typ is empty,
// f is nil or typ is already registered.
func (r *Registry) Register(typ string, f Factory) error {
	if typ == "" {
		return errors.New("connectors: register: empty connector type")
	}
	if f == nil {
		return fmt.Errorf("connectors: register connector type %q: nil factory", typ)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.factories[typ]; dup {
		return fmt.Errorf("connectors: register connector type %q: already registered", typ)
	}
	if r.factories == nil {
		r.factories = make(map[string]Factory)
	}
	r.factories[typ] = f
	return nil
}

// MustRegister is like [Registry.Register] but panics on error. It is meant
// for registrations made at program start, where an error is a programming
// mistake.
func (r *Registry) MustRegister(typ string, f Factory) {
	if err := r.Register(typ, f); err != nil {
		panic(err.Error())
	}
}

// New builds the connector described by cfg with the factory registered for
// cfg.Type. An unregistered type gives an error wrapping [ErrUnknownType];
// a factory's error is returned wrapped. Both name the connector. The
// connector is not initialised: call its Init.
func (r *Registry) New(cfg Config) (Connector, error) {
	r.mu.RLock()
	f := r.factories[cfg.Type]
	r.mu.RUnlock()
	if f == nil {
		return nil, fmt.Errorf("connectors: connector %q: type %q: %w", cfg.Name, cfg.Type, ErrUnknownType)
	}
	c, err := f(cfg)
	if err != nil {
		return nil, fmt.Errorf("connectors: connector %q (type %q): %w", cfg.Name, cfg.Type, err)
	}
	if c == nil {
		return nil, fmt.Errorf("connectors: connector %q (type %q): factory returned no connector", cfg.Name, cfg.Type)
	}
	return c, nil
}

// Types returns the registered types in ascending order.
func (r *Registry) Types() []string {
	r.mu.RLock()
	types := make([]string, 0, len(r.factories))
	for typ := range r.factories {
		types = append(types, typ)
	}
	r.mu.RUnlock()
	slices.Sort(types)
	return types
}
