// The conformance adapter of the Go SDK (docs/conformance-adapter.md): a
// worker serving conformance.echo and conformance.script with the SDK's
// public API only, for `task conformance -- <this program>`.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"taskframe/sdk"
)

func main() {
	concurrency := 4
	if value := os.Getenv("TASKFRAME_CONFORMANCE_CONCURRENCY"); value != "" {
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "TASKFRAME_CONFORMANCE_CONCURRENCY: expected a positive number, got %q\n", value)
			os.Exit(2)
		}
		concurrency = n
	}
	w := sdk.NewWorker(sdk.Options{
		Concurrency: concurrency,
		Name:        os.Getenv("TASKFRAME_WORKER_NAME"),
		Labels:      map[string]string{"conformance": "go"},
	})
	w.Handle("conformance.echo", echo)
	w.Handle("conformance.script", script)
	if err := w.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// echo returns its input unchanged, with the input's content type.
func echo(ctx *sdk.Context, input []byte) ([]byte, error) {
	ctx.SetContentType(ctx.ContentType)
	return input, nil
}

type scriptInput struct {
	Attempts []behaviour `json:"attempts"`
}

type behaviour struct {
	Steps []map[string]json.RawMessage `json:"steps"`
}

// scriptError is a retryable error whose reported type is chosen by the script.
type scriptError struct {
	typ     string
	message string
}

func (e *scriptError) Error() string     { return e.message }
func (e *scriptError) ErrorType() string { return e.typ }

func cancelled(ctx *sdk.Context) error {
	return &scriptError{typ: "Cancelled", message: ctx.Reason()}
}

// script follows attempts[min(attempt, len) - 1]: its steps, in order.
func script(ctx *sdk.Context, input []byte) ([]byte, error) {
	var in scriptInput
	if err := json.Unmarshal(input, &in); err != nil {
		return nil, sdk.NonRetryable(fmt.Errorf("the script is not valid JSON: %w", err))
	}
	if len(in.Attempts) == 0 {
		return nil, nil
	}
	index := ctx.Attempt
	if index > len(in.Attempts) {
		index = len(in.Attempts)
	}
	if index < 1 {
		index = 1
	}
	var awaited []sdk.ChildStatus
	for _, step := range in.Attempts[index-1].Steps {
		output, end, err := runStep(ctx, step, &awaited)
		if err != nil || end {
			return output, err
		}
	}
	return nil, nil
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// runStep runs one step; end says that the handler ends with its output or error.
// awaited holds the children of the script's last await_children step.
func runStep(ctx *sdk.Context, step map[string]json.RawMessage, awaited *[]sdk.ChildStatus) (output []byte, end bool, err error) {
	field := func(name string, into any) error {
		raw, ok := step[name]
		if !ok {
			return nil
		}
		if err := json.Unmarshal(raw, into); err != nil {
			return sdk.NonRetryable(fmt.Errorf("step %q: %w", name, err))
		}
		return nil
	}
	has := func(name string) bool {
		_, ok := step[name]
		return ok
	}
	switch {
	case has("log"):
		var text, stream string
		if err := firstError(field("log", &text), field("stream", &stream)); err != nil {
			return nil, true, err
		}
		if stream == "stderr" {
			ctx.LogStderr(text)
		} else {
			ctx.Log(text)
		}
	case has("heartbeat"):
		var progress float64
		var message string
		if err := firstError(field("heartbeat", &progress), field("message", &message)); err != nil {
			return nil, true, err
		}
		ctx.Heartbeat(progress, message)
	case has("sleep_ms"):
		var ms float64
		if err := field("sleep_ms", &ms); err != nil {
			return nil, true, err
		}
		timer := time.NewTimer(time.Duration(ms * float64(time.Millisecond)))
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return nil, true, cancelled(ctx)
		}
	case has("wait_cancel"):
		<-ctx.Done()
		return nil, true, cancelled(ctx)
	case has("spawn"):
		var specs []struct {
			Key     string          `json:"key"`
			Handler string          `json:"handler"`
			Input   json.RawMessage `json:"input"`
			Needs   []string        `json:"needs"`
			Retries int             `json:"retries"`
		}
		if err := field("spawn", &specs); err != nil {
			return nil, true, err
		}
		children := make([]sdk.Child, 0, len(specs))
		for _, spec := range specs {
			child := sdk.Child{Key: spec.Key, Handler: spec.Handler, Needs: spec.Needs, Retries: spec.Retries}
			input := spec.Input
			if input == nil {
				input = json.RawMessage(`{}`)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, input); err != nil {
				return nil, true, sdk.NonRetryable(err)
			}
			child.Input, child.ContentType = compact.Bytes(), sdk.ContentTypeJSON
			children = append(children, child)
		}
		if _, err := ctx.Spawn(children); err != nil {
			return nil, true, err
		}
	case has("await_children"):
		var options struct {
			FailOnError *bool `json:"fail_on_error"`
		}
		// an object; anything else (true) asks for the defaults
		if raw := bytes.TrimSpace(step["await_children"]); len(raw) > 0 && raw[0] == '{' {
			if err := field("await_children", &options); err != nil {
				return nil, true, err
			}
		}
		failOnError := options.FailOnError == nil || *options.FailOnError
		children, err := ctx.AwaitChildren(sdk.AwaitOptions{IgnoreFailures: !failOnError})
		if err != nil {
			if ctx.Err() != nil {
				return nil, true, cancelled(ctx)
			}
			return nil, true, err
		}
		*awaited = children
	case has("return_children"):
		type result struct {
			Key    string `json:"key"`
			Output string `json:"output"`
		}
		results := make([]result, len(*awaited))
		for i, child := range *awaited {
			results[i] = result{Key: child.Key, Output: string(child.Output)}
		}
		output, err := ctx.JSON(results)
		return output, true, err
	case has("crash"):
		os.Exit(1)
	case has("return"):
		var compact bytes.Buffer
		if err := json.Compact(&compact, step["return"]); err != nil {
			return nil, true, sdk.NonRetryable(err)
		}
		output, err := ctx.JSON(json.RawMessage(compact.Bytes()))
		return output, true, err
	case has("return_text"):
		var text string
		if err := field("return_text", &text); err != nil {
			return nil, true, err
		}
		return ctx.Text(text), true, nil
	case has("fail"):
		var fail struct {
			Kind         string  `json:"kind"`
			Type         string  `json:"type"`
			Message      string  `json:"message"`
			RetryAfterMs float64 `json:"retry_after_ms"`
		}
		if err := field("fail", &fail); err != nil {
			return nil, true, err
		}
		switch fail.Kind {
		case "retryable":
			typ := fail.Type
			if typ == "" {
				typ = "Error"
			}
			return nil, true, &scriptError{typ: typ, message: fail.Message}
		case "non_retryable":
			return nil, true, sdk.NonRetryable(errors.New(fail.Message))
		case "retry_after":
			delay := time.Duration(fail.RetryAfterMs * float64(time.Millisecond))
			return nil, true, sdk.RetryAfter(delay, errors.New(fail.Message))
		default:
			return nil, true, sdk.NonRetryable(fmt.Errorf("unknown fail kind %q", fail.Kind))
		}
	default:
		keys := make([]string, 0, len(step))
		for key := range step {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		return nil, true, sdk.NonRetryable(fmt.Errorf("unknown step %s", strings.Join(keys, ", ")))
	}
	return nil, false, nil
}
