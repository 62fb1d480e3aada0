package sdk

import (
	"context"
	"sync"
	"time"
)

// flushDelay: reports that accumulate within this long travel in one call.
const flushDelay = 5 * time.Millisecond

// Limits of one Log or Complete call; more is sent in several calls.
const (
	maxBatchItems = 2000
	maxBatchBytes = 8 << 20
)

// callTimeout bounds one report call.
const callTimeout = 60 * time.Second

// reporter batches what leaves the worker: log lines, then progress, then
// completions, one call of each kind at a time, from one goroutine, so that a
// task's lines always arrive before its completion.
type reporter struct {
	run *run

	mu          sync.Mutex
	lines       []*logLine
	progress    []taskProgress
	progressAt  map[string]int // index in progress, by task id: the latest report of a task wins
	completions []*completion

	kick     chan struct{} // something to send: within flushDelay
	now      chan struct{} // something to send: at once
	closing  chan struct{}
	finished chan struct{}
}

func newReporter(r *run) *reporter {
	return &reporter{
		run:        r,
		progressAt: map[string]int{},
		kick:       make(chan struct{}, 1),
		now:        make(chan struct{}, 1),
		closing:    make(chan struct{}),
		finished:   make(chan struct{}),
	}
}

func signalChannel(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (p *reporter) addLines(lines ...*logLine) {
	p.mu.Lock()
	p.lines = append(p.lines, lines...)
	p.mu.Unlock()
	signalChannel(p.kick)
}

func (p *reporter) addProgress(progress taskProgress) {
	p.mu.Lock()
	if i, ok := p.progressAt[progress.TaskID]; ok {
		p.progress[i] = progress
	} else {
		p.progressAt[progress.TaskID] = len(p.progress)
		p.progress = append(p.progress, progress)
	}
	p.mu.Unlock()
	signalChannel(p.kick)
}

func (p *reporter) addCompletion(c *completion, now bool) {
	p.mu.Lock()
	p.completions = append(p.completions, c)
	p.mu.Unlock()
	if now {
		signalChannel(p.now)
	} else {
		signalChannel(p.kick)
	}
}

// close sends what is left, then stops the loop.
func (p *reporter) close() {
	close(p.closing)
	<-p.finished
}

func (p *reporter) loop() {
	defer close(p.finished)
	for {
		select {
		case <-p.kick:
			timer := time.NewTimer(flushDelay)
			select {
			case <-timer.C:
			case <-p.now:
			case <-p.closing:
			}
			timer.Stop()
		case <-p.now:
		case <-p.closing:
			p.flush()
			return
		}
		// what these signals announce is taken by this flush
		select {
		case <-p.kick:
		default:
		}
		select {
		case <-p.now:
		default:
		}
		p.flush()
	}
}

func (p *reporter) flush() {
	p.mu.Lock()
	lines, progress, completions := p.lines, p.progress, p.completions
	p.lines, p.progress, p.completions = nil, nil, nil
	if len(progress) > 0 {
		p.progressAt = map[string]int{}
	}
	p.mu.Unlock()
	r := p.run
	for len(lines) > 0 {
		n, size := 0, 0
		for n < len(lines) && n < maxBatchItems && (n == 0 || size+len(lines[n].Text) <= maxBatchBytes) {
			size += len(lines[n].Text) + 100
			n++
		}
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		if err := r.client.call(ctx, "Log", logRequest{WorkerID: r.workerID, Lines: lines[:n]}, nil); err != nil {
			r.options.Logf("sending %d log lines failed: %v", n, err)
		}
		cancel()
		lines = lines[n:]
	}
	if len(progress) > 0 {
		r.sendHeartbeat(progress)
	}
	for len(completions) > 0 {
		n, size := 0, 0
		for n < len(completions) && n < maxBatchItems && (n == 0 || size+completionSize(completions[n]) <= maxBatchBytes) {
			size += completionSize(completions[n])
			n++
		}
		batch := completions[:n]
		completions = completions[n:]
		var response completeResponse
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		err := r.client.call(ctx, "Complete", completeRequest{WorkerID: r.workerID, Completions: batch}, &response)
		cancel()
		if err != nil {
			r.options.Logf("reporting %d results failed (the sidecar retries those tasks): %v", n, err)
			continue
		}
		for _, receipt := range response.Receipts {
			if !receipt.Accepted {
				r.options.Logf("the result of task %s was refused: %s", receipt.TaskID, receipt.Reason)
			}
		}
	}
}

func completionSize(c *completion) int {
	size := 200
	if c.Output != nil {
		size += len(*c.Output) * 4 / 3
	}
	if c.Error != nil {
		size += len(c.Error.Message)
	}
	return size
}
