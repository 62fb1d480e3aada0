package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Content types of the output helpers.
const (
	ContentTypeBytes = "application/octet-stream"
	ContentTypeText  = "text/plain; charset=utf-8"
	ContentTypeJSON  = "application/json"
)

// Context is what a handler gets besides its input: the task's identity,
// its log, progress reports and spawning, and a context.Context that is
// cancelled when the task is cancelled (CancelAssignment), its lease is
// lost, its deadline passes, or the worker stops; Reason says which.
type Context struct {
	context.Context

	TaskID   string
	RunID    string
	TaskName string
	// The handler name the task asked for.
	Handler string
	// 1-based.
	Attempt int
	// The input's content type (e.g. application/json); empty if the task has no input.
	ContentType string
	// W3C trace context of the task, for the handler's spans.
	Traceparent string

	run    *run
	id     identity
	cancel context.CancelFunc

	mu            sync.Mutex
	reason        string
	outputType    string
	outputTypeSet bool
	done          atomic.Bool
}

// Log writes a line to the task's stdout log (`task logs NAME`). Text with
// newlines becomes several lines.
func (c *Context) Log(line string) { c.log(logStreamStdout, line) }

// Logf formats a line for the task's stdout log.
func (c *Context) Logf(format string, args ...any) {
	c.log(logStreamStdout, fmt.Sprintf(format, args...))
}

// LogStderr writes a line to the task's stderr log.
func (c *Context) LogStderr(line string) { c.log(logStreamStderr, line) }

// LogStderrf formats a line for the task's stderr log.
func (c *Context) LogStderrf(format string, args ...any) {
	c.log(logStreamStderr, fmt.Sprintf(format, args...))
}

func (c *Context) log(stream, text string) {
	if c.done.Load() {
		return // the task has been reported: the sidecar would drop the line
	}
	text = strings.TrimSuffix(text, "\n")
	at := int64JSON(time.Now().UnixMilli())
	if !strings.Contains(text, "\n") {
		c.run.reports.addLines(&logLine{identity: c.id, Stream: stream, Text: text, AtUnixMs: at})
		return
	}
	parts := strings.Split(text, "\n")
	lines := make([]*logLine, len(parts))
	for i, part := range parts {
		lines[i] = &logLine{identity: c.id, Stream: stream, Text: strings.TrimSuffix(part, "\r"), AtUnixMs: at}
	}
	c.run.reports.addLines(lines...)
}

// Heartbeat reports progress (0..1, or negative when unknown) and a
// message, shown in the task's log. Running tasks are heartbeated
// automatically: call it only to report progress. Cheap: reports are batched.
func (c *Context) Heartbeat(progress float64, message string) {
	if c.done.Load() {
		return
	}
	if progress < 0 {
		progress = -1
	} else if progress > 1 {
		progress = 1
	}
	c.run.reports.addProgress(taskProgress{identity: c.id, Progress: progress, Message: message})
}

// Reason says why the context was cancelled ("" while it is not): the
// sidecar's reason for a cancel, "the task's lease was lost", "deadline
// exceeded", or "the worker is stopping".
func (c *Context) Reason() string {
	c.mu.Lock()
	reason := c.reason
	c.mu.Unlock()
	if reason != "" {
		return reason
	}
	switch err := c.Context.Err(); {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline exceeded"
	default:
		return "cancelled"
	}
}

// stop cancels the handler's context, with a reason (the first one wins).
func (c *Context) stop(reason string) {
	c.mu.Lock()
	if c.reason == "" && c.Context.Err() == nil {
		c.reason = reason
	}
	c.mu.Unlock()
	c.cancel()
}

// SetContentType sets the output's content type. Without it, an output is
// application/octet-stream (and a nil output, nothing, has none).
func (c *Context) SetContentType(contentType string) {
	c.mu.Lock()
	c.outputType, c.outputTypeSet = contentType, true
	c.mu.Unlock()
}

// JSON encodes v as the output, with content type application/json:
//
//	return ctx.JSON(map[string]int{"words": n})
func (c *Context) JSON(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding the output as JSON: %w", err)
	}
	c.SetContentType(ContentTypeJSON)
	return data, nil
}

