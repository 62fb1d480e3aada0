package sdk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// ConnectError is an error answered by the sidecar: a Connect code such as
// "not_found" or "unimplemented", and a message.
type ConnectError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *ConnectError) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

const servicePath = "/taskframe.v1.RunnerService/"

// client speaks the Runner protocol: Connect with the JSON codec over HTTP/1.1.
type client struct {
	http    *http.Client
	baseURL string
	// where it connects, for messages
	target string
}

// newClient connects to the socket or URL of the options, else of TASKFRAME_SOCKET, else of TASKFRAME_RUNNER_URL.
func newClient(socket, url string) (*client, error) {
	if socket == "" && url == "" {
		socket = os.Getenv("TASKFRAME_SOCKET")
		if socket == "" {
			url = os.Getenv("TASKFRAME_RUNNER_URL")
		}
	}
	transport := &http.Transport{
		// a local sidecar: compression would only cost CPU
		DisableCompression:  true,
		MaxIdleConns:        16,
		MaxIdleConnsPerHost: 16,
		// below Node's keep-alive timeout (5 s), so that the sidecar rarely closes a connection under a request
		IdleConnTimeout:       3 * time.Second,
		ResponseHeaderTimeout: 0,
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	c := &client{http: &http.Client{Transport: transport}}
	switch {
	case socket != "":
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", socket)
		}
		c.baseURL = "http://taskframe-sidecar"
		c.target = socket
	case url != "":
		if !strings.Contains(url, "://") {
			url = "http://" + url
		}
		transport.DialContext = dialer.DialContext
		c.baseURL = strings.TrimRight(url, "/")
		c.target = c.baseURL
	default:
		return nil, errors.New("taskframe: no sidecar to connect to: set TASKFRAME_SOCKET (or TASKFRAME_RUNNER_URL), or Options.Socket")
	}
	return c, nil
}

func (c *client) close() {
	c.http.CloseIdleConnections()
}

// call makes a unary call: a JSON request, a JSON response or a Connect error.
func (c *client) call(ctx context.Context, method string, request, response any) error {
	body, err := json.Marshal(request)
	if err != nil {
		return fmt.Errorf("taskframe: encoding %s: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+servicePath+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	// Not sent (nil), but it tells net/http that the call may be replayed on a
	// new connection when the sidecar closed an idle one under it: every
	// Runner call is safe to repeat (a repeated report is refused, not applied twice).
	req.Header["X-Idempotency-Key"] = nil
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("taskframe: %s: %w", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("taskframe: %s: reading the response: %w", method, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("taskframe: %s: %w", method, errorOfResponse(resp.StatusCode, data))
	}
	if response == nil {
		return nil
	}
	if err := json.Unmarshal(data, response); err != nil {
		return fmt.Errorf("taskframe: %s: decoding the response: %w", method, err)
	}
	return nil
}

// errorOfResponse reads a Connect error body, or makes one of the HTTP status.
func errorOfResponse(status int, body []byte) *ConnectError {
	var e ConnectError
	if json.Unmarshal(body, &e) == nil && e.Code != "" {
		return &e
	}
	e = ConnectError{Code: codeOfStatus(status), Message: strings.TrimSpace(string(body))}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return &e
}

func codeOfStatus(status int) string {
	switch status {
	case 400:
		return "internal"
	case 401:
		return "unauthenticated"
	case 403:
		return "permission_denied"
	case 404:
		return "unimplemented"
	case 429, 502, 503, 504:
		return "unavailable"
	default:
		return "unknown"
	}
}

// stream is an open server stream: its messages are read one envelope at a time, as they arrive.
type stream struct {
	body   io.ReadCloser
	reader *bufio.Reader
}

func (c *client) openStream(ctx context.Context, method string, request any) (*stream, error) {
	message, err := json.Marshal(request)
	if err != nil {
		return nil, err
	}
	body := appendEnvelope(nil, 0, message)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+servicePath+method, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/connect+json")
	req.Header.Set("Connect-Protocol-Version", "1")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("taskframe: %s: %w", method, err)
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		return nil, fmt.Errorf("taskframe: %s: %w", method, errorOfResponse(resp.StatusCode, data))
	}
	return &stream{body: resp.Body, reader: bufio.NewReaderSize(resp.Body, 64<<10)}, nil
}

// errStreamEnded is returned by next after a clean end of stream.
var errStreamEnded = errors.New("taskframe: the stream ended")

// next decodes the next message into message; errStreamEnded after a clean end,
// a *ConnectError after an end with an error, another error if the connection broke.
func (s *stream) next(message any) error {
	flags, data, err := readEnvelope(s.reader)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("taskframe: the stream was cut without an end-of-stream message: %w", io.ErrUnexpectedEOF)
		}
		return err
	}
	if flags&flagCompressed != 0 {
		return errors.New("taskframe: got a compressed message, which this SDK never asks for")
	}
	if flags&flagEndStream != 0 {
		var end endStream
		if len(data) > 0 {
			if err := json.Unmarshal(data, &end); err != nil {
				return fmt.Errorf("taskframe: decoding the end of stream: %w", err)
			}
		}
		if end.Error != nil {
			return end.Error
		}
		return errStreamEnded
	}
	if err := json.Unmarshal(data, message); err != nil {
		return fmt.Errorf("taskframe: decoding a stream message: %w", err)
	}
	return nil
}

func (s *stream) close() {
	s.body.Close()
}
