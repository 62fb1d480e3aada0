package sdk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// startWorker runs w against f until the test ends; the returned channel gets Run's result.
func startWorker(t testing.TB, f *fakeSidecar, options Options, handlers map[string]HandlerFunc) (*Worker, <-chan error) {
	t.Helper()
	options.IgnoreSignals = true
	return startWorkerWith(t, f, options, handlers)
}

func startWorkerWith(t testing.TB, f *fakeSidecar, options Options, handlers map[string]HandlerFunc) (*Worker, <-chan error) {
	t.Helper()
	options.Socket, options.URL = f.socket, f.url
	options.Logf = func(format string, args ...any) { t.Logf(format, args...) }
	w := NewWorker(options)
	for name, fn := range handlers {
		w.Handle(name, fn)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	waitFor(t, "the Assignments stream", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.streams == 1
	})
	return w, done
}

func finish(t testing.TB, w *Worker, done <-chan error) {
	t.Helper()
	w.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not stop")
	}
}

func task(id, handler string, input string) *assignment {
	return &assignment{TaskID: id, RunID: "run-1", TaskName: "task-" + id, Attempt: 1, LeaseEpoch: 4,
		Handler: handler, Input: []byte(input), ContentType: "text/plain"}
}

func TestWorkerServesBatchesAndMapsResults(t *testing.T) {
	f := newFakeSidecar(t)
	var concurrent, most atomic.Int32
	w, done := startWorker(t, f, Options{Concurrency: 8, Name: "test-worker", Labels: map[string]string{"zone": "a"}},
		map[string]HandlerFunc{
			"echo": func(ctx *Context, in []byte) ([]byte, error) {
				n := concurrent.Add(1)
				defer concurrent.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				ctx.Logf("echo %s of %s attempt %d", in, ctx.TaskName, ctx.Attempt)
				time.Sleep(time.Millisecond)
				ctx.SetContentType(ctx.ContentType)
				return in, nil
			},
			"json": func(ctx *Context, in []byte) ([]byte, error) { return ctx.JSON(map[string]int{"n": len(in)}) },
			"text": func(ctx *Context, in []byte) ([]byte, error) { return ctx.Text("héllo"), nil },
			"nothing": func(ctx *Context, in []byte) ([]byte, error) {
				ctx.LogStderr("line one\nline two\n")
				return nil, nil
			},
			"bytes": func(ctx *Context, in []byte) ([]byte, error) { return []byte{0, 255}, nil },
			"final": func(ctx *Context, in []byte) ([]byte, error) { return nil, NonRetryable(errors.New("bad input")) },
			"later": func(ctx *Context, in []byte) ([]byte, error) {
				return nil, RetryAfter(2*time.Second, errors.New("busy"))
			},
			"typed":  func(ctx *Context, in []byte) ([]byte, error) { return nil, fmt.Errorf("wrapped: %w", valueError{"no"}) },
			"panics": func(ctx *Context, in []byte) ([]byte, error) { panic("oh no") },
		})
	registered := f.registered[0]
	if registered.Language != "go" || registered.SDKVersion != SDKVersion || registered.MaxConcurrency != 8 ||
		registered.Name != "test-worker" || registered.Labels["zone"] != "a" ||
		strings.Join(registered.Handlers, ",") != "bytes,echo,final,json,later,nothing,panics,text,typed" {
		t.Errorf("registered %+v", registered)
	}

	// many assignments per message: at most Concurrency run at once, completions come back batched
	var echoes []*assignment
	for i := 0; i < 8; i++ {
		echoes = append(echoes, task(fmt.Sprintf("e%d", i), "echo", fmt.Sprintf("payload %d", i)))
	}
	f.assign(echoes...)
	waitFor(t, "8 completions", func() bool { return f.completed() == 8 })
	if most.Load() > 8 {
		t.Errorf("%d handlers ran at once, with a concurrency of 8", most.Load())
	}
	f.assign(task("j", "json", "abc"), task("t", "text", ""), task("n", "nothing", ""), task("b", "bytes", ""),
		task("f", "final", ""), task("l", "later", ""), task("y", "typed", ""), task("p", "panics", ""))
	waitFor(t, "16 completions", func() bool { return f.completed() == 16 })

	for i := 0; i < 8; i++ {
		c := f.completion(fmt.Sprintf("e%d", i))
		if c.Output == nil || string(*c.Output) != fmt.Sprintf("payload %d", i) || c.OutputContentType != "text/plain" ||
			c.Attempt != 1 || c.LeaseEpoch != 4 || c.Error != nil {
			t.Errorf("echo %d: %+v", i, c)
		}
	}
	outputs := map[string][2]string{
		"j": {`{"n":3}`, ContentTypeJSON},
		"t": {"héllo", ContentTypeText},
		"n": {"", ""},
		"b": {"\x00\xff", ContentTypeBytes},
	}
	for id, want := range outputs {
		c := f.completion(id)
		if c.Output == nil || string(*c.Output) != want[0] || c.OutputContentType != want[1] {
			t.Errorf("%s: output %+v", id, c)
		}
	}
	errs := map[string]handlerError{
		"f": {Type: "NonRetryableError", Message: "bad input", NonRetryable: true},
		"l": {Type: "RetryAfterError", Message: "busy", RetryAfterMs: 2000},
		"y": {Type: "ValueError", Message: "wrapped: no"},
		"p": {Type: "panic", Message: "oh no"},
	}
	for id, want := range errs {
		c := f.completion(id)
		if c.Error == nil || *c.Error != want || c.Output != nil {
			t.Errorf("%s: got %+v, want error %+v", id, c, want)
		}
	}

	f.mu.Lock()
	// every task's lines arrive in a Log call before the Complete call that reports it
	logged := map[string]int{}
	for i, c := range f.calls {
		for _, id := range c.taskIDs {
			if c.method == "Log" {
				logged[id] = i
			} else if at, ok := logged[id]; (strings.HasPrefix(id, "e") || id == "n") && (!ok || at > i) {
				t.Errorf("task %s was completed in call %d before its log (%v)", id, i, ok)
			}
		}
	}
	completeCalls := 0
	for _, c := range f.calls {
		if c.method == "Complete" {
			completeCalls++
		}
	}
	if completeCalls > 8 {
		t.Errorf("16 completions took %d Complete calls: not batched", completeCalls)
	}
	var lines []string
	for _, line := range f.logLines {
		if line.TaskID == "n" || line.TaskID == "e3" {
			lines = append(lines, line.Stream+" "+line.Text)
		}
		if line.AtUnixMs == 0 || line.LeaseEpoch != 4 || line.Attempt != 1 {
			t.Errorf("log line %+v", line)
		}
	}
	panicLogged := false
	for _, line := range f.logLines {
		panicLogged = panicLogged || (line.TaskID == "p" && line.Stream == logStreamStderr && line.Text == "panic: oh no")
	}
	f.mu.Unlock()
	if want := "LOG_STREAM_STDOUT echo payload 3 of task-e3 attempt 1|LOG_STREAM_STDERR line one|LOG_STREAM_STDERR line two"; strings.Join(lines, "|") != want {
		t.Errorf("log lines %q", lines)
	}
	if !panicLogged {
		t.Error("a panic's stack is not in the task's stderr")
	}
	finish(t, w, done)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.drains != 1 {
		t.Errorf("%d drains", f.drains)
	}
}

