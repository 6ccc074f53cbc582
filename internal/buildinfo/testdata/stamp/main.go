// Command stamp prints buildinfo.Get() for TestLinkerStamp.
package main

import (
	"fmt"

	"github.com/patchgate/patchgate/internal/buildinfo"
)

func main() {
	i := buildinfo.Get()
	fmt.Println(i.Version, i.Commit, i.Date)
}
