package pebble_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"sync"
)

// counts is a running count per key: the state of a counting stage,
// written as key length, key, count.
type counts struct {
	mu sync.Mutex
	m  map[string]int64
}

func newCounts() *counts { return &counts{m: map[string]int64{}} }

func (c *counts) add(k string) {
	c.mu.Lock()
	c.m[k]++
	c.mu.Unlock()
}

func (c *counts) get() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.m)
}

func (c *counts) SnapshotState(uint64) (func(io.Writer) error, error) {
	c.mu.Lock()
	frozen := maps.Clone(c.m)
	c.mu.Unlock()
	return func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<16)
		var buf []byte
		for k, v := range frozen {
			buf = binary.AppendUvarint(buf[:0], uint64(len(k)))
			buf = append(buf, k...)
			buf = binary.AppendVarint(buf, v)
			if _, err := bw.Write(buf); err != nil {
				return err
			}
		}
		return bw.Flush()
	}, nil
}

func (c *counts) RestoreState(r io.Reader) error {
	br := bufio.NewReader(r)
	m := map[string]int64{}
	for {
		n, err := binary.ReadUvarint(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		k := make([]byte, n)
		if _, err := io.ReadFull(br, k); err != nil {
			return fmt.Errorf("counts: key: %w", err)
		}
		v, err := binary.ReadVarint(br)
		if err != nil {
			return fmt.Errorf("counts: count: %w", err)
		}
		m[string(k)] = v
	}
	c.mu.Lock()
	c.m = m
	c.mu.Unlock()
	return nil
}

func (c *counts) Layout() string { return "counts/v1" }
