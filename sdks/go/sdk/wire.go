package sdk

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// The Runner protocol's messages (proto/taskframe/v1/runner.proto) in the
// proto3 JSON mapping: lowerCamelCase names, bytes as base64, 64-bit
// integers as strings, enums by name, default values omitted.

// uint64JSON is a proto3 JSON uint64: written as a string, read from a string or a number.
type uint64JSON uint64

func (v uint64JSON) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatUint(uint64(v), 10) + `"`), nil
}

func (v *uint64JSON) UnmarshalJSON(data []byte) error {
	n, err := strconv.ParseUint(unquoteNumber(data), 10, 64)
	if err != nil {
		// a float such as 1e3 is valid JSON for an integer field
		f, ferr := strconv.ParseFloat(unquoteNumber(data), 64)
		if ferr != nil || f < 0 || f != float64(uint64(f)) {
			return fmt.Errorf("taskframe: not a uint64: %s", data)
		}
		n = uint64(f)
	}
	*v = uint64JSON(n)
	return nil
}

// int64JSON is a proto3 JSON int64: written as a string, read from a string or a number.
type int64JSON int64

func (v int64JSON) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(v), 10) + `"`), nil
}

func (v *int64JSON) UnmarshalJSON(data []byte) error {
	n, err := strconv.ParseInt(unquoteNumber(data), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(unquoteNumber(data), 64)
		if ferr != nil || f != float64(int64(f)) {
			return fmt.Errorf("taskframe: not an int64: %s", data)
		}
		n = int64(f)
	}
	*v = int64JSON(n)
	return nil
}

