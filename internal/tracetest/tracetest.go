// Package tracetest is a recording pipeline.Tracer for the tests of the
// root module: it keeps every span it starts, with its parent, links and
// how it ended, and propagates span ids in a "trace" header.
package tracetest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
)

// Span is one recorded span.
type Span struct {
	ID     int
	Input  bool   // an input's span; otherwise a stage's batch span
	Flow   string // the flow
	Name   string // the source or stage
	Rows   int
	Parent int   // the id of the span in the ctx it started with, 0 if none
	Links  []int // the ids of the input spans a batch span links to
	// Set when it ended.
	Ended  int // how many times its end function was called
	Failed int
	Err    error
}

// Tracer records spans. The zero value is ready to use.
type Tracer struct {
	mu    sync.Mutex
	spans []*Span
}

type spanKey struct{}

// With returns ctx carrying span id, as a caller's own span.
func With(ctx context.Context, id int) context.Context {
	return context.WithValue(ctx, spanKey{}, id)
}

// IDOf returns the id of the span ctx carries, 0 if none.
func IDOf(ctx context.Context) int {
	id, _ := ctx.Value(spanKey{}).(int)
	return id
}

func (t *Tracer) start(ctx context.Context, input bool, flow, name string, rows int, links []any) *Span {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := &Span{ID: 1000 + len(t.spans), Input: input, Flow: flow, Name: name, Rows: rows, Parent: IDOf(ctx)}
	for _, l := range links {
		s.Links = append(s.Links, l.(*Span).ID)
	}
	t.spans = append(t.spans, s)
	return s
}

func (t *Tracer) end(s *Span, failed int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.Ended++
	s.Failed, s.Err = failed, err
}

// StartInput implements pipeline.Tracer.
func (t *Tracer) StartInput(ctx context.Context, flow, source string, rows int) (any, func(error)) {
	s := t.start(ctx, true, flow, source, rows, nil)
	return s, func(err error) { t.end(s, 0, err) }
}

// StartBatch implements pipeline.Tracer.
func (t *Tracer) StartBatch(ctx context.Context, flow, stage string, rows int, links []any) (context.Context, func(int, error)) {
	s := t.start(ctx, false, flow, stage, rows, links)
	return With(ctx, s.ID), func(failed int, err error) { t.end(s, failed, err) }
}

// Inject implements pipeline.Tracer: the id of ctx's span goes in the
// "trace" header.
func (t *Tracer) Inject(ctx context.Context, headers map[string]string) {
	if id := IDOf(ctx); id != 0 {
		headers["trace"] = strconv.Itoa(id)
	}
}

// Extract implements pipeline.Tracer.
func (t *Tracer) Extract(ctx context.Context, headers map[string]string) context.Context {
	if id, err := strconv.Atoi(headers["trace"]); err == nil {
		return With(ctx, id)
	}
	return ctx
}

// Spans returns copies of the spans recorded so far.
func (t *Tracer) Spans() []Span {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Span, len(t.spans))
	for i, s := range t.spans {
		out[i] = *s
		out[i].Links = slices.Clone(s.Links)
	}
	return out
}

// Named returns the spans of the source or stage named name.
func (t *Tracer) Named(name string) []Span {
	var out []Span
	for _, s := range t.Spans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// Unended returns a description of every span not ended exactly once.
func (t *Tracer) Unended() []string {
	var bad []string
	for _, s := range t.Spans() {
		if s.Ended != 1 {
			bad = append(bad, fmt.Sprintf("span %d (%s) ended %d times", s.ID, s.Name, s.Ended))
		}
	}
	return bad
}
