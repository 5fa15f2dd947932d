package approval

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Notification is what a Notifier delivers: a new record and the page
// where approvers act on it.
type Notification struct {
	Record Record
	// URL is Broker.URL(Record.ID); empty when Config.URLBase is unset.
	URL string
}

// Notifier tells approvers about a new record.
//
// Contract: Notify may be called concurrently; it must return when ctx is
// done (the broker bounds all notifiers by Config.NotifyTimeout and waits
// for them); a nil error means the message was accepted for delivery. The
// broker logs and emits every error, and treats a record none of whose
// notifiers delivered as unavailable.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, n Notification) error

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, n Notification) error { return f(ctx, n) }

// Retry defaults shared by Webhook and Slack.
const (
	DefaultMaxAttempts    = 4
	MaxMaxAttempts        = 10
	DefaultInitialBackoff = 250 * time.Millisecond
	MaxBackoff            = 5 * time.Second
	DefaultMaxElapsed     = 10 * time.Second
	DefaultHTTPTimeout    = 5 * time.Second
	maxErrorBody          = 512
)

// Retry bounds the delivery attempts of an HTTP notifier.
type Retry struct {
	// MaxAttempts is the number of tries (default DefaultMaxAttempts, at
	// most MaxMaxAttempts).
	MaxAttempts int
	// InitialBackoff is the pause after the first failure; it doubles
	// after each, up to MaxBackoff, with jitter (default
	// DefaultInitialBackoff).
	InitialBackoff time.Duration
	// MaxElapsed bounds all attempts and pauses together (default
	// DefaultMaxElapsed); the caller's ctx may end them sooner.
	MaxElapsed time.Duration
}

func (r Retry) check(prefix string) (Retry, error) {
	switch {
	case r.MaxAttempts < 0 || r.MaxAttempts > MaxMaxAttempts:
		return r, invalid(prefix+".MaxAttempts", "must be between 0 and %d", MaxMaxAttempts)
	case r.InitialBackoff < 0:
		return r, invalid(prefix+".InitialBackoff", "negative")
	case r.MaxElapsed < 0:
		return r, invalid(prefix+".MaxElapsed", "negative")
	}
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	if r.InitialBackoff == 0 {
		r.InitialBackoff = DefaultInitialBackoff
	}
	if r.MaxElapsed == 0 {
		r.MaxElapsed = DefaultMaxElapsed
	}
	return r, nil
}

// DeliveryError reports a notification that no attempt delivered. It names
// no URL: webhook URLs (Slack's especially) are secrets.
type DeliveryError struct {
	Attempts int
	// Status is the last HTTP status received, 0 if none.
	Status int
	// Err is the last transport error, or a description of the last
	// response.
	Err error
}

func (e *DeliveryError) Error() string {
	return fmt.Sprintf("approval: delivery failed after %d attempt(s): %v", e.Attempts, e.Err)
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// post sends body to url with retries: transport errors, 429 and 5xx are
// retried with exponential backoff and jitter (a Retry-After within the
// remaining budget is honoured); any other non-2xx is final.
func post(ctx context.Context, client *http.Client, r Retry, url string, body []byte, header http.Header) error {
	ctx, cancel := context.WithTimeout(ctx, r.MaxElapsed)
	defer cancel()
	backoff := r.InitialBackoff
	last := &DeliveryError{}
	for attempt := 1; ; attempt++ {
		last.Attempts = attempt
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			last.Err = err
			return last
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		var wait time.Duration
		if err != nil {
			last.Status, last.Err = 0, errors.Unwrap(err) // *url.Error would repeat the URL
			if last.Err == nil {
				last.Err = err
			}
		} else {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				return nil
			}
			last.Status, last.Err = resp.StatusCode, fmt.Errorf("HTTP %d: %q", resp.StatusCode, bytes.TrimSpace(msg))
			if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
				return last
			}
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
				wait = time.Duration(s) * time.Second
			}
		}
		if attempt >= r.MaxAttempts || ctx.Err() != nil {
			return last
		}
		if wait == 0 {
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(backoff*2, MaxBackoff)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return last
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return last
		case <-t.C:
		}
	}
}

func httpClient(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return &http.Client{Timeout: DefaultHTTPTimeout}
}
