package sdk

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeSidecar speaks the sidecar's side of the Runner protocol on a unix
// socket, like sidecar/runner/handler-runner.ts, and records every call.
type fakeSidecar struct {
	t      testing.TB
	socket string
	url    string
	server *httptest.Server

	heartbeatMs int
	// called after each Complete call with the ids it completed
	onComplete func(ids []string)
	// answers a Spawn; nil: unimplemented
	spawn func(spawnRequest) (spawnResponse, *ConnectError)
	// answers a Children call (as raw JSON, to test the proto3 JSON mapping); nil: unimplemented
	children func(childrenRequest) (string, *ConnectError)

	mu          sync.Mutex
	registered  []registerRequest
	calls       []recordedCall // Log and Complete calls, in order
	logLines    []*logLine
	heartbeats  []heartbeatRequest
	completions map[string]*completion
	outstanding map[string]bool // assigned, not completed
	lost        map[string]bool // answered as lost in heartbeats
	draining    bool
	drains      int
	streams     int

	outbox chan assignmentsResponse
	end    chan *ConnectError // ends the stream: nil cleanly, else with that error
	ended  chan struct{}      // closed once the stream handler returned
	endMu  sync.Once
}

type recordedCall struct {
	method  string
	taskIDs []string
}

func newFakeSidecar(t testing.TB) *fakeSidecar { return newFakeSidecarOn(t, "unix") }

