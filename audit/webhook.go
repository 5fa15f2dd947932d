package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of WebhookConfig.
const (
	DefaultWebhookBatch    = 100
	DefaultWebhookBytes    = 1 << 20
	DefaultWebhookQueue    = 10000
	DefaultWebhookInterval = time.Second
	DefaultWebhookTimeout  = 10 * time.Second
	DefaultWebhookAttempts = 5
)

// The headers of a webhook delivery.
const (
	// HeaderSignature is "t=<unix seconds>,v1=<hex HMAC-SHA256>" over
	// "<unix seconds>.<body>", keyed with WebhookConfig.Secret.
	HeaderSignature = "X-Gatehouse-Signature"
	// HeaderBatch identifies a batch; retries of a batch repeat it, so a
	// receiver can drop duplicates (event ids are unique too).
	HeaderBatch = "X-Gatehouse-Batch"
	// HeaderAttempt counts deliveries of the batch, from 1.
	HeaderAttempt = "X-Gatehouse-Attempt"
)

// RetryConfig bounds redelivery of a failed batch.
type RetryConfig struct {
	// Attempts is the total number of tries per batch; default
	// DefaultWebhookAttempts.
	Attempts int
	// MinBackoff is the wait after the first failure, doubled after each
	// further one up to MaxBackoff; defaults 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration
}

// WebhookConfig configures a Webhook sink.
type WebhookConfig struct {
	// URL receives POSTs of JSON arrays of events
	// (Content-Type: application/json). Required; http or https.
	URL string
	// Secret, if set, signs every delivery (HeaderSignature); receivers
	// check it with VerifyWebhookSignature. Use at least 32 random bytes.
	Secret []byte
	// Header is added to every delivery (an Authorization header for the
	// receiver, say).
	Header http.Header
	// Client sends the deliveries; nil means a client with Timeout.
	Client *http.Client
	// Timeout bounds one delivery attempt; default DefaultWebhookTimeout.
	Timeout time.Duration
	// BatchSize and MaxBatchBytes bound one delivery; defaults
	// DefaultWebhookBatch events and DefaultWebhookBytes. A single event
	// larger than MaxBatchBytes is refused with ErrTooLarge.
	BatchSize     int
	MaxBatchBytes int
	// FlushInterval is the longest an event waits for its batch to fill;
	// default DefaultWebhookInterval.
	FlushInterval time.Duration
	// Queue bounds the events waiting for delivery; default
	// DefaultWebhookQueue. Overflow says what happens when it is full.
	Queue    int
	Overflow Overflow
	Retry    RetryConfig
	// CloseTimeout bounds Close's final deliveries; default
	// DefaultCloseTimeout. Events not delivered by then are dropped and
	// counted.
	CloseTimeout time.Duration
	// Now is the clock for signatures; nil means time.Now.
	Now func() time.Time
	// Logger, if set, receives delivery failures.
	Logger *slog.Logger
}

// WebhookStats counts a Webhook's events and deliveries.
type WebhookStats struct {
	Queued    uint64 // accepted by Write
	Delivered uint64 // in batches the receiver acknowledged (2xx)
	Failed    uint64 // in batches refused (4xx) or still failing after Attempts
	Dropped   uint64 // queue full under Drop, or abandoned by Close
	Batches   uint64 // batches acknowledged
	Retries   uint64 // delivery attempts after the first
}

// Webhook is a queueing Sink that POSTs batches of events to an HTTP
// endpoint, retrying with backoff. Write only queues: it does not
// acknowledge stored events (Acknowledger), so a fail-closed Trail refuses
// it, and every event it accepts and then fails to deliver or drops is
// counted (Stats, Lost). Batches are delivered one at a time, in order.
// It is safe for concurrent use.
type Webhook struct {
	cfg WebhookConfig
	url string
	q   chan []byte

	mu       sync.RWMutex
	closed   atomic.Bool
	stop     chan struct{}
	done     chan struct{}
	flushReq chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	closeMu  sync.Mutex

	progMu    sync.Mutex
	progCond  sync.Cond
	processed uint64 // events taken off the queue and settled
	lastErr   error  // last delivery failure, reported by Flush

	queued, delivered, failed, dropped, batches, retries atomic.Uint64
	batchID                                              atomic.Uint64
}

