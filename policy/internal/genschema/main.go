// Command genschema writes the JSON Schema of a policy file,
// docs/policy.schema.json, from the Go types in policy/ and their doc
// comments. Run it through `go generate ./policy`; a test in policy/ fails
// when the committed file differs from what it writes.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/policy/internal/godoc"
)

func main() {
	src := flag.String("src", ".", "the directory of package policy's source (for the field comments)")
	out := flag.String("o", "../docs/policy.schema.json", "the file to write")
	flag.Parse()
	if err := run(*src, *out); err != nil {
		fmt.Fprintln(os.Stderr, "genschema:", err)
		os.Exit(1)
	}
}

func run(src, out string) error {
	docs, err := godoc.FieldDocs(src)
	if err != nil {
		return err
	}
	b, err := policy.JSONSchema(docs)
	if err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}
