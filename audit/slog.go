package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// SlogConfig configures a SlogSink.
type SlogConfig struct {
	// Logger receives one record per event. Required.
	Logger *slog.Logger
	// Level of the records; default slog.LevelInfo. A Logger not enabled
	// at this level makes Write fail: an audit trail is never silently
	// filtered out.
	Level slog.Level
	// Message of the records; default "audit".
	Message string
	// Key of the group holding the event; default "event". The group's
	// members are the event's JSON members, in schema order.
	Key string
	// Now stamps the records; nil means time.Now.
	Now func() time.Time
}

// SlogSink writes each event as one slog record whose "event" group
// mirrors the event's JSON form. It calls the logger's Handler directly,
// so a handler error reaches Write's caller: it is synchronous when its
// handler is.
type SlogSink struct {
	cfg    SlogConfig
	closed atomic.Bool
}

// NewSlogSink validates cfg and returns the sink.
func NewSlogSink(cfg SlogConfig) (*SlogSink, error) {
	if cfg.Logger == nil {
		return nil, errors.New("audit: SlogConfig.Logger is required")
	}
	if cfg.Message == "" {
		cfg.Message = "audit"
	}
	if cfg.Key == "" {
		cfg.Key = "event"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &SlogSink{cfg: cfg}, nil
}

// Write implements Sink.
func (s *SlogSink) Write(ctx context.Context, e *Event) error {
	data, err := Encode(e)
	if err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	h := s.cfg.Logger.Handler()
	if !h.Enabled(ctx, s.cfg.Level) {
		return fmt.Errorf("audit: slog sink: the logger is not enabled at level %v", s.cfg.Level)
	}
	attrs, err := jsonAttrs(data)
	if err != nil {
		return fmt.Errorf("audit: slog sink: %w", err)
	}
	r := slog.NewRecord(s.cfg.Now(), s.cfg.Level, s.cfg.Message, 0)
	r.AddAttrs(slog.Attr{Key: s.cfg.Key, Value: slog.GroupValue(attrs...)})
	if err := h.Handle(ctx, r); err != nil {
		return fmt.Errorf("audit: slog sink: %w", err)
	}
	return nil
}

// Close implements Sink; the logger is the caller's and stays open.
func (s *SlogSink) Close() error {
	s.closed.Store(true)
	return nil
}

// jsonAttrs turns a JSON object into attributes in member order: objects
// become groups, arrays and numbers keep their JSON form (json.RawMessage
// and json.Number), strings and booleans become strings and booleans.
func jsonAttrs(data []byte) ([]slog.Attr, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	tok, err := d.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, errors.New("event is not a JSON object")
	}
	return objectAttrs(d)
}

func objectAttrs(d *json.Decoder) ([]slog.Attr, error) {
	var attrs []slog.Attr
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		v, err := jsonValue(d)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, slog.Attr{Key: key, Value: v})
	}
	if _, err := d.Token(); err != nil { // '}'
		return nil, err
	}
	return attrs, nil
}

func jsonValue(d *json.Decoder) (slog.Value, error) {
	if !d.More() {
		return slog.Value{}, errors.New("truncated JSON")
	}
	tok, err := d.Token()
	if err != nil {
		return slog.Value{}, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			attrs, err := objectAttrs(d)
			if err != nil {
				return slog.Value{}, err
			}
			return slog.GroupValue(attrs...), nil
		}
		// '[': slog has no list kind; the array stays JSON.
		items := []any{}
		for d.More() {
			var item any
			if err := d.Decode(&item); err != nil {
				return slog.Value{}, err
			}
			items = append(items, item)
		}
		if _, err := d.Token(); err != nil {
			return slog.Value{}, err
		}
		raw, err := json.Marshal(items)
		if err != nil {
			return slog.Value{}, err
		}
		return slog.AnyValue(jsonText(raw)), nil
	case string:
		return slog.StringValue(t), nil
	case bool:
		return slog.BoolValue(t), nil
	case json.Number:
		return slog.AnyValue(t), nil
	case nil:
		return slog.AnyValue(nil), nil
	}
	return slog.Value{}, fmt.Errorf("unexpected JSON token %v", tok)
}

// jsonText is JSON that both slog handlers print as JSON: JSONHandler
// through MarshalJSON, TextHandler through MarshalText.
type jsonText []byte

func (j jsonText) MarshalJSON() ([]byte, error) { return j, nil }
func (j jsonText) MarshalText() ([]byte, error) { return j, nil }
