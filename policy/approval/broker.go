package approval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
)

// Defaults for zero Config fields.
const (
	DefaultPendingTTL      = time.Hour
	DefaultMaxPendingTTL   = 24 * time.Hour
	DefaultGrantTTL        = 10 * time.Minute
	DefaultMaxGrantTTL     = 24 * time.Hour
	DefaultPollInterval    = time.Second
	MinPollInterval        = 10 * time.Millisecond
	DefaultNotifyTimeout   = 15 * time.Second
	DefaultJanitorInterval = 5 * time.Second
	DefaultRetention       = 7 * 24 * time.Hour
)

// Config configures a Broker. Only Store is required.
type Config struct {
	// Store keeps the records. Required.
	Store Store
	// Notifiers are told about every new record (not about attaches), all
	// at once, bounded by NotifyTimeout.
	Notifiers []Notifier
	// Events receives every transition; nil discards them.
	Events EventSink
	// Logger, if set, receives notifier and janitor failures.
	Logger *slog.Logger
	// URLBase, if set, makes URL(id) return URLBase+id: the page an
	// approver opens (the Handler serves it at <mount>/ui/<id>, so for a
	// Handler mounted at https://gw.example/approvals/ use
	// "https://gw.example/@gatehouse/approvals/ui/").
	URLBase string
	// Now is the clock; nil means time.Now. Times are stored in UTC,
	// truncated to microseconds (PostgreSQL's precision).
	Now func() time.Time
	// NewID makes record ids; nil means NewID (128 random bits). Ids must
	// be unguessable and match [a-z0-9_-]{1,64}.
	NewID func() (string, error)
	// PendingTTL is the default time a record waits for a decision
	// (default DefaultPendingTTL); MaxPendingTTL bounds Request.PendingTTL
	// (default DefaultMaxPendingTTL).
	PendingTTL, MaxPendingTTL time.Duration
	// GrantTTL is the default time an approval stays usable (default
	// DefaultGrantTTL); MaxGrantTTL bounds Request.GrantTTL (default
	// DefaultMaxGrantTTL).
	GrantTTL, MaxGrantTTL time.Duration
	// PollInterval is how often Wait re-reads a record even without a
	// change signal, so a lost notification delays a hold but never hangs
	// it (default DefaultPollInterval, at least MinPollInterval).
	PollInterval time.Duration
	// NotifyTimeout bounds all notifiers together for one new record
	// (default DefaultNotifyTimeout).
	NotifyTimeout time.Duration
	// JanitorInterval is how often Run expires and prunes (default
	// DefaultJanitorInterval).
	JanitorInterval time.Duration
	// Retention is how long Run keeps records in a final state before
	// pruning them (default DefaultRetention).
	Retention time.Duration
}

// Broker runs approvals over a Store. It is safe for concurrent use, and
// any number of brokers (in one process or many) may share one store.
type Broker struct {
	cfg Config
}

// New validates cfg and returns a Broker.
func New(cfg Config) (*Broker, error) {
	if cfg.Store == nil {
		return nil, invalid("Config.Store", "required")
	}
	for i, n := range cfg.Notifiers {
		if n == nil {
			return nil, invalid(fmt.Sprintf("Config.Notifiers[%d]", i), "nil")
		}
	}
	if cfg.URLBase != "" {
		if _, err := url.Parse(cfg.URLBase); err != nil {
			return nil, invalid("Config.URLBase", "%v", err)
		}
	}
	durations := []struct {
		name string
		p    *time.Duration
		def  time.Duration
	}{
		{"PendingTTL", &cfg.PendingTTL, DefaultPendingTTL},
		{"MaxPendingTTL", &cfg.MaxPendingTTL, DefaultMaxPendingTTL},
		{"GrantTTL", &cfg.GrantTTL, DefaultGrantTTL},
		{"MaxGrantTTL", &cfg.MaxGrantTTL, DefaultMaxGrantTTL},
		{"PollInterval", &cfg.PollInterval, DefaultPollInterval},
		{"NotifyTimeout", &cfg.NotifyTimeout, DefaultNotifyTimeout},
		{"JanitorInterval", &cfg.JanitorInterval, DefaultJanitorInterval},
		{"Retention", &cfg.Retention, DefaultRetention},
	}
	for _, d := range durations {
		switch {
		case *d.p < 0:
			return nil, invalid("Config."+d.name, "negative")
		case *d.p == 0:
			*d.p = d.def
		}
	}
	switch {
	case cfg.PendingTTL > cfg.MaxPendingTTL:
		return nil, invalid("Config.PendingTTL", "above MaxPendingTTL %s", cfg.MaxPendingTTL)
	case cfg.GrantTTL > cfg.MaxGrantTTL:
		return nil, invalid("Config.GrantTTL", "above MaxGrantTTL %s", cfg.MaxGrantTTL)
	case cfg.PollInterval < MinPollInterval:
		return nil, invalid("Config.PollInterval", "below %s", MinPollInterval)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = NewID
	}
	cfg.Notifiers = append([]Notifier(nil), cfg.Notifiers...)
	return &Broker{cfg: cfg}, nil
}

