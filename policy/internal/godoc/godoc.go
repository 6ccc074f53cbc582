// Package godoc reads the doc comments of struct fields from Go source, for
// the policy schema's descriptions: a binary does not carry comments, so the
// schema generator and its test read them from policy/*.go.
package godoc

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
)

// FieldDocs returns the doc comment of every field of every struct type
// declared in the non-test Go files of dir, keyed "Type.Field", as one
// paragraph. A field with no comment is absent. Fields declared together
// (A, B int) share the comment.
func FieldDocs(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("godoc: %w", err)
	}
	fset := token.NewFileSet()
	out := map[string]string{}
	for _, e := range entries {
		file := e.Name()
		if e.IsDir() || !strings.HasSuffix(file, ".go") || strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, file), nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("godoc: %w", err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, field := range st.Fields.List {
					doc := field.Doc.Text()
					if doc == "" {
						doc = field.Comment.Text()
					}
					doc = strings.Join(strings.Fields(doc), " ")
					if doc == "" {
						continue
					}
					for _, name := range field.Names {
						out[ts.Name.Name+"."+name.Name] = doc
					}
				}
			}
		}
	}
	return out, nil
}