// NewWebhook validates cfg and starts the delivery goroutine.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("audit: WebhookConfig.URL %q must be an absolute http or https URL", cfg.URL)
	}
	switch {
	case cfg.BatchSize < 0, cfg.MaxBatchBytes < 0, cfg.Queue < 0:
		return nil, errors.New("audit: WebhookConfig.BatchSize, MaxBatchBytes and Queue must not be negative")
	case cfg.FlushInterval < 0, cfg.Timeout < 0, cfg.CloseTimeout < 0:
		return nil, errors.New("audit: WebhookConfig durations must not be negative")
	case cfg.Retry.Attempts < 0, cfg.Retry.MinBackoff < 0, cfg.Retry.MaxBackoff < 0:
		return nil, errors.New("audit: WebhookConfig.Retry must not be negative")
	case cfg.Overflow != Block && cfg.Overflow != Drop:
		return nil, fmt.Errorf("audit: WebhookConfig.Overflow %d is not Block or Drop", int(cfg.Overflow))
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.BatchSize, DefaultWebhookBatch)
	def(&cfg.MaxBatchBytes, DefaultWebhookBytes)
	def(&cfg.Queue, DefaultWebhookQueue)
	def(&cfg.Retry.Attempts, DefaultWebhookAttempts)
	defd(&cfg.FlushInterval, DefaultWebhookInterval)
	defd(&cfg.Timeout, DefaultWebhookTimeout)
	defd(&cfg.CloseTimeout, DefaultCloseTimeout)
	defd(&cfg.Retry.MinBackoff, 100*time.Millisecond)
	defd(&cfg.Retry.MaxBackoff, 10*time.Second)
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Header = cfg.Header.Clone()
	w := &Webhook{
		cfg: cfg, url: u.String(),
		q:    make(chan []byte, cfg.Queue),
		stop: make(chan struct{}), done: make(chan struct{}), flushReq: make(chan struct{}, 1),
	}
	w.progCond.L = &w.progMu
	w.ctx, w.cancel = context.WithCancel(context.Background())
	go w.run()
	return w, nil
}

// Write implements Sink: it encodes e and queues it for delivery.
func (w *Webhook) Write(ctx context.Context, e *Event) error {
	data, err := Encode(e)
	if err != nil {
		return err
	}
	if len(data)+2 > w.cfg.MaxBatchBytes {
		return fmt.Errorf("%w: event %s is %d bytes, WebhookConfig.MaxBatchBytes is %d", ErrTooLarge, e.ID, len(data), w.cfg.MaxBatchBytes)
	}
	if w.closed.Load() {
		return ErrClosed
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed.Load() {
		return ErrClosed
	}
	select {
	case w.q <- data:
		w.queued.Add(1)
		return nil
	default:
	}
	if w.cfg.Overflow == Drop {
		w.dropped.Add(1)
		return nil
	}
	select {
	case w.q <- data:
		w.queued.Add(1)
		return nil
	case <-w.stop:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("audit: webhook queue full: %w", ctx.Err())
	}
}

func (w *Webhook) run() {
	defer close(w.done)
	var batch [][]byte
	size := 0
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	send := func() {
		if len(batch) > 0 {
			w.deliver(batch)
			batch, size = batch[:0], 0
		}
		timer.Stop()
	}
	for {
		var ev []byte
		var ok bool
		if len(batch) == 0 {
			select {
			case ev, ok = <-w.q:
			case <-w.flushReq:
				continue
			}
		} else {
			select {
			case ev, ok = <-w.q:
			case <-timer.C:
				send()
				continue
			case <-w.flushReq:
				send()
				continue
			}
		}
		if !ok {
			send()
			return
		}
		if size+len(ev)+1 > w.cfg.MaxBatchBytes-2 {
			send()
		}
		if len(batch) == 0 {
			timer.Reset(w.cfg.FlushInterval)
		}
		batch = append(batch, ev)
		size += len(ev) + 1
		if len(batch) >= w.cfg.BatchSize {
			send()
		}
	}
}

// deliver posts one batch, retrying, and settles its events.
func (w *Webhook) deliver(batch [][]byte) {
	n := uint64(len(batch))
	settle := func(err error) {
		w.progMu.Lock()
		w.processed += n
		if err != nil {
			w.lastErr = err
		}
		w.progCond.Broadcast()
		w.progMu.Unlock()
	}
	if w.ctx.Err() != nil {
		w.dropped.Add(n)
		settle(fmt.Errorf("audit: webhook: %d event(s) abandoned at close", n))
		return
	}
	body := make([]byte, 0, 2+len(batch)*256)
	body = append(body, '[')
	for i, ev := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, ev...)
	}
	body = append(body, ']')
	id := strconv.FormatUint(w.batchID.Add(1), 10)
	backoff := w.cfg.Retry.MinBackoff
	var err error
	for attempt := 1; attempt <= w.cfg.Retry.Attempts; attempt++ {
		if attempt > 1 {
			w.retries.Add(1)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-w.ctx.Done():
				t.Stop()
				w.dropped.Add(n)
				settle(fmt.Errorf("audit: webhook: batch %s abandoned at close after %d attempt(s): %w", id, attempt-1, err))
				return
			}
			backoff = min(2*backoff, w.cfg.Retry.MaxBackoff)
		}
		var retry bool
		retry, err = w.post(body, id, attempt)
		if err == nil {
			w.delivered.Add(n)
			w.batches.Add(1)
			settle(nil)
			return
		}
		if w.cfg.Logger != nil {
			w.cfg.Logger.Warn("audit: webhook delivery failed", "batch", id, "attempt", attempt, "events", n, "err", err)
		}
		if !retry {
			break
		}
	}
	w.failed.Add(n)
	if w.cfg.Logger != nil {
		w.cfg.Logger.Error("audit: webhook gave up on a batch", "batch", id, "events", n, "err", err)
	}
	settle(err)
}

