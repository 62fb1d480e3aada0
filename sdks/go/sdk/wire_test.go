package sdk

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestEnvelopesRoundTrip(t *testing.T) {
	var buf []byte
	buf = appendEnvelope(buf, 0, []byte(`{"a":1}`))
	buf = appendEnvelope(buf, 0, nil)
	buf = appendEnvelope(buf, flagEndStream, []byte(`{}`))
	if want := []byte{0, 0, 0, 0, 7}; !bytes.Equal(buf[:5], want) {
		t.Fatalf("header = %v, want %v", buf[:5], want)
	}
	r := bufio.NewReader(bytes.NewReader(buf))
	for i, want := range []struct {
		flags byte
		data  string
	}{{0, `{"a":1}`}, {0, ``}, {flagEndStream, `{}`}} {
		flags, data, err := readEnvelope(r)
		if err != nil || flags != want.flags || string(data) != want.data {
			t.Fatalf("envelope %d = (%d, %q, %v), want (%d, %q)", i, flags, data, err, want.flags, want.data)
		}
	}
	if _, _, err := readEnvelope(r); err != io.EOF {
		t.Fatalf("after the last envelope: %v, want io.EOF", err)
	}
}

func TestEnvelopesReadAcrossSmallReads(t *testing.T) {
	buf := appendEnvelope(nil, 0, []byte(strings.Repeat("x", 100000)))
	// one byte at a time, as a slow chunked body would deliver it
	r := bufio.NewReader(&oneByteReader{data: buf})
	_, data, err := readEnvelope(r)
	if err != nil || len(data) != 100000 {
		t.Fatalf("got %d bytes, %v", len(data), err)
	}
}

type oneByteReader struct{ data []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	p[0] = r.data[0]
	r.data = r.data[1:]
	return 1, nil
}

