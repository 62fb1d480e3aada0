package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"sync"
	"syscall"
	"time"
)

// SDKVersion is sent to the sidecar when a worker registers.
const SDKVersion = "0.1.0"

// DefaultConcurrency is the number of tasks a worker runs at once unless Options.Concurrency says otherwise.
const DefaultConcurrency = 16

// HandlerFunc serves one handler task: its output (see Context.JSON,
// Context.Text and Context.SetContentType for its content type) or an error
// (see NonRetryable and RetryAfter for how errors are retried).
type HandlerFunc func(ctx *Context, input []byte) ([]byte, error)

// Options configure a Worker; every field is optional.
type Options struct {
	// Tasks run at once (DefaultConcurrency if 0).
	Concurrency int
	// The sidecar's unix socket; default: $TASKFRAME_SOCKET.
	Socket string
	// Or its TCP address, e.g. http://127.0.0.1:7071; default: $TASKFRAME_RUNNER_URL.
	URL string
	// A name for humans, in the sidecar's logs and the audit trail; default: go-<pid>.
	Name string
	// Labels of the worker, for the sidecar.
	Labels map[string]string
	// Run leaves SIGTERM and SIGINT alone; stop the worker by cancelling Run's context.
	IgnoreSignals bool
	// Where the worker's own notes go (registration, refused reports, ...); default: the standard logger.
	Logf func(format string, args ...any)
}

// Worker is a long-lived worker: it registers its handlers with the
// sidecar on this host, receives assignments over one stream, runs at most
// Concurrency of them at once, and reports results, logs and heartbeats in
// batches.
type Worker struct {
	options  Options
	mu       sync.Mutex
	handlers map[string]HandlerFunc
	started  bool
	stopOnce sync.Once
	stopReq  chan struct{}
}

// NewWorker makes a worker; add handlers with Handle, then call Run.
func NewWorker(options Options) *Worker {
	if options.Concurrency <= 0 {
		options.Concurrency = DefaultConcurrency
	}
	if options.Name == "" {
		options.Name = fmt.Sprintf("go-%d", os.Getpid())
	}
	if options.Logf == nil {
		options.Logf = func(format string, args ...any) { log.Printf("taskframe: "+format, args...) }
	}
	return &Worker{options: options, handlers: map[string]HandlerFunc{}, stopReq: make(chan struct{})}
}

// Handle serves handler tasks named name with fn. It panics if the name is
// empty or taken, or if the worker is already running.
func (w *Worker) Handle(name string, fn HandlerFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case name == "":
		panic("taskframe: a handler needs a name")
	case fn == nil:
		panic("taskframe: nil handler for " + name)
	case w.started:
		panic("taskframe: Handle(" + name + ") after Run")
	case w.handlers[name] != nil:
		panic("taskframe: two handlers for " + name)
	}
	w.handlers[name] = fn
}

// Stop drains the worker, as SIGTERM does: the sidecar sends no more work,
// and Run returns once the tasks in hand are reported.
func (w *Worker) Stop() {
	w.stopOnce.Do(func() { close(w.stopReq) })
}

var defaultWorker = NewWorker(Options{})

// Handle adds a handler to the default worker.
func Handle(name string, fn HandlerFunc) { defaultWorker.Handle(name, fn) }

