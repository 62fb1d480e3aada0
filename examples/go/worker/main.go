// A Taskframe worker in Go: it registers three handlers with the sidecar
// (TASKFRAME_SOCKET, set by `task run` for the workers of a pipeline's
// `workers:` map) and serves them until it is stopped (SIGTERM: it drains).
package main

import (
	"context"
	"fmt"
	"log"
	"strings"

	"taskframe/sdk"
)

type text struct {
	Text string `json:"text"`
}

type counted struct {
	Words int `json:"words"`
}

func main() {
	w := sdk.NewWorker(sdk.Options{Name: "example-go", Concurrency: 8})

	w.Handle("count-words", sdk.JSONHandler(func(ctx *sdk.Context, in text) (counted, error) {
		words := len(strings.Fields(in.Text))
		ctx.Logf("counted %d words", words)
		return counted{Words: words}, nil
	}))

	// A plain handler: bytes in (here text/plain), bytes out.
	w.Handle("shout", func(ctx *sdk.Context, in []byte) ([]byte, error) {
		if ctx.ContentType != "" && !strings.HasPrefix(ctx.ContentType, "text/") {
			return nil, sdk.NonRetryable(fmt.Errorf("expected text, got %s", ctx.ContentType))
		}
		ctx.Heartbeat(0.5, "shouting")
		return ctx.Text(strings.ToUpper(string(in)) + "!"), nil
	})

	w.Handle("flaky", sdk.JSONHandler(func(ctx *sdk.Context, in struct{ Failures int }) (map[string]int, error) {
		if ctx.Attempt <= in.Failures {
			return nil, fmt.Errorf("attempt %d fails on purpose", ctx.Attempt)
		}
		ctx.Logf("succeeded on attempt %d", ctx.Attempt)
		return map[string]int{"attempt": ctx.Attempt}, nil
	}))

	if err := w.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}