func TestEnvelopesTruncated(t *testing.T) {
	buf := appendEnvelope(nil, 0, []byte(`{"assignments":[]}`))
	for _, cut := range []int{3, 5, 10} {
		_, _, err := readEnvelope(bufio.NewReader(bytes.NewReader(buf[:cut])))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut at %d: %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
}

func TestStreamEnd(t *testing.T) {
	read := func(envelopes ...[]byte) error {
		s := &stream{reader: bufio.NewReader(bytes.NewReader(bytes.Join(envelopes, nil)))}
		var message assignmentsResponse
		for {
			if err := s.next(&message); err != nil {
				return err
			}
		}
	}
	if err := read(appendEnvelope(nil, 0, []byte(`{}`)), appendEnvelope(nil, flagEndStream, []byte(`{}`))); err != errStreamEnded {
		t.Errorf("clean end: %v", err)
	}
	err := read(appendEnvelope(nil, flagEndStream, []byte(`{"error":{"code":"not_found","message":"unknown worker"}}`)))
	var connectErr *ConnectError
	if !errors.As(err, &connectErr) || connectErr.Code != "not_found" || connectErr.Message != "unknown worker" {
		t.Errorf("end with an error: %v", err)
	}
	if err := read(appendEnvelope(nil, 0, []byte(`{}`))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut stream: %v", err)
	}
}

func TestAssignmentFromProto3JSON(t *testing.T) {
	var message assignmentsResponse
	data := `{"assignments":[{"taskId":"t1","runId":"r1","taskName":"resize","attempt":2,"leaseEpoch":"7",
		"handler":"resize","input":"AAEC/w==","contentType":"application/octet-stream",
		"deadlineUnixMs":"1700000000123","someFutureField":{"x":1}},{"taskId":"t2","leaseEpoch":3}],
		"cancels":[{"taskId":"t0","attempt":1,"leaseEpoch":"18446744073709551615","reason":"run cancelled"}]}`
	if err := json.Unmarshal([]byte(data), &message); err != nil {
		t.Fatal(err)
	}
	a := message.Assignments[0]
	if a.TaskID != "t1" || a.Attempt != 2 || a.LeaseEpoch != 7 || !bytes.Equal(a.Input, []byte{0, 1, 2, 255}) ||
		a.DeadlineUnixMs != 1700000000123 || a.RunID != "r1" || a.TaskName != "resize" {
		t.Errorf("assignment = %+v", a)
	}
	if b := message.Assignments[1]; b.LeaseEpoch != 3 || b.Attempt != 0 || b.Input != nil || b.DeadlineUnixMs != 0 {
		t.Errorf("defaults = %+v", b)
	}
	if c := message.Cancels[0]; c.LeaseEpoch != 18446744073709551615 || c.Reason != "run cancelled" {
		t.Errorf("cancel = %+v", c)
	}
	var empty assignmentsResponse
	if err := json.Unmarshal([]byte(`{}`), &empty); err != nil || len(empty.Assignments) != 0 {
		t.Errorf("empty message: %+v %v", empty, err)
	}
}

func TestCompletionToProto3JSON(t *testing.T) {
	id := identity{TaskID: "t1", Attempt: 1, LeaseEpoch: 12}
	empty := []byte{}
	output := []byte("hi")
	for _, tc := range []struct {
		completion completion
		want       string
	}{
		{completion{identity: id, Output: &output, OutputContentType: "text/plain"},
			`{"taskId":"t1","attempt":1,"leaseEpoch":"12","output":"aGk=","outputContentType":"text/plain"}`},
		// an empty output is still sent: it names the oneof's case
		{completion{identity: id, Output: &empty}, `{"taskId":"t1","attempt":1,"leaseEpoch":"12","output":""}`},
		{completion{identity: id, Error: &handlerError{Type: "ValueError", Message: "bad", NonRetryable: true}},
			`{"taskId":"t1","attempt":1,"leaseEpoch":"12","error":{"type":"ValueError","message":"bad","nonRetryable":true}}`},
		{completion{identity: id, Error: &handlerError{Type: "E", RetryAfterMs: 300}},
			`{"taskId":"t1","attempt":1,"leaseEpoch":"12","error":{"type":"E","retryAfterMs":"300"}}`},
	} {
		got, err := json.Marshal(tc.completion)
		if err != nil || string(got) != tc.want {
			t.Errorf("got %s (%v), want %s", got, err, tc.want)
		}
	}
}

func TestOtherMessagesToProto3JSON(t *testing.T) {
	line, _ := json.Marshal(logLine{identity: identity{TaskID: "t", Attempt: 1, LeaseEpoch: 2}, Stream: logStreamStderr, Text: "x", AtUnixMs: 5})
	if want := `{"taskId":"t","attempt":1,"leaseEpoch":"2","stream":"LOG_STREAM_STDERR","text":"x","atUnixMs":"5"}`; string(line) != want {
		t.Errorf("log line = %s", line)
	}
	progress, _ := json.Marshal(taskProgress{identity: identity{TaskID: "t", Attempt: 1}, Progress: 0})
	if want := `{"taskId":"t","attempt":1,"progress":0}`; string(progress) != want {
		t.Errorf("progress = %s", progress)
	}
	spec, err := Child{Key: "a", Handler: "h", Input: []byte(`{}`), ContentType: ContentTypeJSON, Needs: []string{"b"}, Retries: 1}.spec()
	if err != nil {
		t.Fatal(err)
	}
	spawn, _ := json.Marshal(spawnRequest{WorkerID: "w", identity: identity{TaskID: "t", Attempt: 1, LeaseEpoch: 3}, Children: []childSpec{spec}})
	want := `{"workerId":"w","taskId":"t","attempt":1,"leaseEpoch":"3","children":[{"key":"a","spec":{"name":"a",` +
		`"handler":{"handler":"h","input":"e30=","contentType":"application/json"},"retry":{"retries":1},"needs":["b"]}}]}`
	if string(spawn) != want {
		t.Errorf("spawn = %s\nwant    %s", spawn, want)
	}
	if _, err := (Child{Key: "a"}).spec(); err == nil {
		t.Error("a child without a handler or command is accepted")
	}
	var registered registerResponse
	if err := json.Unmarshal([]byte(`{"workerId":"w1","heartbeatIntervalMs":"5000"}`), &registered); err != nil ||
		registered.HeartbeatIntervalMs != 5000 {
		t.Errorf("register response: %+v %v", registered, err)
	}
	if err := json.Unmarshal([]byte(`{"heartbeatIntervalMs":250}`), &registered); err != nil || registered.HeartbeatIntervalMs != 250 {
		t.Errorf("a number for a uint64: %+v %v", registered, err)
	}
}