// Run serves the default worker's handlers until SIGTERM or SIGINT (then it
// drains: in-flight tasks finish and are reported) or until the sidecar ends
// the stream. It exits the process with status 1 on a fatal error.
func Run() {
	if err := defaultWorker.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// JSONHandler adapts a function of a JSON-decoded input to a HandlerFunc
// whose output is the function's result encoded as JSON. An input that
// does not decode fails the task without retries.
//
//	w.Handle("resize", sdk.JSONHandler(func(ctx *sdk.Context, in Request) (Result, error) { ... }))
func JSONHandler[In, Out any](fn func(ctx *Context, input In) (Out, error)) HandlerFunc {
	return func(ctx *Context, data []byte) ([]byte, error) {
		var input In
		if len(data) > 0 {
			if err := json.Unmarshal(data, &input); err != nil {
				return nil, NonRetryable(fmt.Errorf("decoding the input as JSON: %w", err))
			}
		}
		output, err := fn(ctx, input)
		if err != nil {
			return nil, err
		}
		return ctx.JSON(output)
	}
}

// Run registers the worker and serves assignments until it is drained:
// by cancelling ctx, by Stop, or by SIGTERM/SIGINT (unless IgnoreSignals).
// A second signal cancels the handlers still running; a third one kills the
// process. Run returns nil once drained or when the sidecar ends the stream
// cleanly, and an error if the worker cannot register or its stream breaks
// (the sidecar then gives its tasks back to be retried).
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return errors.New("taskframe: the worker is already running")
	}
	w.started = true
	handlers := make(map[string]HandlerFunc, len(w.handlers))
	names := make([]string, 0, len(w.handlers))
	for name, fn := range w.handlers {
		handlers[name] = fn
		names = append(names, name)
	}
	w.mu.Unlock()
	sort.Strings(names)
	if len(names) == 0 {
		return errors.New("taskframe: a worker needs at least one handler")
	}
	client, err := newClient(w.options.Socket, w.options.URL)
	if err != nil {
		return err
	}
	defer client.close()

	finished := make(chan struct{})
	defer close(finished)
	var signals chan os.Signal
	if !w.options.IgnoreSignals {
		signals = make(chan os.Signal, 2)
		signal.Notify(signals, syscall.SIGTERM, os.Interrupt)
		defer signal.Stop(signals)
	}
	stopping := make(chan struct{}) // drain
	hardStop := make(chan struct{}) // cancel the handlers too
	go func() {
		select {
		case <-ctx.Done():
		case <-signals:
		case <-w.stopReq:
		case <-finished:
			return
		}
		close(stopping)
		select {
		case <-signals:
			w.options.Logf("stopping: cancelling the handlers still running (again to kill)")
			signal.Stop(signals) // a third signal has its default effect
			close(hardStop)
		case <-finished:
		}
	}()

	registered, err := register(client, registerRequest{
		Language:       "go",
		SDKVersion:     SDKVersion,
		Handlers:       names,
		MaxConcurrency: uint32(w.options.Concurrency),
		Labels:         w.options.Labels,
		Name:           w.options.Name,
	}, stopping)
	if err != nil {
		if isClosed(stopping) {
			return nil
		}
		return err
	}
	heartbeat := time.Duration(registered.HeartbeatIntervalMs) * time.Millisecond
	if heartbeat <= 0 {
		heartbeat = 5 * time.Second
	} else if heartbeat < 100*time.Millisecond {
		heartbeat = 100 * time.Millisecond
	}
	w.options.Logf("worker %s registered with %s as %s: handlers %v, concurrency %d",
		w.options.Name, client.target, registered.WorkerID, names, w.options.Concurrency)
	r := &run{
		options:   w.options,
		handlers:  handlers,
		client:    client,
		workerID:  registered.WorkerID,
		base:      valuesOnly{ctx},
		running:   map[string]*Context{},
		queue:     make(chan queued, w.options.Concurrency),
		heartbeat: heartbeat,
	}
	return r.serve(stopping, hardStop)
}

