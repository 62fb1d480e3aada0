// Package sdk is the Go SDK of Taskframe: a long-lived worker process that
// serves handler tasks for the sidecar on its host over the Runner protocol
// (docs/runner-protocol.md), with no process start per task.
//
//	func main() {
//		sdk.Handle("shout", func(ctx *sdk.Context, in []byte) ([]byte, error) {
//			ctx.Logf("shouting %d bytes", len(in))
//			return ctx.Text(strings.ToUpper(string(in))), nil
//		})
//		sdk.Run() // until SIGTERM: drains, then returns
//	}
//
// The worker connects to the unix socket in TASKFRAME_SOCKET (set by the
// sidecar for the workers it starts), or to TASKFRAME_RUNNER_URL. It uses
// the standard library only: Connect's JSON codec over HTTP/1.1.
//
// Errors: a handler's error fails the attempt and is retried by the task's
// retry policy, unless it is (or wraps) a NonRetryableError; a
// RetryAfterError sets the least delay before the next attempt. The
// reported type is ErrorType() when the error has it, else the error's Go
// type name; a panic is reported as a retryable error of type "panic".
package sdk
