package main

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/internal/leaktest"
	"github.com/kisflow/kisflow/internal/testcheck"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// The README shows this program verbatim: it must stay the same as the
// tested file.
func TestREADMEShowsThisProgram(t *testing.T) {
	testcheck.READMEShows(t, "../../README.md", "examples/quickstart/main.go", "main.go")
}