// register retries while the sidecar's socket is not there yet (a worker started before its sidecar).
func register(c *client, request registerRequest, stopping <-chan struct{}) (*registerResponse, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	giveUp := time.Now().Add(15 * time.Second)
	wait := 100 * time.Millisecond
	for {
		var response registerResponse
		err := c.call(ctx, "Register", request, &response)
		if err == nil {
			return &response, nil
		}
		var opErr *net.OpError
		if !errors.As(err, &opErr) || opErr.Op != "dial" || time.Now().After(giveUp) {
			return nil, err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, err
		}
		if wait *= 2; wait > time.Second {
			wait = time.Second
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// run is one registration of a worker: its stream, its tasks, its reports.
type run struct {
	options   Options
	handlers  map[string]HandlerFunc
	client    *client
	workerID  string
	base      context.Context
	heartbeat time.Duration
	reports   *reporter

	mu sync.Mutex
	// assigned and not reported yet (queued or running), by task id
	running map[string]*Context
	queue   chan queued
}

func (r *run) serve(stopping, hardStop <-chan struct{}) error {
	streamCtx, cancelStream := context.WithCancel(context.Background())
	defer cancelStream()
	s, err := r.client.openStream(streamCtx, "Assignments", workerRequest{WorkerID: r.workerID})
	if err != nil {
		if isClosed(stopping) {
			return nil
		}
		return err
	}
	defer s.close()
	r.reports = newReporter(r)
	go r.reports.loop()
	var executors sync.WaitGroup
	for i := 0; i < r.options.Concurrency; i++ {
		executors.Add(1)
		go func() {
			defer executors.Done()
			for q := range r.queue {
				r.execute(q.task, q.input)
			}
		}()
	}
	streamDone := make(chan struct{})
	go r.heartbeats(streamDone)
	var drainer sync.WaitGroup
	drainer.Add(1)
	go func() {
		defer drainer.Done()
		select {
		case <-stopping:
		case <-streamDone:
			return
		}
		r.options.Logf("draining: finishing the tasks in hand")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := r.client.call(ctx, "Drain", workerRequest{WorkerID: r.workerID}, nil)
		cancel()
		if err != nil {
			r.options.Logf("draining failed (%v): stopping now", err)
			r.cancelAll("the worker is stopping")
			cancelStream()
			return
		}
		select {
		case <-hardStop:
			r.cancelAll("the worker is stopping")
		case <-streamDone:
		}
	}()

	var streamErr error
	for {
		var message assignmentsResponse
		if err := s.next(&message); err != nil {
			if err != errStreamEnded {
				streamErr = err
			}
			break
		}
		for _, cancel := range message.Cancels {
			r.cancelAssignment(cancel)
		}
		for _, a := range message.Assignments {
			r.accept(a)
		}
	}
	close(streamDone)
	drainer.Wait()
	// Nothing can be assigned any more: tasks still in hand cannot be
	// reported usefully (when the sidecar is gone) or are about to be taken
	// back by it: stop their handlers.
	why := "the sidecar ended the worker's stream"
	if streamErr != nil {
		why = "the worker lost its sidecar"
	}
	r.cancelAll(why)
	close(r.queue)
	executors.Wait()
	r.reports.close()
	if streamErr != nil {
		if isClosed(stopping) {
			r.options.Logf("stopped: %v", streamErr)
			return nil
		}
		return fmt.Errorf("taskframe: the Assignments stream broke (the sidecar gives this worker's tasks back): %w", streamErr)
	}
	r.options.Logf("stopped: the sidecar ended the stream")
	return nil
}

// queued is an assignment waiting for a free executor.
type queued struct {
	task  *Context
	input []byte
}

// accept takes an assignment in hand and queues it for a free executor. The
// sidecar never sends more than Concurrency unfinished assignments, so the
// queue (of that capacity) has room.
func (r *run) accept(a *assignment) {
	ctx := r.base
	var cancel context.CancelFunc
	if a.DeadlineUnixMs > 0 {
		ctx, cancel = context.WithDeadline(ctx, time.UnixMilli(int64(a.DeadlineUnixMs)))
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	task := &Context{
		Context:     ctx,
		TaskID:      a.TaskID,
		RunID:       a.RunID,
		TaskName:    a.TaskName,
		Handler:     a.Handler,
		Attempt:     int(a.Attempt),
		ContentType: a.ContentType,
		Traceparent: a.Traceparent,
		run:         r,
		id:          identity{TaskID: a.TaskID, Attempt: a.Attempt, LeaseEpoch: a.LeaseEpoch},
		cancel:      cancel,
	}
	input := a.Input
	if input == nil {
		input = []byte{}
	}
	r.mu.Lock()
	r.running[a.TaskID] = task
	r.mu.Unlock()
	r.queue <- queued{task: task, input: input}
}

// execute runs a task's handler and queues its completion.
func (r *run) execute(task *Context, input []byte) {
	var output []byte
	var err error
	handler := r.handlers[task.Handler]
	switch {
	case handler == nil:
		err = &UnknownHandlerError{Handler: task.Handler}
	case task.Err() != nil:
		err = &CancelledError{Reason: task.Reason()} // cancelled before it started
	default:
		output, err = call(handler, task, input)
	}
	task.done.Store(true)
	report := &completion{identity: task.id}
	if err != nil {
		report.Error = describeError(err)
	} else {
		if output == nil {
			output = []byte{}
			report.OutputContentType = task.outputContentType(nil)
		} else {
			report.OutputContentType = task.outputContentType(output)
		}
		report.Output = &output
	}
	task.cancel() // releases the deadline's timer
	r.mu.Lock()
	if r.running[task.TaskID] == task {
		delete(r.running, task.TaskID)
	}
	idle := len(r.running) == 0
	r.mu.Unlock()
	// with nothing else in hand there is nothing to wait for: report at once
	r.reports.addCompletion(report, idle)
}

// call runs a handler, turning a panic into a *PanicError (its stack goes to the task's stderr log).
func call(handler HandlerFunc, task *Context, input []byte) (output []byte, err error) {
	defer func() {
		if recovered := recover(); recovered != nil {
			panicked := &PanicError{Value: recovered, Stack: debug.Stack()}
			task.LogStderr(fmt.Sprintf("panic: %v\n\n%s", recovered, panicked.Stack))
			output, err = nil, panicked
		}
	}()
	return handler(task, input)
}

// CancelledError is what a task cancelled before its handler started completes with.
type CancelledError struct{ Reason string }

func (e *CancelledError) Error() string { return e.Reason }

// ErrorType reports it as "Cancelled".
func (e *CancelledError) ErrorType() string { return "Cancelled" }

// UnknownHandlerError completes a task for a handler this worker does not serve.
type UnknownHandlerError struct{ Handler string }

func (e *UnknownHandlerError) Error() string {
	return fmt.Sprintf("no handler %q in this worker", e.Handler)
}

func (r *run) cancelAssignment(cancel cancelAssignment) {
	r.mu.Lock()
	task := r.running[cancel.TaskID]
	r.mu.Unlock()
	if task == nil ||
		(cancel.Attempt != 0 && cancel.Attempt != task.id.Attempt) ||
		(cancel.LeaseEpoch != 0 && cancel.LeaseEpoch != task.id.LeaseEpoch) {
		return
	}
	reason := cancel.Reason
	if reason == "" {
		reason = "cancelled"
	}
	task.stop(reason)
}

func (r *run) cancelTasks(ids []string, reason string) {
	r.mu.Lock()
	tasks := make([]*Context, 0, len(ids))
	for _, id := range ids {
		if task := r.running[id]; task != nil {
			tasks = append(tasks, task)
		}
	}
	r.mu.Unlock()
	for _, task := range tasks {
		task.stop(reason)
	}
}

func (r *run) cancelAll(reason string) {
	r.mu.Lock()
	tasks := make([]*Context, 0, len(r.running))
	for _, task := range r.running {
		tasks = append(tasks, task)
	}
	r.mu.Unlock()
	for _, task := range tasks {
		task.stop(reason)
	}
}

// heartbeats lists every task in hand every heartbeat interval, and stops those the sidecar says are lost.
func (r *run) heartbeats(done <-chan struct{}) {
	ticker := time.NewTicker(r.heartbeat)
	defer ticker.Stop()
	for {
		select {
		case <-done:
			return
		case <-ticker.C:
		}
		r.mu.Lock()
		tasks := make([]taskProgress, 0, len(r.running))
		for _, task := range r.running {
			tasks = append(tasks, taskProgress{identity: task.id, Progress: -1})
		}
		r.mu.Unlock()
		if len(tasks) > 0 {
			r.sendHeartbeat(tasks)
		}
	}
}

func (r *run) sendHeartbeat(tasks []taskProgress) {
	ctx, cancel := context.WithTimeout(context.Background(), r.heartbeat+10*time.Second)
	defer cancel()
	var response heartbeatResponse
	if err := r.client.call(ctx, "Heartbeat", heartbeatRequest{WorkerID: r.workerID, Tasks: tasks}, &response); err != nil {
		return // if the sidecar is gone, the stream's end says so
	}
	if len(response.LostTaskIDs) > 0 {
		r.cancelTasks(response.LostTaskIDs, "the task's lease was lost")
	}
}
