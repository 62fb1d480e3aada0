package sdk

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// NonRetryableError fails a task for good: no further attempts, whatever
// its retry policy. Return one with NonRetryable(err), or directly:
//
//	return nil, &sdk.NonRetryableError{Err: err}
type NonRetryableError struct {
	Err error
}

// NonRetryable marks err as final: the task fails without further attempts.
// It may be wrapped further (errors.As finds it).
func NonRetryable(err error) error {
	return &NonRetryableError{Err: err}
}

func (e *NonRetryableError) Error() string {
	if e.Err == nil {
		return "non-retryable error"
	}
	return e.Err.Error()
}

func (e *NonRetryableError) Unwrap() error { return e.Err }

// RetryAfterError fails this attempt and has the next one wait at least
// Delay (instead of the retry policy's interval), if retries remain.
type RetryAfterError struct {
	Delay time.Duration
	Err   error
}

// RetryAfter fails this attempt with err and asks for the next attempt to
// start no sooner than d from now.
func RetryAfter(d time.Duration, err error) error {
	return &RetryAfterError{Delay: d, Err: err}
}

func (e *RetryAfterError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("retry after %v", e.Delay)
	}
	return e.Err.Error()
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// ErrorTyper lets an error choose the type name reported for it (the
// "type" of the task's failure, e.g. "ValueError"), instead of its Go type's name.
type ErrorTyper interface {
	ErrorType() string
}

// PanicError is what a handler's panic becomes: a retryable error of type "panic".
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	if err, ok := e.Value.(error); ok {
		return err.Error()
	}
	return fmt.Sprint(e.Value)
}

// ErrorType reports panics as "panic".
func (e *PanicError) ErrorType() string { return "panic" }

// Unwrap returns the panic's value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// describeError maps a handler's error onto the protocol's HandlerError
// (the same mapping in every SDK):
//   - a NonRetryableError anywhere in the chain (errors.As; a
//     ChildFailedError counts as one): nonRetryable
//   - a RetryAfterError anywhere in the chain: retryAfterMs
//   - type: ErrorType() of the first error in the chain that has one, else
//     the name of err's dynamic type, without package path or pointer star
//     (*fs.PathError: "PathError"; errors.New: "errorString")
//   - message: err.Error()
func describeError(err error) *handlerError {
	described := &handlerError{Type: errorTypeName(err), Message: err.Error()}
	var final *NonRetryableError
	if errors.As(err, &final) {
		described.NonRetryable = true
	}
	var later *RetryAfterError
	if errors.As(err, &later) && later.Delay > 0 {
		ms := (later.Delay + time.Millisecond - 1) / time.Millisecond
		described.RetryAfterMs = uint64JSON(ms)
	}
	return described
}

func errorTypeName(err error) string {
	var typer ErrorTyper
	if errors.As(err, &typer) {
		if name := typer.ErrorType(); name != "" {
			return name
		}
	}
	t := reflect.TypeOf(err)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := t.Name()
	if name == "" {
		// an unnamed type such as a pointer to an anonymous struct
		name = t.String()
		if i := strings.LastIndex(name, "."); i >= 0 {
			name = name[i+1:]
		}
	}
	if name == "" {
		return "error"
	}
	return name
}
