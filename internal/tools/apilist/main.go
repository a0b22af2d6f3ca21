// Command apilist prints the exported API of the packages of this
// repository, one declaration a line, the way Go's own api/ files list the
// standard library: the listing that api/*.txt holds and CI compares.
//
// Usage:
//
//	go run ./internal/tools/apilist [-count] dir...
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	count := flag.Bool("count", false, "print the number of exported names per package instead")
	flag.Parse()
	for _, dir := range flag.Args() {
		lines, err := list(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "apilist:", err)
			os.Exit(1)
		}
		if *count {
			fmt.Printf("%s %d\n", dir, len(lines))
			continue
		}
		for _, l := range lines {
			fmt.Println(l)
		}
	}
}

// list returns one line per exported name of the package in dir: top-level
// functions, types, variables and constants, and methods of exported types.
func list(dir string) ([]string, error) {
	fset := token.NewFileSet()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	path := "pkg " + filepath.ToSlash(filepath.Clean(dir))
	var lines []string
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		if f.Name.Name == "main" {
			continue
		}
		for _, d := range f.Decls {
			lines = append(lines, decl(fset, path, d)...)
		}
	}
	sort.Strings(lines)
	return lines, nil
}

func decl(fset *token.FileSet, path string, d ast.Decl) []string {
	var out []string
	switch d := d.(type) {
	case *ast.FuncDecl:
		if !d.Name.IsExported() {
			return nil
		}
		recv := ""
		if d.Recv != nil {
			t := receiverType(d.Recv.List[0].Type)
			if !ast.IsExported(t) {
				return nil
			}
			recv = "(" + node(fset, d.Recv.List[0].Type) + ") "
		}
		out = append(out, fmt.Sprintf("%s, method %s%s%s", path, recv, d.Name.Name, strings.TrimPrefix(node(fset, d.Type), "func")))
		if recv == "" {
			out[0] = fmt.Sprintf("%s, func %s%s", path, d.Name.Name, strings.TrimPrefix(node(fset, d.Type), "func"))
		}
	case *ast.GenDecl:
		for _, s := range d.Specs {
			switch s := s.(type) {
			case *ast.TypeSpec:
				if s.Name.IsExported() {
					eq := " "
					if s.Assign.IsValid() {
						eq = " = "
					}
					out = append(out, fmt.Sprintf("%s, type %s%s%s%s", path, s.Name.Name, typeParams(fset, s), eq, summary(fset, s.Type)))
				}
			case *ast.ValueSpec:
				for _, n := range s.Names {
					if n.IsExported() {
						kw := "var"
						if d.Tok == token.CONST {
							kw = "const"
						}
						typ := ""
						if s.Type != nil {
							typ = " " + node(fset, s.Type)
						}
						out = append(out, fmt.Sprintf("%s, %s %s%s", path, kw, n.Name, typ))
					}
				}
			}
		}
	}
	return out
}

func typeParams(fset *token.FileSet, s *ast.TypeSpec) string {
	if s.TypeParams == nil {
		return ""
	}
	var ps []string
	for _, f := range s.TypeParams.List {
		var names []string
		for _, n := range f.Names {
			names = append(names, n.Name)
		}
		ps = append(ps, strings.Join(names, ", ")+" "+node(fset, f.Type))
	}
	return "[" + strings.Join(ps, ", ") + "]"
}

// summary shows a struct's exported fields and an interface's methods; other
// types in full.
func summary(fset *token.FileSet, t ast.Expr) string {
	switch t := t.(type) {
	case *ast.StructType:
		var fields []string
		for _, f := range t.Fields.List {
			for _, n := range f.Names {
				if n.IsExported() {
					fields = append(fields, n.Name+" "+node(fset, f.Type))
				}
			}
			if len(f.Names) == 0 {
				fields = append(fields, "embedded "+node(fset, f.Type))
			}
		}
		return "struct { " + strings.Join(fields, "; ") + " }"
	case *ast.InterfaceType:
		var ms []string
		for _, m := range t.Methods.List {
			if len(m.Names) == 0 {
				ms = append(ms, node(fset, m.Type))
				continue
			}
			ms = append(ms, m.Names[0].Name+strings.TrimPrefix(node(fset, m.Type), "func"))
		}
		return "interface { " + strings.Join(ms, "; ") + " }"
	}
	return node(fset, t)
}

func receiverType(t ast.Expr) string {
	switch t := t.(type) {
	case *ast.StarExpr:
		return receiverType(t.X)
	case *ast.IndexExpr:
		return receiverType(t.X)
	case *ast.IndexListExpr:
		return receiverType(t.X)
	case *ast.Ident:
		return t.Name
	}
	return ""
}

func node(fset *token.FileSet, n any) string {
	var b bytes.Buffer
	_ = printer.Fprint(&b, fset, n)
	return strings.Join(strings.Fields(b.String()), " ")
}