// newFakeSidecarOn listens on a unix socket ("unix") or on 127.0.0.1 ("tcp", its URL in url).
func newFakeSidecarOn(t testing.TB, network string) *fakeSidecar {
	dir, err := os.MkdirTemp("", "tf-go-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeSidecar{
		t:           t,
		socket:      filepath.Join(dir, "runner.sock"),
		heartbeatMs: 5000,
		completions: map[string]*completion{},
		outstanding: map[string]bool{},
		lost:        map[string]bool{},
		outbox:      make(chan assignmentsResponse, 100),
		end:         make(chan *ConnectError, 1),
		ended:       make(chan struct{}),
	}
	address := f.socket
	if network == "tcp" {
		address = "127.0.0.1:0"
	}
	listener, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	unary := func(method string, serve func(body []byte) (any, *ConnectError)) {
		mux.HandleFunc(servicePath+method, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Connect-Protocol-Version") != "1" {
				t.Errorf("%s: headers %v", method, r.Header)
			}
			body, _ := io.ReadAll(r.Body)
			response, failure := serve(body)
			w.Header().Set("Content-Type", "application/json")
			if failure != nil {
				w.WriteHeader(http.StatusNotFound)
				json.NewEncoder(w).Encode(failure)
				return
			}
			json.NewEncoder(w).Encode(response)
		})
	}
	unary("Register", func(body []byte) (any, *ConnectError) {
		var request registerRequest
		f.decode(body, &request)
		f.mu.Lock()
		f.registered = append(f.registered, request)
		f.mu.Unlock()
		return map[string]any{"workerId": "w-1", "heartbeatIntervalMs": json.Number(itoa(f.heartbeatMs))}, nil
	})
	unary("Log", func(body []byte) (any, *ConnectError) {
		var request logRequest
		f.decode(body, &request)
		ids := make([]string, len(request.Lines))
		for i, line := range request.Lines {
			ids[i] = line.TaskID
		}
		f.mu.Lock()
		f.calls = append(f.calls, recordedCall{method: "Log", taskIDs: ids})
		f.logLines = append(f.logLines, request.Lines...)
		f.mu.Unlock()
		return struct{}{}, nil
	})
	unary("Complete", func(body []byte) (any, *ConnectError) {
		var request completeRequest
		f.decode(body, &request)
		ids := make([]string, len(request.Completions))
		receipts := make([]receipt, len(request.Completions))
		f.mu.Lock()
		for i, c := range request.Completions {
			ids[i] = c.TaskID
			if !f.outstanding[c.TaskID] {
				receipts[i] = receipt{TaskID: c.TaskID, Reason: "stale completion"}
				continue
			}
			delete(f.outstanding, c.TaskID)
			f.completions[c.TaskID] = c
			receipts[i] = receipt{TaskID: c.TaskID, Accepted: true}
		}
		done := f.draining && len(f.outstanding) == 0
		f.mu.Unlock()
		f.mu.Lock()
		f.calls = append(f.calls, recordedCall{method: "Complete", taskIDs: ids})
		onComplete := f.onComplete
		f.mu.Unlock()
		if onComplete != nil {
			onComplete(ids)
		}
		if done {
			f.endStream(nil)
		}
		return completeResponse{Receipts: receipts}, nil
	})
	unary("Heartbeat", func(body []byte) (any, *ConnectError) {
		var request heartbeatRequest
		f.decode(body, &request)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.heartbeats = append(f.heartbeats, request)
		lost := []string{}
		for _, task := range request.Tasks {
			if f.lost[task.TaskID] {
				lost = append(lost, task.TaskID)
			}
		}
		return heartbeatResponse{LostTaskIDs: lost}, nil
	})
	unary("Spawn", func(body []byte) (any, *ConnectError) {
		var request spawnRequest
		f.decode(body, &request)
		if f.spawn == nil {
			return nil, &ConnectError{Code: "unimplemented", Message: "this sidecar has no hub to spawn children on"}
		}
		response, failure := f.spawn(request)
		return response, failure
	})
	unary("Children", func(body []byte) (any, *ConnectError) {
		var request childrenRequest
		f.decode(body, &request)
		if f.children == nil {
			return nil, &ConnectError{Code: "unimplemented", Message: "this sidecar has no hub"}
		}
		response, failure := f.children(request)
		return json.RawMessage(response), failure
	})
	unary("Drain", func(body []byte) (any, *ConnectError) {
		f.mu.Lock()
		f.draining = true
		f.drains++
		done := len(f.outstanding) == 0
		f.mu.Unlock()
		if done {
			f.endStream(nil)
		}
		return struct{}{}, nil
	})
	mux.HandleFunc(servicePath+"Assignments", func(w http.ResponseWriter, r *http.Request) {
		defer close(f.ended)
		if r.Header.Get("Content-Type") != "application/connect+json" {
			t.Errorf("Assignments: content type %q", r.Header.Get("Content-Type"))
		}
		_, data, err := readEnvelope(bufio.NewReader(r.Body))
		var request workerRequest
		if err != nil || json.Unmarshal(data, &request) != nil || request.WorkerID != "w-1" {
			t.Errorf("Assignments request: %q %v", data, err)
		}
		f.mu.Lock()
		f.streams++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/connect+json")
		w.WriteHeader(http.StatusOK)
		flusher := w.(http.Flusher)
		flusher.Flush()
		for {
			select {
			case message := <-f.outbox:
				data, _ := json.Marshal(message)
				w.Write(appendEnvelope(nil, 0, data))
				flusher.Flush()
			case failure := <-f.end:
				data := []byte(`{}`)
				if failure != nil {
					data, _ = json.Marshal(endStream{Error: failure})
				}
				w.Write(appendEnvelope(nil, flagEndStream, data))
				return
			case <-r.Context().Done():
				return
			}
		}
	})
	f.server = httptest.NewUnstartedServer(mux)
	f.server.Listener.Close()
	f.server.Listener = listener
	f.server.Start()
	if network == "tcp" {
		f.url, f.socket = f.server.URL, ""
	}
	t.Cleanup(func() {
		f.endStream(nil)
		f.server.Close()
	})
	return f
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func (f *fakeSidecar) decode(body []byte, into any) {
	if err := json.Unmarshal(body, into); err != nil {
		f.t.Errorf("decoding %s: %v", body, err)
	}
}

// assign sends assignments in one stream message.
func (f *fakeSidecar) assign(assignments ...*assignment) {
	f.mu.Lock()
	for _, a := range assignments {
		f.outstanding[a.TaskID] = true
	}
	f.mu.Unlock()
	f.outbox <- assignmentsResponse{Assignments: assignments}
}

func (f *fakeSidecar) cancel(cancels ...cancelAssignment) {
	f.outbox <- assignmentsResponse{Cancels: cancels}
}

func (f *fakeSidecar) endStream(failure *ConnectError) {
	f.endMu.Do(func() { f.end <- failure })
}

func (f *fakeSidecar) completion(id string) *completion {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.completions[id]
}

func (f *fakeSidecar) completed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.completions)
}

func waitFor(t testing.TB, what string, condition func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !condition() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
