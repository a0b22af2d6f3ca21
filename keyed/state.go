package keyed

import (
	"encoding/gob"
	"fmt"
	"maps"
	"reflect"
	"time"
	"unsafe"
)

// State is a state descriptor: Value, List or Map. Declare the states a
// function uses with the States option; one descriptor may serve several
// operators, each holding its own state.
type State interface {
	// Name returns the state's name, unique within its operator.
	Name() string
	newTable() any // a *table[K] of the operator's key type
}

// StateOption configures a state descriptor.
type StateOption func(*stateConfig)

type stateConfig struct{ ttl int64 }

// TTL makes a key's entry of the state expire d (processing time) after
// it was last written: it reads as absent from then on and is evicted by
// the worker's timer heap, without a goroutine per key. It panics if d <= 0.
func TTL(d time.Duration) StateOption {
	if d <= 0 {
		panic("keyed: TTL must be positive")
	}
	return func(c *stateConfig) { c.ttl = int64(d) }
}

func stateOpts(name string, opts []StateOption) stateConfig {
	if name == "" {
		panic("keyed: empty state name")
	}
	var c stateConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Value is a single value of type V per key.
type Value[K comparable, V any] struct {
	name string
	cfg  stateConfig
}

// NewValue returns a value state named name.
func NewValue[K comparable, V any](name string, opts ...StateOption) *Value[K, V] {
	return &Value[K, V]{name: name, cfg: stateOpts(name, opts)}
}

// Name implements State.
func (s *Value[K, V]) Name() string { return s.name }

func (s *Value[K, V]) newTable() any {
	return newTable[K, V](s.name, "value", s.cfg, int64(unsafe.Sizeof(*new(V))), func(v V) int64 { return 0 })
}

// Get returns the current key's value, and false when it has none (or it
// expired).
func (s *Value[K, V]) Get(c Scope[K]) (V, bool) {
	return tableOf[K, V](c, s).get(c.scope())
}

// Set sets the current key's value. When the state is full (MaxKeys,
// MaxBytes) and the key has no entry, nothing is set and the row being
// processed fails with ErrStateFull once the function returns.
func (s *Value[K, V]) Set(c Scope[K], v V) { tableOf[K, V](c, s).set(c.scope(), v) }

// Clear removes the current key's value.
func (s *Value[K, V]) Clear(c Scope[K]) { tableOf[K, V](c, s).clear(c.scope()) }

// List is a list of values of type V per key.
type List[K comparable, V any] struct {
	name string
	cfg  stateConfig
}

// NewList returns a list state named name.
func NewList[K comparable, V any](name string, opts ...StateOption) *List[K, V] {
	return &List[K, V]{name: name, cfg: stateOpts(name, opts)}
}

// Name implements State.
func (s *List[K, V]) Name() string { return s.name }

func (s *List[K, V]) newTable() any {
	size := int64(unsafe.Sizeof(*new(V)))
	return newTable[K, []V](s.name, "list", s.cfg, int64(unsafe.Sizeof([]V(nil))), func(v []V) int64 { return int64(len(v)) * size })
}

// Get returns the current key's list (nil when empty). The slice is the
// state's own: it is valid until the state next changes.
func (s *List[K, V]) Get(c Scope[K]) []V {
	v, _ := tableOf[K, []V](c, s).get(c.scope())
	return v
}

// Add appends v to the current key's list (see Value.Set for a full
// state).
func (s *List[K, V]) Add(c Scope[K], v V) {
	t := tableOf[K, []V](c, s)
	l, _ := t.get(c.scope())
	t.set(c.scope(), append(l, v))
}

// Clear empties the current key's list.
func (s *List[K, V]) Clear(c Scope[K]) { tableOf[K, []V](c, s).clear(c.scope()) }

// Map is a map from MK to V per key.
type Map[K, MK comparable, V any] struct {
	name string
	cfg  stateConfig
}

// NewMap returns a map state named name.
func NewMap[K, MK comparable, V any](name string, opts ...StateOption) *Map[K, MK, V] {
	return &Map[K, MK, V]{name: name, cfg: stateOpts(name, opts)}
}

// Name implements State.
func (s *Map[K, MK, V]) Name() string { return s.name }

func (s *Map[K, MK, V]) newTable() any {
	size := int64(unsafe.Sizeof(*new(MK)) + unsafe.Sizeof(*new(V)))
	return newTable[K, map[MK]V](s.name, "map", s.cfg, int64(unsafe.Sizeof(map[MK]V(nil))), func(m map[MK]V) int64 { return int64(len(m)) * size })
}

// Get returns the current key's value under mk.
func (s *Map[K, MK, V]) Get(c Scope[K], mk MK) (V, bool) {
	m, _ := tableOf[K, map[MK]V](c, s).get(c.scope())
	v, ok := m[mk]
	return v, ok
}

// Put sets the current key's value under mk (see Value.Set for a full
// state).
func (s *Map[K, MK, V]) Put(c Scope[K], mk MK, v V) {
	t := tableOf[K, map[MK]V](c, s)
	m, ok := t.get(c.scope())
	if !ok || m == nil {
		m = map[MK]V{}
	}
	size := t.size(m)
	if _, had := m[mk]; !had && ok && (c.scope().maxB > 0 || c.scope().maxKeys > 0) {
		// Check the limit before changing the map in place.
		if sc := c.scope(); sc.maxB > 0 && sc.bytes+t.size(map[MK]V{mk: v}) > sc.maxB {
			sc.err = fmt.Errorf("%w: %d entries, %d bytes (state %s of %s)", ErrStateFull, sc.entries, sc.bytes, t.name, sc.name)
			return
		}
	}
	m[mk] = v
	t.put(c.scope(), m, size)
}

// Delete removes the current key's value under mk.
func (s *Map[K, MK, V]) Delete(c Scope[K], mk MK) {
	t := tableOf[K, map[MK]V](c, s)
	if m, ok := t.get(c.scope()); ok {
		size := t.size(m)
		delete(m, mk)
		t.put(c.scope(), m, size)
	}
}

// All returns a copy of the current key's map.
func (s *Map[K, MK, V]) All(c Scope[K]) map[MK]V {
	m, _ := tableOf[K, map[MK]V](c, s).get(c.scope())
	return maps.Clone(m)
}

// Clear removes the current key's map.
func (s *Map[K, MK, V]) Clear(c Scope[K]) { tableOf[K, map[MK]V](c, s).clear(c.scope()) }

// Scope is what state is read and written through: the Context of the
// row or timer being processed, which knows its key.
type Scope[K comparable] interface {
	scope() *scope[K]
}

// scope is a worker's state: its tables and the key being processed.
type scope[K comparable] struct {
	name    string
	tables  []tabler[K]
	byState map[State]int
	key     K
	now     int64
	err     error // ErrStateFull during the current call
	entries int64
	bytes   int64
	expired int64
	maxKeys int64
	maxB    int64
}

func tableOf[K comparable, V any](c Scope[K], st State) *table[K, V] {
	sc := c.scope()
	i, ok := sc.byState[st]
	if !ok {
		panic(fmt.Sprintf("keyed: %s: state %q not declared with States", sc.name, st.Name()))
	}
	return sc.tables[i].(*table[K, V])
}

// tabler is what the worker needs of a table whatever its value type.
type tabler[K comparable] interface {
	stateName() string
	layout() string
	expire(sc *scope[K])
	next() (int64, bool)
	snapshot() any
	restore(dec *gob.Decoder, sc *scope[K]) error
	contents() any
}

// entry is one key's value with its expiry.
type entry[V any] struct {
	V      V
	Exp    int64 // 0: never
	queued bool  // has an item in the table's expiry heap
}

// table holds one state's entries of one worker, and the heap of their
// expiries.
type table[K comparable, V any] struct {
	name, kind string
	ttl        int64
	fixed      int64
	size       func(V) int64
	m          map[K]entry[V]
	heap       []expiry[K]
}

type expiry[K comparable] struct {
	at  int64
	key K
}

func newTable[K comparable, V any](name, kind string, cfg stateConfig, fixed int64, size func(V) int64) *table[K, V] {
	var k K
	return &table[K, V]{name: name, kind: kind, ttl: cfg.ttl, m: map[K]entry[V]{},
		fixed: fixed + int64(unsafe.Sizeof(k)) + int64(unsafe.Sizeof(entry[V]{})), size: size}
}

func (t *table[K, V]) stateName() string { return t.name }

// contents returns the table's entries, for comparing states in tests.
func (t *table[K, V]) contents() any { return t.m }

func (t *table[K, V]) layout() string {
	return fmt.Sprintf("%s:%s:%v:ttl=%v", t.name, t.kind, reflect.TypeFor[V](), time.Duration(t.ttl))
}

func (t *table[K, V]) get(sc *scope[K]) (V, bool) {
	e, ok := t.m[sc.key]
	if !ok || (e.Exp != 0 && e.Exp <= sc.now) {
		var zero V
		return zero, false
	}
	return e.V, true
}

func (t *table[K, V]) set(sc *scope[K], v V) { t.put(sc, v, -1) }

// put sets the current key's entry to v; size is the size the entry had
// before (-1: the size of the stored value; a map changed in place
// reports its size before the change).
func (t *table[K, V]) put(sc *scope[K], v V, size int64) {
	e, ok := t.m[sc.key]
	before := int64(0)
	if ok {
		if size < 0 {
			size = t.size(e.V)
		}
		before = t.fixed + size
	} else if (sc.maxKeys > 0 && sc.entries >= sc.maxKeys) || (sc.maxB > 0 && sc.bytes+t.fixed+t.size(v) > sc.maxB) {
		sc.err = fmt.Errorf("%w: %d entries, %d bytes (state %s of %s)", ErrStateFull, sc.entries, sc.bytes, t.name, sc.name)
		return
	} else {
		sc.entries++
	}
	e.V = v
	sc.bytes += t.fixed + t.size(v) - before
	if t.ttl > 0 {
		e.Exp = sc.now + t.ttl
		if !e.queued {
			e.queued = true
			t.push(expiry[K]{e.Exp, sc.key})
		}
	}
	t.m[sc.key] = e
}

func (t *table[K, V]) clear(sc *scope[K]) {
	if e, ok := t.m[sc.key]; ok {
		sc.entries--
		sc.bytes -= t.fixed + t.size(e.V)
		delete(t.m, sc.key) // a queued expiry finds nothing and is dropped
	}
}

// expire evicts the entries whose time to live ended by sc.now.
func (t *table[K, V]) expire(sc *scope[K]) {
	for len(t.heap) > 0 && t.heap[0].at <= sc.now {
		x := t.pop()
		e, ok := t.m[x.key]
		if !ok || !e.queued {
			continue
		}
		if e.Exp > sc.now { // written since: wait again
			t.push(expiry[K]{e.Exp, x.key})
			continue
		}
		sc.entries--
		sc.bytes -= t.fixed + t.size(e.V)
		sc.expired++
		delete(t.m, x.key)
	}
}

func (t *table[K, V]) next() (int64, bool) {
	if len(t.heap) == 0 {
		return 0, false
	}
	return t.heap[0].at, true
}

func (t *table[K, V]) push(x expiry[K]) {
	t.heap = append(t.heap, x)
	h := t.heap
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if h[p].at <= h[i].at {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (t *table[K, V]) pop() expiry[K] {
	h := t.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && h[l].at < h[m].at {
			m = l
		}
		if r < len(h) && h[r].at < h[m].at {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	t.heap = h
	return top
}

// snapEntry is one key's entry in a snapshot.
type snapEntry[K comparable, V any] struct {
	Key K
	V   V
	Exp int64
}

// snapshot copies the entries (lists and maps cloned through gob later:
// the copy is encoded by the writer, so it must not share what later
// writes change).
func (t *table[K, V]) snapshot() any {
	out := make([]snapEntry[K, V], 0, len(t.m))
	for k, e := range t.m {
		out = append(out, snapEntry[K, V]{k, cloneValue(e.V), e.Exp})
	}
	return out
}

// cloneValue copies the lists and maps that state values are, so that a
// snapshot does not change with later writes.
func cloneValue[V any](v V) V {
	switch x := any(v).(type) {
	case interface{ Clone() V }:
		return x.Clone()
	}
	rv := reflect.ValueOf(&v).Elem()
	switch rv.Kind() {
	case reflect.Slice:
		if !rv.IsNil() {
			c := reflect.MakeSlice(rv.Type(), rv.Len(), rv.Len())
			reflect.Copy(c, rv)
			rv.Set(c)
		}
	case reflect.Map:
		if !rv.IsNil() {
			c := reflect.MakeMapWithSize(rv.Type(), rv.Len())
			it := rv.MapRange()
			for it.Next() {
				c.SetMapIndex(it.Key(), it.Value())
			}
			rv.Set(c)
		}
	}
	return v
}

func (t *table[K, V]) restore(dec *gob.Decoder, sc *scope[K]) error {
	var in []snapEntry[K, V]
	if err := dec.Decode(&in); err != nil {
		return err
	}
	for _, e := range in {
		ent := entry[V]{V: e.V, Exp: e.Exp}
		if e.Exp != 0 {
			ent.queued = true
			t.push(expiry[K]{e.Exp, e.Key})
		}
		t.m[e.Key] = ent
		sc.entries++
		sc.bytes += t.fixed + t.size(e.V)
	}
	return nil
}
