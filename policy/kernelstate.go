package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// ErrInvalidKernelState: kernel state JSON that cannot be used.
var ErrInvalidKernelState = errors.New("invalid kernel state")

var unknownPartNames = []string{"all", "cves", "patches", "updates", "version"}

// ParseKernelState decodes kernel state JSON: a KernelState object, or the
// output of `patchgate check -o json`, whose "kernel" member is one. Unknown
// keys inside the state are an error; CVE IDs are upper-cased and sorted.
func ParseKernelState(data []byte) (*KernelState, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKernelState, err)
	}
	if top == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidKernelState)
	}
	if inner, ok := top["kernel"]; ok {
		if _, hasRelease := top["release"]; !hasRelease {
			data = inner
		}
	}
	var k KernelState
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKernelState, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidKernelState)
	}
	var errs []string
	if k.ObservedAt.IsZero() {
		errs = append(errs, "observedAt is missing")
	}
	for i, p := range k.Patches {
		if p.Name == "" {
			errs = append(errs, fmt.Sprintf("patches[%d]: name is empty", i))
		}
	}
	for i, c := range k.FixedCVEs {
		u := strings.ToUpper(strings.TrimSpace(c))
		if !cveRE.MatchString(u) {
			errs = append(errs, fmt.Sprintf("fixedCVEs[%d]: %q is not a CVE ID", i, c))
		}
		k.FixedCVEs[i] = u
	}
	sort.Strings(k.FixedCVEs)
	for i, u := range k.Unknown {
		if !contains(unknownPartNames, u.Part) {
			errs = append(errs, fmt.Sprintf("unknown[%d]: part %q is not one of %s", i, u.Part, strings.Join(unknownPartNames, ", ")))
		}
	}
	switch k.Distro {
	case "", "dpkg", "rpm":
	default:
		errs = append(errs, fmt.Sprintf("distro %q is not dpkg or rpm", k.Distro))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalidKernelState, strings.Join(errs, "; "))
	}
	return &k, nil
}