func TestWorkerCancelsHandlers(t *testing.T) {
	f := newFakeSidecar(t)
	f.heartbeatMs = 100
	started := make(chan string, 10)
	w, done := startWorker(t, f, Options{Concurrency: 4}, map[string]HandlerFunc{
		"wait": func(ctx *Context, in []byte) ([]byte, error) {
			if ctx.Reason() != "" {
				t.Errorf("a running task's reason: %q", ctx.Reason())
			}
			started <- ctx.TaskID
			<-ctx.Done()
			return nil, errors.New(ctx.Reason())
		},
	})
	deadline := task("deadline", "wait", "")
	deadline.DeadlineUnixMs = int64JSON(time.Now().Add(150 * time.Millisecond).UnixMilli())
	f.mu.Lock()
	f.lost["lost"] = true
	f.mu.Unlock()
	f.assign(task("cancelled", "wait", ""), deadline, task("lost", "wait", ""), task("other", "wait", ""))
	for i := 0; i < 4; i++ {
		<-started
	}
	// a cancel for another attempt or epoch is not this assignment's
	f.cancel(cancelAssignment{TaskID: "other", Attempt: 1, LeaseEpoch: 3, Reason: "stale"},
		cancelAssignment{TaskID: "cancelled", Attempt: 1, LeaseEpoch: 4, Reason: "run cancelled by alice"})
	waitFor(t, "3 completions", func() bool { return f.completed() == 3 })
	for id, reason := range map[string]string{
		"cancelled": "run cancelled by alice",
		"deadline":  "deadline exceeded",
		"lost":      "the task's lease was lost",
	} {
		if c := f.completion(id); c.Error == nil || c.Error.Message != reason {
			t.Errorf("%s: %+v", id, c)
		}
	}
	if f.completion("other") != nil {
		t.Error("a cancel for another lease epoch stopped the task")
	}
	f.mu.Lock()
	beat := false
	for _, h := range f.heartbeats {
		for _, task := range h.Tasks {
			beat = beat || (task.TaskID == "other" && task.Progress == -1 && task.LeaseEpoch == 4)
		}
	}
	f.mu.Unlock()
	if !beat {
		t.Error("no periodic heartbeat for a running task")
	}
	// draining waits for the last task; a second stop request changes nothing
	stopped := make(chan struct{})
	go func() { finish(t, w, done); close(stopped) }()
	waitFor(t, "the drain", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.draining
	})
	select {
	case <-stopped:
		t.Fatal("Run returned with a task in hand")
	case <-time.After(50 * time.Millisecond):
	}
	f.cancel(cancelAssignment{TaskID: "other", Attempt: 1, LeaseEpoch: 4})
	<-stopped
	if c := f.completion("other"); c == nil || c.Error == nil || c.Error.Message != "cancelled" {
		t.Errorf("other: %+v", c)
	}
}