func (b *Broker) now() time.Time { return b.cfg.Now().UTC().Truncate(time.Microsecond) }

// URL returns the approval page for id: Config.URLBase + id, or "" when no
// URLBase is configured.
func (b *Broker) URL(id string) string {
	if b.cfg.URLBase == "" {
		return ""
	}
	return b.cfg.URLBase + url.PathEscape(id)
}

func (b *Broker) emit(ctx context.Context, e Event) {
	if b.cfg.Events == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = b.now()
	}
	e.Record = e.Record.Clone()
	b.cfg.Events.ApprovalEvent(ctx, e)
}

func (b *Broker) logWarn(msg string, args ...any) {
	if b.cfg.Logger != nil {
		b.cfg.Logger.Warn(msg, args...)
	}
}

// errUnchanged makes an Update write nothing without reporting an error.
var errUnchanged = errors.New("approval: unchanged")

// maxCreateAttempts bounds Request's create-or-attach loop (each retry
// follows a record leaving the active set between two store calls).
const maxCreateAttempts = 4

// Request creates a pending record for req, or attaches to the active
// record (pending, or approved with its grant unused) of an identical
// earlier request by the same principal: SDK retries do not multiply
// approvals. created reports which. A record whose deadline passed is
// expired first and never attached to.
//
// If the same principal's identical request was denied and that record's
// pending window (ExpiresAt) has not passed, Request returns the denied
// record (created false) instead of filing a new one, so a queued client
// that keeps retrying learns of the denial.
//
// Notifiers run for new records only. Errors: *InvalidError for a bad
// Request; a store error as is (fail closed); *UnavailableError (with the
// stored record in both the error and the return value) when the record
// cannot be approved by anyone (a requirement without groups, also on
// attach) or when every notifier failed.
func (b *Broker) Request(ctx context.Context, req Request) (rec Record, created bool, err error) {
	id, err := b.cfg.NewID()
	if err != nil {
		return Record{}, false, fmt.Errorf("approval: new id: %w", err)
	}
	if !validID(id) {
		return Record{}, false, invalid("Config.NewID", "produced an id outside [a-z0-9_-]{1,%d}", MaxIDLen)
	}
	now := b.now()
	fresh, err := b.record(req, id, now)
	if err != nil {
		return Record{}, false, err
	}
	denied, err := b.cfg.Store.List(ctx, Filter{Principal: fresh.Principal, Fingerprint: fresh.Fingerprint, State: Denied, Limit: 1})
	if err != nil {
		return Record{}, false, err
	}
	if len(denied) == 1 && now.Before(denied[0].ExpiresAt) {
		return denied[0], false, nil
	}
	for range maxCreateAttempts {
		got, created, err := b.cfg.Store.Create(ctx, fresh)
		if err != nil {
			return Record{}, false, err
		}
		if created {
			b.emit(ctx, Event{Type: EventRequested, Record: got, Actor: got.Principal})
			if !got.Approvable() {
				return got, true, &UnavailableError{Record: got, Err: ErrNoApprovers}
			}
			if err := b.notify(ctx, got); err != nil {
				return got, true, &UnavailableError{Record: got, Err: err}
			}
			return got, true, nil
		}
		if b.due(&got, b.now()) {
			if _, err := b.expire(ctx, got.ID, "expired: deadline passed", false); err != nil && !errors.Is(err, ErrNotPending) {
				return Record{}, false, err
			}
			continue
		}
		b.emit(ctx, Event{Type: EventAttached, Record: got, Actor: fresh.Principal})
		if !got.Approvable() {
			return got, false, &UnavailableError{Record: got, Err: ErrNoApprovers}
		}
		return got, false, nil
	}
	return Record{}, false, fmt.Errorf("approval: create or attach for %s: record kept changing", fresh.Principal)
}

