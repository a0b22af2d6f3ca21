package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/kisflow/kisflow/checkpoint"
)

// chunk is the most bytes of a part stored under one key.
const chunk = 1 << 20

// Store is a checkpoint.Store in a Pebble database. Create it with Open;
// it is safe for concurrent use.
type Store struct {
	db *pebble.DB
}

var _ checkpoint.Store = (*Store)(nil)

// Open opens (creating if needed) the store in directory dir. Close it
// when done.
func Open(dir string) (*Store, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quiet{}})
	if err != nil {
		return nil, fmt.Errorf("checkpoint/pebble: open %s: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

var latestKey = []byte("m/latest")

// partKey returns the key prefix of a part: "c" + id + part + 0.
func partKey(id uint64, part string) []byte {
	k := make([]byte, 0, 1+8+len(part)+1+4)
	k = append(k, 'c')
	k = binary.BigEndian.AppendUint64(k, id)
	k = append(k, part...)
	return append(k, 0)
}

// idKey returns the first key of checkpoint id.
func idKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{'c'}, id)
}

// Put stores one part of checkpoint id.
func (s *Store) Put(ctx context.Context, id uint64, part string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	prefix := partKey(id, part)
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(prefix, upper(prefix), nil); err != nil {
		return err
	}
	for i := uint32(0); ; i++ {
		n := min(chunk, len(data))
		if err := b.Set(binary.BigEndian.AppendUint32(prefix[:len(prefix):len(prefix)], i), data[:n], nil); err != nil {
			return err
		}
		data = data[n:]
		if len(data) == 0 {
			break
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("checkpoint/pebble: put checkpoint %d part %s: %w", id, part, err)
	}
	return nil
}

// Complete marks checkpoint id complete and deletes older checkpoints, in
// one synced batch.
func (s *Store) Complete(ctx context.Context, id uint64, meta []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	last, _, ok, err := s.Latest(ctx)
	if err != nil {
		return err
	}
	if ok && id <= last {
		return fmt.Errorf("checkpoint/pebble: complete %d: checkpoint %d is already complete", id, last)
	}
	b := s.db.NewBatch()
	defer b.Close()
	v := binary.BigEndian.AppendUint64(nil, id)
	if err := b.Set(latestKey, append(v, meta...), nil); err != nil {
		return err
	}
	if err := b.DeleteRange([]byte{'c'}, idKey(id), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("checkpoint/pebble: complete checkpoint %d: %w", id, err)
	}
	return nil
}

// Latest returns the newest complete checkpoint.
func (s *Store) Latest(context.Context) (uint64, []byte, bool, error) {
	v, closer, err := s.db.Get(latestKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("checkpoint/pebble: latest: %w", err)
	}
	defer closer.Close()
	if len(v) < 8 {
		return 0, nil, false, fmt.Errorf("checkpoint/pebble: latest: corrupt record of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), bytes.Clone(v[8:]), true, nil
}

// Get returns a part of checkpoint id.
func (s *Store) Get(ctx context.Context, id uint64, part string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prefix := partKey(id, part)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper(prefix)})
	if err != nil {
		return nil, err
	}
	var out []byte
	found := false
	for it.First(); it.Valid(); it.Next() {
		found = true
		out = append(out, it.Value()...)
	}
	err = errors.Join(it.Error(), it.Close())
	if err != nil {
		return nil, fmt.Errorf("checkpoint/pebble: get checkpoint %d part %s: %w", id, part, err)
	}
	if !found {
		return nil, fmt.Errorf("checkpoint %d part %q: %w", id, part, checkpoint.ErrNotFound)
	}
	return out, nil
}

// upper returns the first key after every key that starts with prefix
// (prefix ends with a 0 byte, which no part name holds).
func upper(prefix []byte) []byte {
	u := bytes.Clone(prefix)
	u[len(u)-1] = 1
	return u
}

// quiet is a Pebble logger that drops informational messages.
type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