func TestWorkerProgressAndSpawn(t *testing.T) {
	f := newFakeSidecar(t)
	var spawned []spawnRequest
	var mu sync.Mutex
	f.spawn = func(request spawnRequest) (spawnResponse, *ConnectError) {
		mu.Lock()
		spawned = append(spawned, request)
		mu.Unlock()
		return spawnResponse{Children: []Spawned{{Key: "a", TaskID: "t-a", Name: "parent/a"}}}, nil
	}
	w, done := startWorker(t, f, Options{}, map[string]HandlerFunc{
		"parent": func(ctx *Context, in []byte) ([]byte, error) {
			ctx.Heartbeat(0.25, "a quarter")
			ctx.Heartbeat(0.5, "half")
			child, err := JSONChild("a", "resize", map[string]int{"w": 10})
			if err != nil {
				return nil, err
			}
			child.Needs, child.Retries = []string{"b"}, 2
			children, err := ctx.Spawn([]Child{child, {Key: "b", Command: "/bin/true", Args: []string{"x"}}})
			if err != nil {
				return nil, err
			}
			return ctx.JSON(children)
		},
	})
	f.assign(task("p", "parent", ""))
	waitFor(t, "the parent's completion", func() bool { return f.completion("p") != nil })
	if c := f.completion("p"); c.Output == nil || string(*c.Output) != `[{"key":"a","taskId":"t-a","name":"parent/a","existing":false}]` {
		t.Errorf("parent: %+v", c)
	}
	mu.Lock()
	if len(spawned) != 1 || spawned[0].TaskID != "p" || spawned[0].LeaseEpoch != 4 || len(spawned[0].Children) != 2 ||
		string(spawned[0].Children[0].Spec.Handler.Input) != `{"w":10}` || spawned[0].Children[1].Spec.Exec.Command != "/bin/true" {
		t.Errorf("spawned %+v", spawned)
	}
	mu.Unlock()
	f.mu.Lock()
	var progress []string
	for _, h := range f.heartbeats {
		for _, task := range h.Tasks {
			progress = append(progress, fmt.Sprintf("%s %v %s", task.TaskID, task.Progress, task.Message))
		}
	}
	f.mu.Unlock()
	// reported progress is batched: the latest report of a task wins
	if strings.Join(progress, "|") != "p 0.5 half" {
		t.Errorf("progress %q", progress)
	}
	finish(t, w, done)
}

