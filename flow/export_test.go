package flow

import "github.com/kisflow/kisflow/pipeline"

// OnRunStart makes reg call fn with the pipeline of every run of its flows
// once the pipeline started, before any row enters it. Set it before any
// flow of reg runs.
func OnRunStart(reg *Registry, fn func(f *Flow, p *pipeline.Pipeline)) { reg.onRunStart = fn }

// OnSwap makes reg call fn each time a swap's new generation took over a
// flow of reg, before the old one is stopped.
func OnSwap(reg *Registry, fn func(f *Flow)) { reg.onSwap = fn }

// ParallelRows is the fewest rows CommitRowBatch decodes on a goroutine of
// its own.
const ParallelRows = parallelRows
