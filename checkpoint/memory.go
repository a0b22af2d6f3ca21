package checkpoint

import (
	"context"
	"fmt"
	"sync"
)

// Memory is a Store held in memory, for tests and for runs that need
// consistent acknowledgements but no recovery across processes. The zero
// value is an empty store ready to use.
type Memory struct {
	mu       sync.Mutex
	parts    map[uint64]map[string][]byte
	complete uint64
	meta     []byte
}

// Put stores a copy of data as part of checkpoint id.
func (m *Memory) Put(_ context.Context, id uint64, part string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.parts == nil {
		m.parts = map[uint64]map[string][]byte{}
	}
	if m.parts[id] == nil {
		m.parts[id] = map[string][]byte{}
	}
	m.parts[id][part] = append([]byte(nil), data...)
	return nil
}

// Complete marks checkpoint id complete and forgets older ones.
func (m *Memory) Complete(_ context.Context, id uint64, meta []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id <= m.complete {
		return fmt.Errorf("checkpoint: complete %d: checkpoint %d is already complete", id, m.complete)
	}
	m.complete, m.meta = id, append([]byte(nil), meta...)
	for k := range m.parts {
		if k < id {
			delete(m.parts, k)
		}
	}
	return nil
}

// Latest returns the newest complete checkpoint.
func (m *Memory) Latest(context.Context) (uint64, []byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.complete == 0 {
		return 0, nil, false, nil
	}
	return m.complete, append([]byte(nil), m.meta...), true, nil
}

// Get returns a part of checkpoint id.
func (m *Memory) Get(_ context.Context, id uint64, part string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.parts[id][part]
	if !ok {
		return nil, fmt.Errorf("checkpoint %d part %q: %w", id, part, ErrNotFound)
	}
	return append([]byte(nil), data...), nil
}
