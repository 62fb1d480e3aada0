package sdk

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ChildStatus is where a child of the running task stands (Children,
// AwaitChildren).
type ChildStatus struct {
	Key    string
	TaskID string
	// The full task name in the run: "<parent name>/<key>".
	Name string
	// The child's TaskState by name, e.g. "TASK_STATE_SUCCEEDED".
	State   string
	Attempt int
	// The child and every task it spawned have ended: nothing about it changes any more.
	Settled bool
	// A task the child spawned (at any depth) did not succeed.
	SubtreeFailed bool
	// The child's result and its content type, once it succeeded.
	Output            []byte
	OutputContentType string
	// Why it ended as it did (the error of a failed child).
	Detail string
}

// StateSucceeded is the State of a child that succeeded.
const StateSucceeded = "TASK_STATE_SUCCEEDED"

// Succeeded says whether the child succeeded and so did every task it
// spawned (as far as they have ended: see Settled).
func (s ChildStatus) Succeeded() bool {
	return s.State == StateSucceeded && !s.SubtreeFailed
}

// Children returns where this task's children stand, in spawn order: those
// of keys, or every child without keys. It does not wait: see AwaitChildren.
// A sidecar without a hub answers a *ConnectError with code "unimplemented".
func (c *Context) Children(keys ...string) ([]ChildStatus, error) {
	var response childrenResponse
	request := childrenRequest{WorkerID: c.run.workerID, identity: c.id, Keys: keys}
	if err := c.run.client.call(c, "Children", request, &response); err != nil {
		var connectErr *ConnectError
		if errors.As(err, &connectErr) && connectErr.Code == "unimplemented" {
			return nil, fmt.Errorf("taskframe: awaiting children is not available from this sidecar: %w", connectErr)
		}
		return nil, err
	}
	children := make([]ChildStatus, len(response.Children))
	for i, child := range response.Children {
		children[i] = ChildStatus{
			Key:               child.Key,
			TaskID:            child.TaskID,
			Name:              child.Name,
			State:             child.State.name(),
			Attempt:           int(child.Attempt),
			Settled:           child.Settled,
			SubtreeFailed:     child.SubtreeFailed,
			Output:            child.Output,
			OutputContentType: child.OutputContentType,
			Detail:            child.Detail,
		}
	}
	return children, nil
}

// AwaitOptions are the options of AwaitChildren.
type AwaitOptions struct {
	// Only these children; empty: every child of the task.
	Keys []string
	// Return the children even when some did not succeed, instead of a *ChildFailedError.
	IgnoreFailures bool
}

// Polling interval of AwaitChildren: it starts at awaitFirstPoll and doubles up to awaitMaxPoll.
const (
	awaitFirstPoll = 20 * time.Millisecond
	awaitMaxPoll   = time.Second
)

// AwaitChildren waits until every child (of opts.Keys, or every child) and
// everything it spawned has ended, then returns them in spawn order. If one
// did not succeed (its State is not TASK_STATE_SUCCEEDED, or SubtreeFailed),
// it returns them with a *ChildFailedError, a non-retryable error (retrying
// the parent would find the same children), unless opts.IgnoreFailures. When the
// context is cancelled it returns ctx.Err().
//
//	if _, err := ctx.Spawn(children); err != nil {
//		return nil, err
//	}
//	results, err := ctx.AwaitChildren(sdk.AwaitOptions{})
//	if err != nil {
//		return nil, err // the task fails, naming the children that did not succeed
//	}
func (c *Context) AwaitChildren(opts AwaitOptions) ([]ChildStatus, error) {
	wait := awaitFirstPoll
	for {
		children, err := c.Children(opts.Keys...)
		if err != nil {
			if ctxErr := c.Err(); ctxErr != nil {
				return nil, ctxErr
			}
			return nil, err
		}
		if allSettled(children) {
			if !opts.IgnoreFailures {
				var failed []ChildStatus
				for _, child := range children {
					if !child.Succeeded() {
						failed = append(failed, child)
					}
				}
				if len(failed) > 0 {
					return children, &ChildFailedError{Failed: failed}
				}
			}
			return children, nil
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-c.Done():
			timer.Stop()
			return nil, c.Err()
		}
		if wait *= 2; wait > awaitMaxPoll {
			wait = awaitMaxPoll
		}
	}
}

func allSettled(children []ChildStatus) bool {
	for _, child := range children {
		if !child.Settled {
			return false
		}
	}
	return true
}

// ChildFailedError is returned by AwaitChildren when a child (or a task it
// spawned) did not succeed. It is non-retryable: errors.As finds a
// *NonRetryableError in it, so a handler that returns it (wrapped or not)
// fails its task without further attempts. Its reported type is
// "ChildFailedError" and its message names each failed child, e.g.
// "a child did not succeed: parent/a TASK_STATE_FAILED (boom)".
type ChildFailedError struct {
	// The children that did not succeed, in spawn order.
	Failed []ChildStatus
}

func (e *ChildFailedError) Error() string {
	var b strings.Builder
	if len(e.Failed) == 1 {
		b.WriteString("a child did not succeed: ")
	} else {
		fmt.Fprintf(&b, "%d children did not succeed: ", len(e.Failed))
	}
	for i, child := range e.Failed {
		if i > 0 {
			b.WriteString("; ")
		}
		name := child.Name
		if name == "" {
			name = child.Key
		}
		b.WriteString(name)
		b.WriteByte(' ')
		b.WriteString(child.State)
		if child.State == StateSucceeded && child.SubtreeFailed {
			b.WriteString(", but a task it spawned did not")
		}
		if child.Detail != "" {
			b.WriteString(" (" + child.Detail + ")")
		}
	}
	return b.String()
}

// ErrorType reports the error as "ChildFailedError".
func (e *ChildFailedError) ErrorType() string { return "ChildFailedError" }

// As makes the error non-retryable: errors.As(err, &nonRetryable) with a
// **NonRetryableError target finds a NonRetryableError wrapping it.
func (e *ChildFailedError) As(target any) bool {
	if final, ok := target.(**NonRetryableError); ok {
		*final = &NonRetryableError{Err: e}
		return true
	}
	return false
}
