// Package approval holds risky calls for a human decision: the approval
// broker, its stores, and the approvers' HTTP surfaces and notifiers.
//
// # Model
//
// When policy decides that a call needs approval, the proxy turns the
// decision into a plain-data [Request]: the caller's identity.Principal,
// the IAM action and resource ARNs, a fingerprint of the effective request
// (computed by the caller; awsproxy covers principal, action, resources,
// method, path and query as forwarded, every header that changes what AWS
// does, the body's SHA-256 in every payload mode, and the digest of the
// policy decision), one [Requirement] per matching approve rule (rule name,
// reason, approver groups, minimum approvals), TTLs, the policy revision,
// and a [Detail] that shows approvers everything the fingerprint covers:
// bound headers, the body's size, digest and masked preview. An approver
// never approves bytes they could not see: what the page cannot show (a
// binary or streamed body) it names by size and SHA-256. The package does
// not import policy or know about AWS.
//
// [Broker.Request] files a [Record] for it, or attaches to the active
// record of an identical earlier request by the same principal (SDK
// retries do not multiply approvals). Approvers call [Broker.Approve] or
// [Broker.Deny]; [Broker.Wait] blocks until the record is decided; and
// [Broker.ConsumeGrant] lets the identical request through exactly once.
// [Broker.Gate] composes these into the whole hold/queue path for the
// proxy.
//
// # States
//
//	pending  -> approved  enough distinct approvals: one grant, usable until GrantExpiresAt
//	pending  -> denied    any eligible approver denied
//	pending  -> expired   no decision before ExpiresAt (Config.PendingTTL), or Broker.Expire
//	approved -> consumed  the identical request by the same principal used the grant
//	approved -> expired   the grant was not used within GrantTTL, or Broker.Expire
//
// denied, expired and consumed are final. Stores refuse any other move
// ([CheckUpdate]). A denied record is returned (not replaced) to an
// identical retry until its pending window ends, so a queued client learns
// of the denial instead of filing a fresh request.
//
// # Separation of duties
//
//   - The requester never votes on its own record: compared by
//     identity.Principal String() (issuer and subject), so the same subject
//     from another issuer is another identity ([ErrSelfApproval]).
//   - An approver must belong to at least one group named by the record's
//     requirements ([ErrNotApprover]). A requirement with no groups can be
//     approved by nobody: Request still stores the record but returns an
//     [*UnavailableError] wrapping [ErrNoApprovers], and the rule's
//     unavailable setting decides (reject or queue).
//   - Each requirement needs MinApprovals distinct approvers from its
//     groups; a vote counts toward every requirement whose groups contain
//     one of the approver's groups. A repeated vote by the same approver is
//     idempotent and never counts twice.
//   - A denial by any eligible approver denies at once, even after other
//     approvals (deny wins, as in policy).
//   - Votes are counted inside [Store.Update], which serialises all
//     writers of a record, so 100 approvers racing on one record (on any
//     number of replicas) produce exactly one approval, and racing
//     identical requests consume the grant exactly once.
//   - The broker fails closed: a store error is returned as an error and
//     never read as an approval or a grant.
//
// # Stores
//
// [Store] is one small interface (Create-or-attach, Get, List, Update,
// Watch, Prune): stores provide atomicity and change signals, the broker
// holds every rule, and package approvaltest is the conformance kit both
// implementations pass. [MemoryStore] serves one process.
// policy/approval/pgstore serves replicas sharing PostgreSQL: schema
// migration built in, SELECT ... FOR UPDATE in Update, a partial unique
// index for create-or-attach, and LISTEN/NOTIFY for change signals.
//
// # Notification and waiting
//
// [Broker.Wait] subscribes to the store's change signal for the record
// (channels in memory; a NOTIFY carrying the record id in PostgreSQL,
// received by one listener connection per store that reconnects by itself)
// and re-reads the record at least every Config.PollInterval, so a lost
// signal delays a hold but never hangs it. Wait starts no goroutine and
// returns ctx.Err() as soon as ctx ends. A pending record whose deadline
// passes is expired by Wait itself; [Broker.Run] (the janitor, safe on every
// replica) expires the rest and prunes old final records.
//
// Each [Notifier] is told about new records only (not attaches): [Webhook]
// posts a JSON [WebhookPayload] signed with HMAC-SHA256 in
// X-Gatehouse-Signature ("sha256=<hex>", check with [VerifySignature]);
// [Slack] posts an incoming-webhook message with the summary and a Review
// button linking to the approval page. Both retry transport errors, 429
// and 5xx with exponential backoff and jitter, bounded by attempts and
// total time. All notifiers of a record run concurrently, bounded by
// Config.NotifyTimeout. Each failure is logged (if Config.Logger is set)
// and emitted as [EventNotifyFailed]; if every notifier failed, Request
// returns the stored record with an [*UnavailableError] so the proxy can
// apply the rule's unavailable setting.
//
// # Events
//
// Every transition (requested, attached, voted, approved, denied, expired,
// consumed, notify_failed) reaches [EventSink] after it was stored, with
// the record and the acting principal. The audit package's sink plugs in
// here.
//
// # HTTP API and page
//
// [Handler] serves JSON (list, show, approve, deny) and a server-rendered
// HTML page (html/template, no scripts, no external assets) over the same
// broker calls; see [Handler] for the routes. It reads the approver from
// identity.PrincipalFrom, so it must be mounted behind identity.Bearer; a
// request without a principal gets 401. Browsers do not send bearer
// tokens by themselves: put the page behind an authenticating reverse
// proxy that injects the Authorization header. Each viewer sees only the
// records it requested or may vote on (HandlerConfig.CanView); others are
// 404. Errors map to 403 (self-approval, not an approver), 404, 409 (not
// pending), 400, and 503 when the store is unavailable (no details leak).
// Config.URLBase makes [Broker.URL] point at the page for one record
// (<mount>/ui/<id>), which is what the proxy puts in its errors.
//
// # CSRF
//
// The page's forms change state, and an authenticating proxy in front
// typically keys on a cookie, so forged cross-site posts are refused two
// ways. Every request passes net/http.CrossOriginProtection (Sec-Fetch-Site
// or Origin against Host; HandlerConfig.TrustedOrigins adds origins). Each
// form also carries a token, HMAC-SHA256 over the viewer's identity and an
// expiry (CSRFTokenTTL) keyed with HandlerConfig.CSRFKey, checked in
// constant time: a page rendered for one principal cannot be replayed by
// another, and old pages expire. Replicas must share CSRFKey (otherwise
// each has a random key). The JSON endpoints take only application/json
// bodies, which a cross-site form cannot send without a CORS preflight.
// Pages are sent with a CSP that forbids scripts and framing, X-Frame-
// Options DENY, no-store caching and no referrer, so the approval URL and
// the buttons cannot be lifted into another site.
//
// # Bounds
//
// Everything a caller controls is bounded: request fields (MaxActionLen,
// MaxFingerprintLen, MaxResources, MaxRequirements, MaxGroups,
// MaxMinApprovals, MaxReasonLen, MaxSummaryEntries and its key and value
// lengths; beyond any, Request fails with *InvalidError and stores
// nothing), TTLs (Config.MaxPendingTTL, Config.MaxGrantTTL), list sizes
// (DefaultListLimit, MaxListLimit), HTTP bodies (MaxBodyBytes), ids
// (MaxIDLen), the memory store (MemoryConfig.MaxRecords: past it, Request
// fails with ErrStoreFull), pruning and expiry batches, notifier attempts
// and time (Retry, Config.NotifyTimeout) and Slack text sizes (truncated).
//
// # Using it from the proxy
//
// Reject mode needs no broker. For hold and queue, call [Broker.Gate] with
// GateOptions{Hold: rule's hold timeout (0 for queue), QueueWhenUnavailable:
// rule's unavailable == queue}, then: OutcomeGranted forwards;
// OutcomePending answers an AWS-shaped ApprovalPending error carrying
// Result.Record.ID and Result.URL; OutcomeDenied, OutcomeExpired,
// OutcomeConsumed and OutcomeUnavailable answer AccessDenied; a non-nil
// error (store down, client gone) refuses the call (fail closed).
package approval
