package sdk

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// childrenOf answers Children with the children of the current round (the
// last round once the rounds run out), filtered by the request's keys, and
// records the requests.
type childrenOf struct {
	mu       sync.Mutex
	rounds   [][]string // per round: each child's JSON, with its key first
	requests []childrenRequest
	at       []time.Time
}

func (c *childrenOf) answer(request childrenRequest) (string, *ConnectError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	round := c.rounds[len(c.rounds)-1]
	if len(c.requests) < len(c.rounds) {
		round = c.rounds[len(c.requests)]
	}
	c.requests = append(c.requests, request)
	c.at = append(c.at, time.Now())
	var children []string
	for _, child := range round {
		key := strings.SplitN(child, ",", 2)[0]
		if len(request.Keys) == 0 || contains(request.Keys, strings.TrimPrefix(key, `{"key":`)) {
			children = append(children, child)
		}
	}
	return `{"children":[` + strings.Join(children, ",") + `]}`, nil
}

func (c *childrenOf) calls() []childrenRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]childrenRequest(nil), c.requests...)
}

func contains(keys []string, quoted string) bool {
	for _, key := range keys {
		if `"`+key+`"` == quoted {
			return true
		}
	}
	return false
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestAwaitChildrenSucceeds(t *testing.T) {
	f := newFakeSidecar(t)
	running := `{"key":"a","taskId":"t-a","name":"parent/a","state":"TASK_STATE_RUNNING","attempt":1}`
	pending := `{"key":"b","taskId":"t-b","name":"parent/b","state":"TASK_STATE_PENDING"}`
	answers := &childrenOf{rounds: [][]string{
		{running, pending},
		{running, `{"key":"b","taskId":"t-b","name":"parent/b","state":"TASK_STATE_SUCCEEDED","attempt":1,"settled":true}`},
		{
			`{"key":"a","taskId":"t-a","name":"parent/a","state":4,"attempt":2,"settled":true,"output":"` + b64(`"x"`) + `","outputContentType":"application/json"}`,
			`{"key":"b","taskId":"t-b","name":"parent/b","state":"TASK_STATE_SUCCEEDED","attempt":1,"settled":true,"output":"` + b64("y") + `","outputContentType":"text/plain; charset=utf-8"}`,
		},
	}}
	f.children = answers.answer
	var got []ChildStatus
	w, done := startWorker(t, f, Options{}, map[string]HandlerFunc{
		"parent": func(ctx *Context, in []byte) ([]byte, error) {
			children, err := ctx.AwaitChildren(AwaitOptions{})
			got = children
			return nil, err
		},
	})
	f.assign(task("p", "parent", ""))
	waitFor(t, "the parent's completion", func() bool { return f.completion("p") != nil })
	if c := f.completion("p"); c.Error != nil {
		t.Fatalf("parent: %+v", c.Error)
	}
	want := []ChildStatus{
		{Key: "a", TaskID: "t-a", Name: "parent/a", State: StateSucceeded, Attempt: 2, Settled: true,
			Output: []byte(`"x"`), OutputContentType: "application/json"},
		{Key: "b", TaskID: "t-b", Name: "parent/b", State: StateSucceeded, Attempt: 1, Settled: true,
			Output: []byte("y"), OutputContentType: "text/plain; charset=utf-8"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	requests := answers.calls()
	if len(requests) != 3 {
		t.Fatalf("%d Children calls, want 3 (until every child is settled)", len(requests))
	}
	for _, request := range requests {
		if request.WorkerID != "w-1" || request.TaskID != "p" || request.Attempt != 1 || request.LeaseEpoch != 4 || len(request.Keys) != 0 {
			t.Errorf("request %+v", request)
		}
	}
	// polled at 20 ms, then 40 ms
	if gap := answers.at[1].Sub(answers.at[0]); gap < 20*time.Millisecond {
		t.Errorf("first poll after %v", gap)
	}
	if gap := answers.at[2].Sub(answers.at[1]); gap < 40*time.Millisecond {
		t.Errorf("second poll after %v", gap)
	}
	finish(t, w, done)
}

func TestAwaitChildrenFailure(t *testing.T) {
	f := newFakeSidecar(t)
	answers := &childrenOf{rounds: [][]string{{
		`{"key":"a","taskId":"t-a","name":"parent/a","state":"TASK_STATE_FAILED","attempt":1,"settled":true,"detail":"child breaks"}`,
		`{"key":"b","taskId":"t-b","name":"parent/b","state":"TASK_STATE_SUCCEEDED","attempt":1,"settled":true}`,
		`{"key":"c","taskId":"t-c","name":"parent/c","state":"TASK_STATE_SUCCEEDED","attempt":1,"settled":true,"subtreeFailed":true}`,
	}}}
	f.children = answers.answer
	var ignored []ChildStatus
	w, done := startWorker(t, f, Options{}, map[string]HandlerFunc{
		"parent": func(ctx *Context, in []byte) ([]byte, error) {
			children, err := ctx.AwaitChildren(AwaitOptions{IgnoreFailures: true})
			if err != nil {
				t.Errorf("ignoring failures: %v", err)
			}
			ignored = children
			_, err = ctx.AwaitChildren(AwaitOptions{})
			var failed *ChildFailedError
			if !errors.As(err, &failed) || len(failed.Failed) != 2 || failed.Failed[0].Key != "a" || failed.Failed[1].Key != "c" {
				t.Errorf("await: %v", err)
			}
			return nil, fmt.Errorf("awaiting: %w", err)
		},
	})
	f.assign(task("p", "parent", ""))
	waitFor(t, "the parent's completion", func() bool { return f.completion("p") != nil })
	want := handlerError{
		Type: "ChildFailedError",
		Message: "awaiting: 2 children did not succeed: parent/a TASK_STATE_FAILED (child breaks); " +
			"parent/c TASK_STATE_SUCCEEDED, but a task it spawned did not",
		NonRetryable: true,
	}
	if c := f.completion("p"); c.Error == nil || *c.Error != want {
		t.Errorf("parent: %+v", c.Error)
	}
	if len(ignored) != 3 || ignored[0].Succeeded() || !ignored[1].Succeeded() || ignored[2].Succeeded() {
		t.Errorf("ignoring failures: %+v", ignored)
	}
	finish(t, w, done)
}

func TestChildFailedError(t *testing.T) {
	err := &ChildFailedError{Failed: []ChildStatus{{Key: "a", Name: "parent/a", State: "TASK_STATE_FAILED", Settled: true, Detail: "detail"}}}
	want := handlerError{Type: "ChildFailedError", Message: "a child did not succeed: parent/a TASK_STATE_FAILED (detail)", NonRetryable: true}
	if got := describeError(err); *got != want {
		t.Errorf("got %+v, want %+v", *got, want)
	}
	var final *NonRetryableError
	if !errors.As(err, &final) || final.Error() != err.Error() {
		t.Errorf("errors.As finds no NonRetryableError: %v", final)
	}
	var again *ChildFailedError
	if !errors.As(final, &again) || again != err {
		t.Error("the NonRetryableError hides the ChildFailedError")
	}
	if got := describeError(NonRetryable(err)); *got != want {
		t.Errorf("NonRetryable(err): got %+v, want %+v", *got, want)
	}
}

func TestChildrenByKeys(t *testing.T) {
	f := newFakeSidecar(t)
	answers := &childrenOf{rounds: [][]string{{
		`{"key":"a","taskId":"t-a","name":"parent/a","state":"TASK_STATE_RUNNING"}`,
		`{"key":"b","taskId":"t-b","name":"parent/b","state":"TASK_STATE_SUCCEEDED","settled":true}`,
		`{"key":"c","taskId":"t-c","name":"parent/c"}`,
	}}}
	f.children = answers.answer
	w, done := startWorker(t, f, Options{}, map[string]HandlerFunc{
		"parent": func(ctx *Context, in []byte) ([]byte, error) {
			all, err := ctx.Children()
			if err != nil || len(all) != 3 || all[0].State != "TASK_STATE_RUNNING" || all[2].State != "TASK_STATE_UNSPECIFIED" {
				t.Errorf("Children(): %+v %v", all, err)
			}
			some, err := ctx.Children("c", "a")
			if err != nil || len(some) != 2 || some[0].Key != "a" || some[1].Key != "c" {
				t.Errorf(`Children("c", "a"): %+v %v`, some, err)
			}
			// a is still running: only awaiting b returns at once
			awaited, err := ctx.AwaitChildren(AwaitOptions{Keys: []string{"b"}})
			if err != nil || len(awaited) != 1 || awaited[0].Key != "b" {
				t.Errorf("AwaitChildren(b): %+v %v", awaited, err)
			}
			return nil, nil
		},
	})
	f.assign(task("p", "parent", ""))
	waitFor(t, "the parent's completion", func() bool { return f.completion("p") != nil })
	if c := f.completion("p"); c.Error != nil {
		t.Errorf("parent: %+v", c.Error)
	}
	var keys []string
	for _, request := range answers.calls() {
		keys = append(keys, strings.Join(request.Keys, "+"))
	}
	if strings.Join(keys, ",") != ",c+a,b" {
		t.Errorf("keys of the requests: %q", keys)
	}
	finish(t, w, done)
}

func TestAwaitChildrenCancelled(t *testing.T) {
	f := newFakeSidecar(t)
	answers := &childrenOf{rounds: [][]string{{`{"key":"a","taskId":"t-a","name":"parent/a","state":"TASK_STATE_RUNNING"}`}}}
	f.children = answers.answer
	w, done := startWorker(t, f, Options{}, map[string]HandlerFunc{
		"parent": func(ctx *Context, in []byte) ([]byte, error) {
			_, err := ctx.AwaitChildren(AwaitOptions{})
			if !errors.Is(err, context.Canceled) || err != ctx.Err() {
				t.Errorf("await: %v", err)
			}
			return nil, errors.New(ctx.Reason())
		},
	})
	f.assign(task("p", "parent", ""))
	waitFor(t, "two polls", func() bool { return len(answers.calls()) >= 2 })
	start := time.Now()
	f.cancel(cancelAssignment{TaskID: "p", Attempt: 1, LeaseEpoch: 4, Reason: "run cancelled by alice"})
	waitFor(t, "the parent's completion", func() bool { return f.completion("p") != nil })
	if c := f.completion("p"); c.Error == nil || c.Error.Message != "run cancelled by alice" {
		t.Errorf("parent: %+v", c.Error)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("the await took %v to notice the cancel", elapsed)
	}
	finish(t, w, done)
}

func TestChildrenUnimplemented(t *testing.T) {
	f := newFakeSidecar(t)
	w, done := startWorker(t, f, Options{}, map[string]HandlerFunc{
		"parent": func(ctx *Context, in []byte) ([]byte, error) {
			_, err := ctx.AwaitChildren(AwaitOptions{})
			var connectErr *ConnectError
			if !errors.As(err, &connectErr) || connectErr.Code != "unimplemented" {
				t.Errorf("await: %v", err)
			}
			return nil, err
		},
	})
	f.assign(task("p", "parent", ""))
	waitFor(t, "the parent's completion", func() bool { return f.completion("p") != nil })
	if c := f.completion("p"); c.Error == nil || !strings.Contains(c.Error.Message, "awaiting children is not available") {
		t.Errorf("parent: %+v", c.Error)
	}
	finish(t, w, done)
}
