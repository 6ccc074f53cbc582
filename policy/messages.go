package policy

import (
	"strconv"
	"strings"
)

// subject names the container in a violation detail: `container "web"`.
func subject(w *Workload) string {
	name := w.Container.Name
	if name == "" {
		name = w.Container.ID
	}
	if name == "" {
		return "the container"
	}
	return "container " + strconv.Quote(name)
}

// quoteList quotes and joins already sorted items: "a", "b".
func quoteList(items []string) string {
	var b strings.Builder
	for i, s := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(s))
	}
	return b.String()
}
