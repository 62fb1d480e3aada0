package sdk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"
	"time"
)

type valueError struct{ msg string }

func (e valueError) Error() string     { return e.msg }
func (e valueError) ErrorType() string { return "ValueError" }

type plainError struct{}

func (*plainError) Error() string { return "plain" }

func TestDescribeError(t *testing.T) {
	_, pathErr := os.Open("/nonexistent/taskframe")
	for _, tc := range []struct {
		name string
		err  error
		want handlerError
	}{
		{"errors.New", errors.New("boom"), handlerError{Type: "errorString", Message: "boom"}},
		{"a pointer type", pathErr, handlerError{Type: "PathError", Message: pathErr.Error()}},
		{"a value type with ErrorType", valueError{"bad value"}, handlerError{Type: "ValueError", Message: "bad value"}},
		{"ErrorType wrapped", fmt.Errorf("parsing: %w", valueError{"bad"}), handlerError{Type: "ValueError", Message: "parsing: bad"}},
		{"a custom pointer type", &plainError{}, handlerError{Type: "plainError", Message: "plain"}},
		{"NonRetryable", NonRetryable(errors.New("gone")), handlerError{Type: "NonRetryableError", Message: "gone", NonRetryable: true}},
		{"NonRetryableError literal", &NonRetryableError{}, handlerError{Type: "NonRetryableError", Message: "non-retryable error", NonRetryable: true}},
		{"NonRetryable wrapped", fmt.Errorf("step 2: %w", NonRetryable(errors.New("gone"))),
			handlerError{Type: "wrapError", Message: "step 2: gone", NonRetryable: true}},
		{"NonRetryable of a typed error", NonRetryable(valueError{"v"}), handlerError{Type: "ValueError", Message: "v", NonRetryable: true}},
		{"RetryAfter", RetryAfter(300*time.Millisecond, errors.New("busy")), handlerError{Type: "RetryAfterError", Message: "busy", RetryAfterMs: 300}},
		{"RetryAfter rounds up", RetryAfter(1500*time.Microsecond, nil), handlerError{Type: "RetryAfterError", Message: "retry after 1.5ms", RetryAfterMs: 2}},
		{"a panic", &PanicError{Value: "oops"}, handlerError{Type: "panic", Message: "oops"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeError(tc.err); *got != tc.want {
				t.Errorf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
	var pe *fs.PathError
	if !errors.As(NonRetryable(pathErr), &pe) {
		t.Error("NonRetryable hides the error it wraps")
	}
}