// notify runs every notifier at once for a new record and returns nil if
// at least one delivered (or none is configured), else every error joined.
// Each failure is logged and emitted as EventNotifyFailed. Notifications
// outlive the caller's cancellation (a client that gave up still left a
// record approvers must see) but not NotifyTimeout.
func (b *Broker) notify(ctx context.Context, rec Record) error {
	if len(b.cfg.Notifiers) == 0 {
		return nil
	}
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.NotifyTimeout)
	defer cancel()
	n := Notification{Record: rec, URL: b.URL(rec.ID)}
	errs := make([]error, len(b.cfg.Notifiers))
	var wg sync.WaitGroup
	for i, nt := range b.cfg.Notifiers {
		wg.Go(func() {
			n := n
			n.Record = rec.Clone()
			errs[i] = nt.Notify(nctx, n)
		})
	}
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err == nil {
			continue
		}
		failed++
		errs[i] = fmt.Errorf("approval: notifier %d: %w", i, err)
		b.logWarn("approval: notifier failed", "id", rec.ID, "notifier", i, "err", err)
		b.emit(ctx, Event{Type: EventNotifyFailed, Record: rec, Err: err, Notifier: i})
	}
	if failed < len(errs) {
		return nil
	}
	return errors.Join(errs...)
}

// due reports whether rec's current deadline has passed at now.
func (b *Broker) due(rec *Record, now time.Time) bool {
	switch rec.State {
	case Pending:
		return !now.Before(rec.ExpiresAt)
	case Approved:
		return !now.Before(rec.GrantExpiresAt)
	}
	return false
}

