package pipeline

import (
	"context"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/internal/bridge"
	"github.com/kisflow/kisflow/internal/engine"
)

// KindKeyed is the node kind of keyed.Process and the window operators.
const KindKeyed NodeKind = "Keyed"

func init() {
	bridge.Keyed = func(s any, name string, goroutines int, deadLetter bool, out any, late bool,
		start func(ctx context.Context, env *engine.Env, in, out, late any) error,
		stats func() engine.StateStats, state engine.Snapshotter) (any, any) {
		return s.(keyedBuilder).keyed(name, goroutines, deadLetter, out, late, start, stats, state)
	}
}

type keyedBuilder interface {
	keyed(name string, goroutines int, deadLetter bool, out any, late bool,
		start func(ctx context.Context, env *engine.Env, in, out, late any) error,
		stats func() engine.StateStats, state engine.Snapshotter) (any, any)
}

// portMaker makes a new producer port of a stream's row type: a zero
// Stream[T] stands for T.
type portMaker interface {
	newPort(p *Pipeline, from string, dl bool) (any, func() any)
}

func (Stream[T]) newPort(p *Pipeline, from string, dl bool) (any, func() any) {
	s := newStream[T](p, from)
	s.port.dl = dl
	return s, func() any {
		if s.port.edge == nil {
			return nil
		}
		return s.port.edge
	}
}

func (s Stream[T]) keyed(name string, goroutines int, deadLetter bool, out any, late bool,
	start func(ctx context.Context, env *engine.Env, in, out, late any) error,
	stats func() engine.StateStats, state engine.Snapshotter) (any, any) {
	s.check(name)
	in := consume(s, name, backpressure.Buffer{})
	dl := s.port.deadLetter()
	outS, outEdge := out.(portMaker).newPort(s.p, name, dl)
	var lateS any
	lateEdge := func() any { return nil }
	if late {
		ls := newStream[T](s.p, name)
		ls.port.optional = true
		ls.port.dl = dl
		lateS = ls
		lateEdge = func() any {
			if ls.port.edge == nil {
				return nil
			}
			return ls.port.edge
		}
	}
	s.p.addNode(&node{
		dlBranch:   dl,
		name:       name,
		kind:       KindKeyed,
		workers:    max(1, goroutines-1),
		ordered:    false,
		goroutines: goroutines,
		deadLetter: deadLetter,
		stateStats: stats,
		cpState:    state,
		start: func(ctx context.Context, env *engine.Env) {
			if err := start(ctx, env, in, outEdge(), lateEdge()); err != nil {
				env.Go(func() error { return err })
			}
		},
	})
	return outS, lateS
}
