// Package wire is the decision socket's framing (one strict JSON object per
// line), its peer check, and the bundle request the thin hook sends. It uses
// the standard library only: the thin hook (cmd/patchgate-hook), which the
// runtime starts for every container, links it without the policy engine,
// YAML, protobuf or logrus. Package decision builds the workload request on
// top of it.
package wire

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// DefaultSocket is the node service's decision socket.
const DefaultSocket = "/run/patchgate/decision.sock"

// MaxMessageBytes bounds one request or response line on the decision
// socket. A workload is a few KiB.
const MaxMessageBytes = 4 << 20

// ErrProtocol is wrapped by errors about malformed decision socket traffic.
var ErrProtocol = errors.New("decision socket protocol error")

// ErrUnreachable wraps every error that means the service could not be
// asked at all (no socket, refused, wrong owner); the caller then decides
// locally. Any other client error means the question may have reached the
// service.
var ErrUnreachable = errors.New("decision service unreachable")

// WriteMessage writes v as one JSON line.
func WriteMessage(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// ReadMessage reads one JSON line of at most MaxMessageBytes into v,
// refusing unknown keys and trailing data.
func ReadMessage(r *bufio.Reader, v any) error {
	line, err := ReadLine(r)
	if err != nil {
		return err
	}
	return Decode(line, v)
}

// Decode decodes one message strictly: unknown keys and trailing data are
// protocol errors.
func Decode(line []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data", ErrProtocol)
	}
	return nil
}

// ReadLine reads one newline-terminated message of at most
// MaxMessageBytes.
func ReadLine(r *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxMessageBytes {
			return nil, fmt.Errorf("%w: message longer than %d bytes", ErrProtocol, MaxMessageBytes)
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return buf, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return nil, fmt.Errorf("%w: message not terminated by a newline", ErrProtocol)
		default:
			return nil, err
		}
	}
}

// MessageVersion is the "v" of a message, read leniently so that the
// service can tell a workload request (version 1) from a bundle request
// (BundleVersion) before decoding it strictly as the one it is. Anything
// that is not a JSON object with a numeric "v" is a protocol error.
func MessageVersion(line []byte) (int, error) {
	var probe struct {
		V *int `json:"v"`
	}
	if err := json.Unmarshal(line, &probe); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	if probe.V == nil {
		return 0, fmt.Errorf("%w: message has no version \"v\"", ErrProtocol)
	}
	return *probe.V, nil
}