// expire moves id to Expired if its deadline passed (or, with force, if it
// is active at all) and emits EventExpired. It returns ErrNotPending if the
// record is not active, and the unchanged record with a nil error if it is
// active and not due.
func (b *Broker) expire(ctx context.Context, id, note string, force bool) (Record, error) {
	changed := false
	rec, err := b.cfg.Store.Update(ctx, id, func(r *Record) error {
		if !r.State.Active() {
			return fmt.Errorf("%w: %s", ErrNotPending, r.State)
		}
		now := b.now()
		if !force && !b.due(r, now) {
			return errUnchanged
		}
		if r.State == Pending {
			r.DecidedAt = now
		}
		r.State, r.Note, r.UpdatedAt = Expired, note, now
		changed = true
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return rec, nil
	}
	if err != nil {
		return rec, err
	}
	if changed {
		b.emit(ctx, Event{Type: EventExpired, Record: rec, Reason: note})
	}
	return rec, nil
}

// Expire withdraws an active record now (pending, or approved with the
// grant unused): it becomes Expired with reason as its Note. Use it when
// the rule's unavailable setting is reject, or to revoke a grant. A record
// already final gives ErrNotPending.
func (b *Broker) Expire(ctx context.Context, id, reason string) (Record, error) {
	if len(reason) > MaxReasonLen {
		return Record{}, invalid("reason", "longer than %d bytes", MaxReasonLen)
	}
	return b.expire(ctx, id, "expired: "+reason, true)
}

// Get returns the record with id.
func (b *Broker) Get(ctx context.Context, id string) (Record, error) {
	return b.cfg.Store.Get(ctx, id)
}

// List returns the records matching f, newest first.
func (b *Broker) List(ctx context.Context, f Filter) ([]Record, error) {
	f, err := f.Check()
	if err != nil {
		return nil, err
	}
	return b.cfg.Store.List(ctx, f)
}

// Approve records approver's approval of id. When every requirement has
// its minimum of distinct approvers the record becomes Approved and one
// grant is available for GrantTTL. Errors: ErrNotFound; ErrSelfApproval if
// approver is the requester; ErrNotApprover if approver is in no approver
// group of the record; ErrNotPending if the record is decided (an
// approver repeating the vote it already cast gets the record and no
// error). A store error is returned as is and approves nothing.
func (b *Broker) Approve(ctx context.Context, id string, approver identity.Principal, reason string) (Record, error) {
	return b.vote(ctx, id, approver, true, reason)
}

// Deny records approver's denial of id: any eligible approver's denial
// denies the record at once, even after other approvals. Errors as for
// Approve.
func (b *Broker) Deny(ctx context.Context, id string, approver identity.Principal, reason string) (Record, error) {
	return b.vote(ctx, id, approver, false, reason)
}

func (b *Broker) vote(ctx context.Context, id string, approver identity.Principal, approve bool, reason string) (Record, error) {
	if len(reason) > MaxReasonLen {
		return Record{}, invalid("reason", "longer than %d bytes", MaxReasonLen)
	}
	who := approver.String()
	var ev EventType
	rec, err := b.cfg.Store.Update(ctx, id, func(r *Record) error {
		ev = ""
		if approver.Subject == "" {
			return fmt.Errorf("%w: anonymous approver", ErrNotApprover)
		}
		if who == r.Principal {
			return ErrSelfApproval
		}
		groups := r.approverGroups(approver)
		if len(groups) == 0 {
			return ErrNotApprover
		}
		prev := r.voteOf(who)
		if prev >= 0 && r.Votes[prev].Approve == approve {
			return errUnchanged
		}
		if r.State != Pending {
			return fmt.Errorf("%w: %s", ErrNotPending, r.State)
		}
		now := b.now()
		if !now.Before(r.ExpiresAt) {
			r.State, r.DecidedAt, r.UpdatedAt, r.Note = Expired, now, now, "expired: no decision before the deadline"
			ev = EventExpired
			return nil
		}
		v := Vote{Approver: who, Email: approver.Email, Groups: groups, Approve: approve, Reason: reason, At: now}
		if prev >= 0 {
			r.Votes[prev] = v // an approver who approved may still deny while pending
		} else {
			r.Votes = append(r.Votes, v)
		}
		r.UpdatedAt = now
		switch {
		case !approve:
			r.State, r.DecidedAt, r.Note = Denied, now, reason
			ev = EventDenied
		case r.satisfied():
			r.State, r.DecidedAt, r.GrantExpiresAt = Approved, now, now.Add(r.GrantTTL)
			ev = EventApproved
		default:
			ev = EventVoted
		}
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return rec, nil
	}
	if err != nil {
		return rec, err
	}
	if ev == EventExpired {
		b.emit(ctx, Event{Type: EventExpired, Record: rec, Reason: rec.Note})
		return rec, fmt.Errorf("%w: expired", ErrNotPending)
	}
	b.emit(ctx, Event{Type: ev, Record: rec, Actor: who, Reason: reason})
	return rec, nil
}

// Wait blocks until the record with id leaves Pending and returns it
// (Approved, Denied, Expired or already Consumed), or until ctx is done and
// returns ctx.Err(). A pending record whose deadline passes is expired by
// Wait itself, so a hold never outlives it. Wait wakes on the store's
// change signal and re-reads at least every PollInterval; it starts no
// goroutine. A store error ends the wait with that error (fail closed).
func (b *Broker) Wait(ctx context.Context, id string) (Record, error) {
	changed, stop := b.cfg.Store.Watch(id)
	defer stop()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return Record{}, err
		}
		rec, err := b.cfg.Store.Get(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return Record{}, ctx.Err()
			}
			return Record{}, err
		}
		if rec.State != Pending {
			return rec, nil
		}
		now := b.now()
		if b.due(&rec, now) {
			rec, err = b.expire(ctx, id, "expired: no decision before the deadline", false)
			if err != nil && !errors.Is(err, ErrNotPending) {
				return Record{}, err
			}
			continue
		}
		d := min(b.cfg.PollInterval, rec.ExpiresAt.Sub(now)+time.Millisecond)
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return Record{}, ctx.Err()
		case <-changed:
		case <-timer.C:
		}
	}
}