// Text makes s the output, with content type text/plain; charset=utf-8:
//
//	return ctx.Text("done"), nil
func (c *Context) Text(s string) []byte {
	c.SetContentType(ContentTypeText)
	return []byte(s)
}

func (c *Context) outputContentType(output []byte) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.outputTypeSet:
		return c.outputType
	case output == nil:
		return ""
	default:
		return ContentTypeBytes
	}
}

// Child is a task to add to the running task's run: a handler with its
// input, or an executable. Its name in the run is "<parent name>/<Key>".
type Child struct {
	// Unique among the parent's children: spawning a key again (a retried
	// parent) returns the existing child.
	Key string
	// A handler and its input (ContentType defaults to application/octet-stream for a non-empty input)...
	Handler     string
	Input       []byte
	ContentType string
	// ...or an executable (an absolute path or a name on PATH) with its arguments.
	Command string
	Args    []string
	// Keys of sibling children that must succeed first.
	Needs []string
	// Extra attempts after the first.
	Retries int
	// Limit of one attempt; 0: none.
	Timeout time.Duration
}

// JSONChild is a handler child whose input is v encoded as JSON.
func JSONChild(key, handler string, v any) (Child, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return Child{}, fmt.Errorf("encoding the input of child %q: %w", key, err)
	}
	return Child{Key: key, Handler: handler, Input: data, ContentType: ContentTypeJSON}, nil
}

// Spawned is a child added by Spawn.
type Spawned struct {
	Key    string `json:"key"`
	TaskID string `json:"taskId"`
	// The full task name in the run: "<parent name>/<key>".
	Name string `json:"name"`
	// True when the key had been spawned before (by an earlier attempt).
	Existing bool `json:"existing"`
}

// Spawn adds children to this task's run (idempotent per key). A sidecar
// without a hub to spawn on answers a *ConnectError with code "unimplemented".
func (c *Context) Spawn(children []Child) ([]Spawned, error) {
	if len(children) == 0 {
		return nil, nil
	}
	specs := make([]childSpec, 0, len(children))
	for _, child := range children {
		spec, err := child.spec()
		if err != nil {
			return nil, err
		}
		specs = append(specs, spec)
	}
	var response spawnResponse
	request := spawnRequest{WorkerID: c.run.workerID, identity: c.id, Children: specs}
	if err := c.run.client.call(c, "Spawn", request, &response); err != nil {
		var connectErr *ConnectError
		if errors.As(err, &connectErr) && connectErr.Code == "unimplemented" {
			return nil, fmt.Errorf("taskframe: spawning is not available from this sidecar: %w", connectErr)
		}
		return nil, err
	}
	return response.Children, nil
}

func (child Child) spec() (childSpec, error) {
	if child.Key == "" {
		return childSpec{}, errors.New("taskframe: a child needs a key")
	}
	spec := taskSpec{Name: child.Key, Needs: child.Needs}
	switch {
	case child.Handler != "" && child.Command != "":
		return childSpec{}, fmt.Errorf("taskframe: child %q has both a handler and a command", child.Key)
	case child.Handler != "":
		contentType := child.ContentType
		if contentType == "" && len(child.Input) > 0 {
			contentType = ContentTypeBytes
		}
		spec.Handler = &handlerTarget{Handler: child.Handler, Input: child.Input, ContentType: contentType}
	case child.Command != "":
		spec.Exec = &execTarget{Command: child.Command, Args: child.Args}
	default:
		return childSpec{}, fmt.Errorf("taskframe: child %q needs a handler or a command", child.Key)
	}
	if child.Retries > 0 {
		spec.Retry = &retryPolicy{Retries: uint32(child.Retries)}
	}
	if child.Timeout > 0 {
		spec.TimeoutMs = uint64JSON((child.Timeout + time.Millisecond - 1) / time.Millisecond)
	}
	return childSpec{Key: child.Key, Spec: spec}, nil
}

// valuesOnly keeps a context's values but not its cancellation: cancelling
// Run's context drains the worker, it does not stop the handlers.
type valuesOnly struct{ context.Context }

func (valuesOnly) Deadline() (time.Time, bool) { return time.Time{}, false }
func (valuesOnly) Done() <-chan struct{}       { return nil }
func (valuesOnly) Err() error                  { return nil }