func unquoteNumber(data []byte) string {
	s := string(data)
	if s == "null" {
		return "0"
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

const (
	logStreamStdout = "LOG_STREAM_STDOUT"
	logStreamStderr = "LOG_STREAM_STDERR"
)

type registerRequest struct {
	Language       string            `json:"language,omitempty"`
	SDKVersion     string            `json:"sdkVersion,omitempty"`
	Handlers       []string          `json:"handlers,omitempty"`
	MaxConcurrency uint32            `json:"maxConcurrency,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	Name           string            `json:"name,omitempty"`
}

type registerResponse struct {
	WorkerID            string     `json:"workerId"`
	HeartbeatIntervalMs uint64JSON `json:"heartbeatIntervalMs"`
}

type workerRequest struct {
	WorkerID string `json:"workerId"`
}

type assignmentsResponse struct {
	Assignments []*assignment      `json:"assignments"`
	Cancels     []cancelAssignment `json:"cancels"`
}

type assignment struct {
	TaskID         string     `json:"taskId"`
	RunID          string     `json:"runId"`
	TaskName       string     `json:"taskName"`
	Attempt        uint32     `json:"attempt"`
	LeaseEpoch     uint64JSON `json:"leaseEpoch"`
	Handler        string     `json:"handler"`
	Input          []byte     `json:"input"`
	ContentType    string     `json:"contentType"`
	DeadlineUnixMs int64JSON  `json:"deadlineUnixMs"`
	Traceparent    string     `json:"traceparent"`
}

type cancelAssignment struct {
	TaskID     string     `json:"taskId"`
	Attempt    uint32     `json:"attempt"`
	LeaseEpoch uint64JSON `json:"leaseEpoch"`
	Reason     string     `json:"reason"`
}

// identity is the triple every report about an assignment carries.
type identity struct {
	TaskID     string     `json:"taskId"`
	Attempt    uint32     `json:"attempt,omitempty"`
	LeaseEpoch uint64JSON `json:"leaseEpoch,omitempty"`
}

type completeRequest struct {
	WorkerID    string        `json:"workerId"`
	Completions []*completion `json:"completions"`
}

// completion: exactly one of Output (possibly empty: it is still sent, to
// name the oneof's case) and Error is set.
type completion struct {
	identity
	Output            *[]byte       `json:"output,omitempty"`
	Error             *handlerError `json:"error,omitempty"`
	OutputContentType string        `json:"outputContentType,omitempty"`
}

type handlerError struct {
	Type         string     `json:"type,omitempty"`
	Message      string     `json:"message,omitempty"`
	NonRetryable bool       `json:"nonRetryable,omitempty"`
	RetryAfterMs uint64JSON `json:"retryAfterMs,omitempty"`
}

type completeResponse struct {
	Receipts []receipt `json:"receipts"`
}

type receipt struct {
	TaskID   string `json:"taskId"`
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason"`
}

type heartbeatRequest struct {
	WorkerID string         `json:"workerId"`
	Tasks    []taskProgress `json:"tasks"`
}

type taskProgress struct {
	identity
	// Always sent: 0 is a valid progress, and -1 means unknown.
	Progress float64 `json:"progress"`
	Message  string  `json:"message,omitempty"`
}

type heartbeatResponse struct {
	LostTaskIDs []string `json:"lostTaskIds"`
}

type logRequest struct {
	WorkerID string     `json:"workerId"`
	Lines    []*logLine `json:"lines"`
}

type logLine struct {
	identity
	Stream   string    `json:"stream"`
	Text     string    `json:"text"`
	AtUnixMs int64JSON `json:"atUnixMs"`
}

type spawnRequest struct {
	WorkerID string `json:"workerId"`
	identity
	Children []childSpec `json:"children"`
}

type childSpec struct {
	Key  string   `json:"key"`
	Spec taskSpec `json:"spec"`
}

type taskSpec struct {
	Name      string         `json:"name,omitempty"`
	Exec      *execTarget    `json:"exec,omitempty"`
	Handler   *handlerTarget `json:"handler,omitempty"`
	Retry     *retryPolicy   `json:"retry,omitempty"`
	TimeoutMs uint64JSON     `json:"timeoutMs,omitempty"`
	Needs     []string       `json:"needs,omitempty"`
	After     []string       `json:"after,omitempty"`
}

type execTarget struct {
	Command string            `json:"command"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
}

type handlerTarget struct {
	Handler     string `json:"handler"`
	Input       []byte `json:"input,omitempty"`
	ContentType string `json:"contentType,omitempty"`
}

type retryPolicy struct {
	Retries uint32 `json:"retries,omitempty"`
}

type spawnResponse struct {
	Children []Spawned `json:"children"`
}

type childrenRequest struct {
	WorkerID string `json:"workerId"`
	identity
	Keys []string `json:"keys,omitempty"`
}

type childrenResponse struct {
	Children []childStatusJSON `json:"children"`
}

type childStatusJSON struct {
	Key               string        `json:"key"`
	TaskID            string        `json:"taskId"`
	Name              string        `json:"name"`
	State             taskStateJSON `json:"state"`
	Settled           bool          `json:"settled"`
	SubtreeFailed     bool          `json:"subtreeFailed"`
	Output            []byte        `json:"output"`
	OutputContentType string        `json:"outputContentType"`
	Detail            string        `json:"detail"`
	Attempt           uint32        `json:"attempt"`
}

// taskStateNames are the names of TaskState (proto/taskframe/v1/state.proto), by number.
var taskStateNames = []string{
	"TASK_STATE_UNSPECIFIED",
	"TASK_STATE_CREATED",
	"TASK_STATE_PENDING",
	"TASK_STATE_RUNNING",
	"TASK_STATE_SUCCEEDED",
	"TASK_STATE_FAILED",
	"TASK_STATE_RETRYING",
	"TASK_STATE_CANCELLED",
	"TASK_STATE_TIMED_OUT",
	"TASK_STATE_SKIPPED",
	"TASK_STATE_CHECK_FAILED",
}

// taskStateJSON is a proto3 JSON TaskState, kept by name: read from its
// name or its number; omitted (the default) is TASK_STATE_UNSPECIFIED.
type taskStateJSON string

func (v *taskStateJSON) UnmarshalJSON(data []byte) error {
	s := string(data)
	switch {
	case s == "null":
		*v = ""
	case len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"':
		var name string
		if err := json.Unmarshal(data, &name); err != nil {
			return err
		}
		*v = taskStateJSON(name)
	default:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("taskframe: not a TaskState: %s", data)
		}
		if n >= 0 && n < len(taskStateNames) {
			*v = taskStateJSON(taskStateNames[n])
		} else {
			*v = taskStateJSON("TASK_STATE_" + s) // a state newer than this SDK
		}
	}
	return nil
}

func (v taskStateJSON) name() string {
	if v == "" {
		return taskStateNames[0]
	}
	return string(v)
}

// Envelope flags of the Connect streaming protocol.
const (
	flagCompressed = 0x01
	flagEndStream  = 0x02
)

// maxEnvelopeBytes bounds one message of the Assignments stream.
const maxEnvelopeBytes = 1 << 30

// appendEnvelope appends one envelope (flags, 4-byte big-endian length, data) to dst.
func appendEnvelope(dst []byte, flags byte, data []byte) []byte {
	var header [5]byte
	header[0] = flags
	binary.BigEndian.PutUint32(header[1:], uint32(len(data)))
	dst = append(dst, header[:]...)
	return append(dst, data...)
}

// readEnvelope reads the next envelope; io.EOF only at a clean boundary between envelopes.
func readEnvelope(r *bufio.Reader) (flags byte, data []byte, err error) {
	var header [5]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("taskframe: truncated envelope header: %w", err)
		}
		return 0, nil, err
	}
	size := binary.BigEndian.Uint32(header[1:])
	if size > maxEnvelopeBytes {
		return 0, nil, fmt.Errorf("taskframe: envelope of %d bytes is too large", size)
	}
	data = make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("taskframe: truncated envelope of %d bytes: %w", size, err)
	}
	return header[0], data, nil
}

// endStream is the JSON of a Connect end-of-stream envelope.
type endStream struct {
	Error *ConnectError `json:"error"`
}
