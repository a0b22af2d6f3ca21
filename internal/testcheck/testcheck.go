// Package testcheck holds checks that tests of several packages and
// modules of this repository share.
package testcheck

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// engine are the import paths a package that must stay free of the engine
// (package connectors, the connector modules) must not depend on: the
// engine and what runs on it, and the goroutine pool it uses.
var engine = []string{
	"github.com/panjf2000/ants",
	"github.com/kisflow/kisflow/internal/engine",
	"github.com/kisflow/kisflow/internal/bridge",
	"github.com/kisflow/kisflow/backpressure",
	"github.com/kisflow/kisflow/connectors/stream",
	"github.com/kisflow/kisflow/fanout",
	"github.com/kisflow/kisflow/flow",
	"github.com/kisflow/kisflow/pipeline",
	"github.com/kisflow/kisflow/row",
	"github.com/kisflow/kisflow/stage",
}

// NoEngine lists the dependencies of the package in the current directory
// (not of its tests), which must be pkg, with the go command, and fails t
// on any engine package among them.
func NoEngine(t *testing.T, pkg string) {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(gocmd, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps .: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != pkg {
		t.Fatalf("go list -deps . did not list %s last:\n%s", pkg, out)
	}
	for _, dep := range deps {
		for _, bad := range engine {
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("%s depends on %s; it must stay free of the engine", pkg, dep)
			}
		}
	}
}

// READMEShows fails t unless README.md, at readme, shows the file at path
// verbatim in the Go code block after the line "<!-- name -->".
func READMEShows(t *testing.T, readme, name, path string) {
	t.Helper()
	doc, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	marker := "<!-- " + name + " -->\n```go\n"
	_, after, ok := strings.Cut(string(doc), marker)
	if !ok {
		t.Fatalf("%s has no %q block", readme, marker)
	}
	block, _, ok := strings.Cut(after, "\n```\n")
	if !ok {
		t.Fatalf("%s: unterminated code block after %q", readme, marker)
	}
	if block != strings.TrimRight(string(src), "\n") {
		t.Errorf("%s's copy of %s differs from the file: copy the file into it", readme, name)
	}
}