// ConsumeGrant uses the grant of the approved record bound to principal and
// fingerprint, once: of any number of concurrent calls (across replicas
// sharing the store) exactly one gets ok true, and only while the grant is
// within its TTL. A different principal or fingerprint never matches. A
// grant found past its TTL is expired. On a store error ok is false.
func (b *Broker) ConsumeGrant(ctx context.Context, principal identity.Principal, fingerprint string) (rec Record, ok bool, err error) {
	who := principal.String()
	if who == "" || fingerprint == "" {
		return Record{}, false, nil
	}
	found, err := b.cfg.Store.List(ctx, Filter{Principal: who, Fingerprint: fingerprint, State: Approved, Limit: 1})
	if err != nil || len(found) == 0 {
		return Record{}, false, err
	}
	var ev EventType
	rec, err = b.cfg.Store.Update(ctx, found[0].ID, func(r *Record) error {
		ev = ""
		if r.State != Approved || r.Principal != who || r.Fingerprint != fingerprint {
			return errUnchanged
		}
		now := b.now()
		if !now.Before(r.GrantExpiresAt) {
			r.State, r.UpdatedAt, r.Note = Expired, now, "expired: grant unused before its TTL"
			ev = EventExpired
			return nil
		}
		r.State, r.ConsumedAt, r.UpdatedAt = Consumed, now, now
		ev = EventConsumed
		return nil
	})
	if errors.Is(err, errUnchanged) || errors.Is(err, ErrNotFound) {
		return rec, false, nil // raced: another caller used it, or it was pruned
	}
	if err != nil {
		return Record{}, false, err
	}
	switch ev {
	case EventConsumed:
		b.emit(ctx, Event{Type: EventConsumed, Record: rec, Actor: who})
		return rec, true, nil
	case EventExpired:
		b.emit(ctx, Event{Type: EventExpired, Record: rec, Reason: rec.Note})
	}
	return rec, false, nil
}

// expireBatches bounds one ExpireDue call.
const expireBatches = 10

// ExpireDue expires every record whose deadline has passed (pending past
// ExpiresAt, approved past GrantExpiresAt), up to expireBatches batches of
// DefaultListLimit, and returns how many it expired. Replicas may run it
// concurrently: each record expires once.
func (b *Broker) ExpireDue(ctx context.Context) (int, error) {
	n := 0
	for range expireBatches {
		due, err := b.cfg.Store.List(ctx, Filter{DueBefore: b.now(), Limit: DefaultListLimit})
		if err != nil {
			return n, err
		}
		progress := 0
		for _, r := range due {
			note := "expired: no decision before the deadline"
			if r.State == Approved {
				note = "expired: grant unused before its TTL"
			}
			got, err := b.expire(ctx, r.ID, note, false)
			switch {
			case errors.Is(err, ErrNotPending) || errors.Is(err, ErrNotFound):
				progress++ // another replica got there first
			case err != nil:
				return n, err
			case got.State == Expired:
				n++
				progress++
			}
		}
		if len(due) < DefaultListLimit || progress == 0 {
			break
		}
	}
	return n, nil
}

// Run is the janitor: every JanitorInterval it expires due records and
// prunes final records older than Retention, until ctx is done (then it
// returns nil). Failures are logged and retried at the next tick. Running
// it on every replica is safe.
func (b *Broker) Run(ctx context.Context) error {
	t := time.NewTicker(b.cfg.JanitorInterval)
	defer t.Stop()
	for {
		if _, err := b.ExpireDue(ctx); err != nil && ctx.Err() == nil {
			b.logWarn("approval: expiring records failed", "err", err)
		}
		if _, err := b.cfg.Store.Prune(ctx, b.now().Add(-b.cfg.Retention)); err != nil && ctx.Err() == nil {
			b.logWarn("approval: pruning records failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