func TestWorkerSpawnUnimplemented(t *testing.T) {
	f := newFakeSidecar(t)
	w, done := startWorker(t, f, Options{}, map[string]HandlerFunc{
		"parent": func(ctx *Context, in []byte) ([]byte, error) {
			_, err := ctx.Spawn([]Child{{Key: "a", Handler: "x"}})
			var connectErr *ConnectError
			if !errors.As(err, &connectErr) || connectErr.Code != "unimplemented" {
				t.Errorf("spawn: %v", err)
			}
			return nil, err
		},
	})
	f.assign(task("p", "parent", ""))
	waitFor(t, "the parent's completion", func() bool { return f.completion("p") != nil })
	if c := f.completion("p"); c.Error == nil || !strings.Contains(c.Error.Message, "spawning is not available") {
		t.Errorf("parent: %+v", c.Error)
	}
	finish(t, w, done)
}

func TestWorkerLostStream(t *testing.T) {
	f := newFakeSidecar(t)
	started := make(chan struct{})
	_, done := startWorker(t, f, Options{}, map[string]HandlerFunc{
		"wait": func(ctx *Context, in []byte) ([]byte, error) {
			close(started)
			<-ctx.Done()
			return nil, errors.New(ctx.Reason())
		},
	})
	f.assign(task("a", "wait", ""))
	<-started
	f.endStream(&ConnectError{Code: "internal", Message: "the sidecar broke"})
	select {
	case err := <-done:
		var connectErr *ConnectError
		if !errors.As(err, &connectErr) || connectErr.Message != "the sidecar broke" {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the stream broke")
	}
}

func TestWorkerStopsWhenTheSidecarEndsTheStream(t *testing.T) {
	f := newFakeSidecar(t)
	_, done := startWorker(t, f, Options{}, map[string]HandlerFunc{
		"echo": func(ctx *Context, in []byte) ([]byte, error) { return in, nil },
	})
	f.endStream(nil)
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestWorkerWithoutASidecar(t *testing.T) {
	w := NewWorker(Options{Socket: "/nonexistent/runner.sock", IgnoreSignals: true, Logf: t.Logf})
	if err := w.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "handler") {
		t.Errorf("a worker without handlers: %v", err)
	}
	w = NewWorker(Options{Socket: "/nonexistent/runner.sock", IgnoreSignals: true, Logf: t.Logf})
	w.Handle("x", func(ctx *Context, in []byte) ([]byte, error) { return nil, nil })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// it keeps trying to register until it is stopped
	if err := w.Run(ctx); err != nil {
		t.Errorf("a worker stopped before it registered: %v", err)
	}
}

func TestWorkerRunsAtMostConcurrencyHandlers(t *testing.T) {
	f := newFakeSidecar(t)
	var concurrent, most atomic.Int32
	w, done := startWorker(t, f, Options{Concurrency: 2}, map[string]HandlerFunc{
		"slow": func(ctx *Context, in []byte) ([]byte, error) {
			n := concurrent.Add(1)
			defer concurrent.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(20 * time.Millisecond)
			return in, nil
		},
	})
	// more than the worker asked for (a sidecar never does this): the extra ones wait for a free executor
	var tasks []*assignment
	for i := 0; i < 6; i++ {
		tasks = append(tasks, task(fmt.Sprintf("s%d", i), "slow", "x"))
	}
	f.assign(tasks...)
	waitFor(t, "6 completions", func() bool { return f.completed() == 6 })
	if most.Load() != 2 {
		t.Errorf("%d handlers ran at once, with a concurrency of 2", most.Load())
	}
	finish(t, w, done)
}

// BenchmarkWorkerThroughput keeps a worker of 64 slots full, as a sidecar
// does: every completion is answered with a new assignment.
func BenchmarkWorkerThroughput(b *testing.B) {
	f := newFakeSidecar(b)
	const slots = 64
	w, done := startWorker(b, f, Options{Concurrency: slots}, map[string]HandlerFunc{
		"echo": func(ctx *Context, in []byte) ([]byte, error) { return in, nil },
	})
	var next atomic.Int64
	newTasks := func(n int) []*assignment {
		var tasks []*assignment
		for i := 0; i < n; i++ {
			id := next.Add(1)
			if id > int64(b.N) {
				break
			}
			tasks = append(tasks, task(fmt.Sprintf("b%d", id), "echo", "payload"))
		}
		return tasks
	}
	f.mu.Lock()
	f.onComplete = func(ids []string) {
		if tasks := newTasks(len(ids)); len(tasks) > 0 {
			f.assign(tasks...)
		}
	}
	f.mu.Unlock()
	b.ResetTimer()
	f.assign(newTasks(slots)...)
	deadline := time.Now().Add(time.Minute)
	for f.completed() < b.N && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	if f.completed() != b.N {
		b.Fatalf("%d of %d completed", f.completed(), b.N)
	}
	f.mu.Lock()
	completeCalls := 0
	for _, c := range f.calls {
		if c.method == "Complete" {
			completeCalls++
		}
	}
	f.mu.Unlock()
	b.ReportMetric(float64(b.N)/float64(completeCalls), "completions/call")
	finish(b, w, done)
}

func TestWorkerOverTCP(t *testing.T) {
	f := newFakeSidecarOn(t, "tcp")
	w, done := startWorker(t, f, Options{}, map[string]HandlerFunc{
		"echo": func(ctx *Context, in []byte) ([]byte, error) { return in, nil },
	})
	f.assign(task("a", "echo", "over tcp"))
	waitFor(t, "the completion", func() bool { return f.completion("a") != nil })
	if c := f.completion("a"); string(*c.Output) != "over tcp" {
		t.Errorf("completion %+v", c)
	}
	finish(t, w, done)
}

func TestWhereTheWorkerConnects(t *testing.T) {
	t.Setenv("TASKFRAME_SOCKET", "/run/env.sock")
	t.Setenv("TASKFRAME_RUNNER_URL", "http://127.0.0.1:7071")
	for _, tc := range []struct{ socket, url, want string }{
		{"", "", "/run/env.sock"},
		{"/run/option.sock", "", "/run/option.sock"},
		{"", "127.0.0.1:9000", "http://127.0.0.1:9000"},
	} {
		c, err := newClient(tc.socket, tc.url)
		if err != nil || c.target != tc.want {
			t.Errorf("socket %q, url %q: %v %v, want %s", tc.socket, tc.url, c, err, tc.want)
		}
	}
	t.Setenv("TASKFRAME_SOCKET", "")
	if c, err := newClient("", ""); err != nil || c.target != "http://127.0.0.1:7071" {
		t.Errorf("from TASKFRAME_RUNNER_URL: %v %v", c, err)
	}
	t.Setenv("TASKFRAME_RUNNER_URL", "")
	if _, err := newClient("", ""); err == nil || !strings.Contains(err.Error(), "TASKFRAME_SOCKET") {
		t.Errorf("no sidecar: %v", err)
	}
}

func TestWorkerDrainsOnSIGTERMThenCancelsOnASecondSignal(t *testing.T) {
	f := newFakeSidecar(t)
	started := make(chan string, 2)
	release := make(chan struct{})
	_, done := startWorkerWith(t, f, Options{}, map[string]HandlerFunc{
		"finishes": func(ctx *Context, in []byte) ([]byte, error) {
			started <- ctx.TaskID
			<-release
			return ctx.Text("finished"), nil
		},
		"waits": func(ctx *Context, in []byte) ([]byte, error) {
			started <- ctx.TaskID
			<-ctx.Done()
			return nil, errors.New(ctx.Reason())
		},
	})
	f.assign(task("f", "finishes", ""), task("w", "waits", ""))
	<-started
	<-started
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the drain", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.draining
	})
	close(release)
	waitFor(t, "the first completion", func() bool { return f.completion("f") != nil })
	if c := f.completion("f"); c.Output == nil || string(*c.Output) != "finished" {
		t.Errorf("a task finishing while the worker drains: %+v", c)
	}
	if f.completion("w") != nil {
		t.Fatal("draining cancelled a handler")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not stop")
	}
	if c := f.completion("w"); c == nil || c.Error == nil || c.Error.Message != "the worker is stopping" {
		t.Errorf("a handler cancelled by a second signal: %+v", c)
	}
}