// post makes one delivery attempt; retry says whether another may help.
func (w *Webhook) post(body []byte, id string, attempt int) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(w.ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("audit: webhook: %w", err)
	}
	for k, vs := range w.cfg.Header {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderBatch, id)
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
	if len(w.cfg.Secret) > 0 {
		req.Header.Set(HeaderSignature, SignWebhook(w.cfg.Secret, w.cfg.Now(), body))
	}
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return true, fmt.Errorf("audit: webhook: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		return true, fmt.Errorf("audit: webhook: receiver answered %s", resp.Status)
	}
	return false, fmt.Errorf("audit: webhook: receiver refused the batch: %s", resp.Status)
}

// SignWebhook returns the HeaderSignature value for body at time t.
func SignWebhook(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature is returned by VerifyWebhookSignature.
var ErrBadSignature = errors.New("audit: webhook signature is missing, malformed, stale or wrong")

// VerifyWebhookSignature checks a HeaderSignature value against body, for
// receivers: the MAC must match and its time must be within tolerance of
// now (which bounds replays).
func VerifyWebhookSignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrBadSignature
	}
	want := SignWebhook(secret, time.Unix(sec, 0), body)
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig)) {
		return ErrBadSignature
	}
	return nil
}

// Flush sends the queued events now instead of waiting for their batch to
// fill, and waits until every event queued before the call was delivered,
// refused, or dropped, or until ctx is done. It returns the last delivery
// error seen since the previous Flush, if any.
func (w *Webhook) Flush(ctx context.Context) error {
	target := w.queued.Load()
	select {
	case w.flushReq <- struct{}{}:
	default:
	}
	stopWatch := context.AfterFunc(ctx, func() {
		w.progMu.Lock()
		w.progCond.Broadcast()
		w.progMu.Unlock()
	})
	defer stopWatch()
	w.progMu.Lock()
	defer w.progMu.Unlock()
	for w.processed < target {
		if ctx.Err() != nil {
			return fmt.Errorf("audit: webhook flush: %w", ctx.Err())
		}
		select {
		case <-w.done:
			return ErrClosed
		default:
		}
		w.progCond.Wait()
	}
	err := w.lastErr
	w.lastErr = nil
	return err
}

// Stats returns the sink's counters.
func (w *Webhook) Stats() WebhookStats {
	return WebhookStats{
		Queued: w.queued.Load(), Delivered: w.delivered.Load(), Failed: w.failed.Load(),
		Dropped: w.dropped.Load(), Batches: w.batches.Load(), Retries: w.retries.Load(),
	}
}

// Dropped returns the number of events dropped so far.
func (w *Webhook) Dropped() uint64 { return w.dropped.Load() }

// AcknowledgesStored implements Acknowledger: false, Write only queues.
func (w *Webhook) AcknowledgesStored() bool { return false }

// Lost implements LossReporter: events accepted and then refused by the
// receiver, failed after every attempt, or dropped.
func (w *Webhook) Lost() uint64 { return w.failed.Load() + w.dropped.Load() }

// Close stops accepting events, delivers what is queued within
// CloseTimeout and stops the delivery goroutine. It returns an error if
// events were refused, failed or were abandoned during the final
// deliveries.
func (w *Webhook) Close() error {
	w.closeMu.Lock()
	defer w.closeMu.Unlock()
	if w.closed.Swap(true) {
		return nil
	}
	close(w.stop)
	w.mu.Lock()
	close(w.q)
	w.mu.Unlock()
	failedBefore, droppedBefore := w.failed.Load(), w.dropped.Load()
	t := time.NewTimer(w.cfg.CloseTimeout)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
		w.cancel()
		<-w.done
	}
	w.cancel()
	w.progMu.Lock()
	w.progCond.Broadcast()
	w.progMu.Unlock()
	if f, d := w.failed.Load()-failedBefore, w.dropped.Load()-droppedBefore; f+d > 0 {
		return fmt.Errorf("audit: webhook close: %d event(s) not delivered (%d failed, %d abandoned)", f+d, f, d)
	}
	return nil
}
