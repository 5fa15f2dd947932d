// Package audit records what every non-human identity did through the
// gateway, in a form an auditor can query, prove unaltered and replay:
// which identity called which AWS operation on which resources, when, under
// which policy rule, approved by whom, with what result, and what masking
// hid. It stores events through pluggable sinks, chains them with SHA-256
// so that edits, deletions and reordering are detectable, and records
// sessions (masked request/response pairs) for replay.
//
// The package is plain data plus storage: it imports identity (for
// Principal) and nothing else of gatehouse. awsproxy turns each finished
// call into an Event; the approval broker's transitions become events too.
//
// # Model
//
// An Event is one record. A call produces one completion event (phase
// "completion") and, on a fail-closed trail, an intent event (phase
// "intent") written before the call is forwarded; both carry the
// gateway's request id as CallID. An approval record's transitions
// (requested, approved, denied, expired, consumed ...) are events of phase
// "approval". Every event names the principal (issuer, subject, client id,
// groups, the gateway role, and the RoleSessionName and SourceIdentity
// that CloudTrail shows), the request (service, region, operation, IAM
// action, resource ARNs, method, path, selected non-sensitive parameters,
// source IP, user agent, MCP session and tool), the decision (effect,
// deciding rule, reason, every matched rule), the approval (id, state, who
// voted how), the response (status, the AWS request id that CloudTrail's
// requestID equals, error code, bytes in and out, duration) and the masks
// applied (paths and strategies, never values).
//
// # Schema
//
// The JSON form of Event is the versioned, documented schema:
// event.schema.json in this directory (JSON Schema 2020-12, also returned
// by Schema), version 1 (the "version" member, Version). Optional members
// are left out when empty; times are RFC 3339 UTC. Tests validate
// marshalled events against the schema and check that every member the Go
// types can write is documented there, and nothing else. Encode is the one
// serialisation every sink uses; it validates the event first (ID, Time,
// Phase, Version: Event.Validate).
//
// # Sinks and their contract
//
// Sink is shaped like slog.Handler: Write(ctx, *Event) error and Close()
// error, with a written contract (see Sink): safe for concurrent use;
// never modifies or retains the event; a nil error means accepted, and
// each sink says whether accepted means stored (synchronous) or queued;
// an error means the event may not be recorded; per-goroutine order is
// kept; ctx bounds waiting only; Write after Close wraps ErrClosed. The
// package audittest is the conformance kit: audittest.Run drives any sink
// through that contract, and every sink here passes it.
//
//   - Discard accepts and drops. Multi writes to several sinks and fails
//     if any of them fails.
//   - FileSink: JSON Lines in a hash chain across rotated files
//     (synchronous, group commit; or buffered with FileConfig.FlushInterval),
//     with signed checkpoints when given a key (FileConfig.Signer).
//   - SlogSink: one slog record per event, the "event" group mirroring the
//     JSON; handler errors reach Write's caller.
//   - Async: a bounded queue and one worker in front of any sink, with an
//     explicit overflow policy (Block, or Drop and count); never behind a
//     fail-closed trail.
//   - Webhook: batched JSON-array POSTs, HMAC-signed, retried with backoff,
//     from a bounded queue; drops and failures counted; never behind a
//     fail-closed trail.
//   - pgsink (subpackage): PostgreSQL, an append-only table with one chain
//     per replica, and its own Verify; its CheckpointStore keeps file
//     chains' checkpoints away from the files.
//
// # Chain format
//
// A FileSink directory holds one chain in files named
// <prefix>-<first seq, 20 digits>-<UTC creation time>.jsonl, so that
// names sort in chain order. Every line is one record:
//
//	{"seq":<n>,"prev":"<hash of record n-1>","event":<event JSON>,"hash":"<hash>"}
//
// The first record of every file is a header, with a "file" member instead
// of "event":
//
//	{"seq":<n>,"prev":"<hash of record n-1>","file":{"format":"gatehouse-audit-chain/1",
//	 "name":"<this file>","prev_file":"<previous file>","created":"<RFC 3339>"},"hash":"<hash>"}
//
// A sink that signs checkpoints adds "checkpointed":<n> to the headers of
// the files it creates (the records the newest checkpoint in the directory
// covered then; 0 for none yet), and "resumed_without_checkpoint":true to
// the first one after FileConfig.InsecureResumeWithoutCheckpoint let it
// resume a checkpointed chain whose checkpoint was missing (see
// Checkpoints).
//
// Sequence numbers count records (headers included) from 1, without gaps,
// across files; the first record of a chain has prev = 64 zeros. The hash
// is the lowercase hex SHA-256 of the record exactly as written but
// without its hash member: the line up to (not including) `,"hash":"`,
// followed by `}`. Since "hash" is always the last member and 64 hex
// digits long, that is the line minus its last 75 bytes plus "}". No JSON
// canonicalisation is involved: the bytes written are the bytes hashed, and
// anyone can recompute a chain with a JSON parser and SHA-256. A chain
// written with FileConfig.Key uses HMAC-SHA256 with that key instead: only
// a holder of the key can then extend or rewrite it.
//
// # Verify
//
// Verify (and VerifyConfig.Verify, VerifyDir, and "replay verify" in
// examples/replay) reads the files of a chain in any order (it sorts them
// by first sequence number) and checks every record's hash, every link
// (prev equals the hash before), and the sequence (from 1, no gaps, no
// repeats). Its Report lists problems in file and line order, so
// Problems[0] pinpoints the first damage:
//
//   - altered: a record's content does not match its hash (an edit), or its
//     prev does not match its predecessor (which was rewritten with a
//     recomputed hash, or replaced);
//   - missing: sequence numbers skipped (deleted records, or a deleted or
//     withheld file);
//   - reordered: a record before records that precede it in the chain
//     (swapped lines), or a record repeated;
//   - truncated: a file ending inside a record (a cut file, or a crash
//     mid-write), or a chain ending before an anchor or a checkpoint;
//   - malformed: a line that is not a record;
//   - checkpoint: a checkpoint that does not verify, none at all when
//     verifier keys were given, or a file whose sink resumed the chain
//     without its checkpoint (see Checkpoints);
//   - rollback: checkpoints going backwards.
//
// A hash chain cannot show on its own that its newest records were removed
// cleanly from its end: that is what checkpoints are for (next section).
// Without them, FileSink.Head returns an anchor (sequence number and
// hash) to publish somewhere the writer of the files cannot change and to
// pass as VerifyConfig.Head. Verify reads files as streams with a bounded
// line length (VerifyConfig.MaxLine) and keeps a bounded number of
// problems; it is fuzzed.
//
// A FileSink opened on an existing directory resumes the chain: it finds
// the last intact record of the newest file and starts a new file linked to
// it (it never appends to an old file). A torn last line left by a crash
// stays where it is and Verify reports it as truncated; a newest file with
// no intact record near its end makes NewFileSink fail rather than guess,
// and so does a chain shorter than, or different from, the newest
// checkpoint in the directory (an error wrapping ErrTampered): extending
// it and checkpointing again would replace the evidence. A sink with a
// signing key also refuses a checkpointed chain whose checkpoint is
// missing or older than its files' headers record (see Checkpoints).
//
// # Checkpoints
//
// A chain written with a signing key proves its own end: Verify, given the
// verifier key, reports every record that a surviving checkpoint covers
// and that was removed from the end of the chain or rewritten.
//
// A checkpoint is the chain's record count and the hash of its last
// record, signed as a note of golang.org/x/mod/sumdb/note (Ed25519), whose
// body is the C2SP tlog-checkpoint body:
//
//	gw-1/audit
//	1234
//	UNhY4JhezH9gQYqvDMWrWH9CwlcKiECVqejMrND2VFw=
//
//	— gw-1 YOZHS7+QU4mh3S0BW2O7ycpZQP7E7xymQWDgkPsfjhwlzhOZRe6w41fWypOpQClASOtu+In4oe1DVvCkUOEKdWWprQ0=
//
// (signed with the example key of ExampleFileSink_checkpoints).
// The lines are the origin (FileConfig.CheckpointOrigin, default
// "<key name>/<prefix>"), the size (the sequence number of the last
// record, headers included) and the record's hash in standard base64,
// then a blank line and one signature line per key. This is the shape of
// Certificate Transparency's signed tree heads (RFC 9162), of Sigstore
// Rekor's and the Go checksum database's checkpoints: any signed-note
// library verifies it. The hash is the head of the hash chain rather than
// a Merkle root, because a verifier reads the whole chain anyway and the
// head commits to every record before it; a chain with FileConfig.Key has
// HMAC heads, which Verify needs VerifyConfig.Key to recompute.
// Checkpoint, Sign, ParseCheckpoint and OpenCheckpoint are the format's
// one implementation; ParseCheckpoint is strict (three lines, canonical
// numbers and base64) and fuzzed.
//
// A FileSink with FileConfig.Signer (LoadSigner reads the key file that
// note.GenerateKey or "replay keygen" writes; the key is never logged or
// written anywhere else) writes a checkpoint every CheckpointInterval
// (default one minute) if the chain grew, before every rotation, so that
// every closed file's end is signed, and in Close, so that a clean
// shutdown leaves the whole trail signed. Each goes to the file
// <prefix>.checkpoint in Dir, replaced atomically, and then to
// FileConfig.CheckpointWriter, for example pgsink.CheckpointStore. By
// default the chain file is fsynced before the checkpoint is signed, and
// the checkpoint file and the directory after it is written, so that a
// checkpoint never covers a record a power loss can take back (measured
// in BENCHMARKS.md: a few milliseconds per checkpoint, while the sink's
// writers wait); SkipCheckpointSync trades that for speed. A failed
// checkpoint is counted and logged, never fails the events. A sink that
// writes nothing writes no checkpoint: opening a directory to check it
// leaves it as it was.
//
// Verify checks checkpoints when VerifyConfig.Verifiers holds the
// verifier key(s): against each of VerifyConfig.Checkpoints, oldest first,
// and (VerifyDir) the directory's own checkpoint file after them. A chain
// shorter than the newest valid checkpoint is truncated; a record that
// differs from the head a checkpoint signed is altered; a checkpoint that
// is malformed, badly signed, signed by no given key or for another
// origin (VerifyConfig.Origin) is a checkpoint problem, and so is the
// absence of any; a checkpoint covering fewer records than an earlier one,
// or the same number with another head, is a rollback. Report.Checkpoint
// names the newest valid checkpoint and counts the records after it.
//
// What is detected depends on where the newest checkpoint survives.
// Against someone who can change the files but cannot read the signing
// key:
//
//   - records edited, removed or reordered inside the chain: the chain
//     itself, as before;
//   - records removed from the end, the checkpoint file left in place:
//     detected from the files alone (truncated);
//   - records removed from the end and the checkpoint file removed too:
//     detected from the files alone (no checkpoint), before and after a
//     restart, since a signing sink does not resume such a chain (below);
//   - records removed from the end and an older checkpoint put back
//     (checkpoints are not secret, and any older copy of the directory
//     holds one), or the whole directory restored from an older copy (a
//     rollback): consistent on their own, so not detectable by Verify
//     from the files; detected only with the newest checkpoint kept
//     elsewhere (pgsink.CheckpointStore, or a copy the verifier holds),
//     which reports truncated and rollback. A signing sink refuses to
//     resume when a remaining file's header records a newer checkpoint
//     than the one put back (the cut reached back past a rotation);
//   - records rewritten with recomputed hashes (possible on a chain
//     without FileConfig.Key): detected up to the newest surviving
//     checkpoint (altered);
//   - a forged checkpoint: detected (it needs the private key).
//
// A checkpointed chain keeps proving its end across restarts. Every file a
// sink with FileConfig.Signer creates says in its header that the chain is
// checkpointed, and a new chain gets its first checkpoint right after its
// first records. NewFileSink with a Signer refuses, with
// ErrCheckpointMissing, a chain that a header shows was checkpointed when
// the directory holds no checkpoint: resuming would sign the cut chain and
// hide the cut. It also refuses (ErrTampered) a checkpoint covering fewer
// records than a header says a checkpoint covered when that file was
// created. FileConfig.InsecureResumeWithoutCheckpoint resumes anyway, for
// one start after a checkpoint lost for a known reason; the first file it
// writes says so in its header, and Verify with verifier keys reports
// that file (checkpoint), since nothing shows any more whether records
// were removed before it. Verify also names a checkpointed header when no
// checkpoint was given. A chain that no header shows was checkpointed (one
// written before checkpoints were enabled) is resumed as found and its
// first checkpoint covers it: enabling checkpoints on an existing trail
// needs nothing, and signs that trail as it stands, so verify it first.
// The same holds for a directory from which every file written since
// checkpoints were enabled was removed with the checkpoint: that is a
// rollback to the trail's state before checkpoints, and only a checkpoint
// kept elsewhere exposes it.
//
// Records written after the newest checkpoint are covered by no
// signature: up to CheckpointInterval of them in normal operation, and
// after a crash, those since the last checkpoint. They can be removed or
// rewritten undetected; Report.Checkpoint.After counts them. Someone who
// also holds the signing key (root on the gateway's host) can sign
// checkpoints for any files: then only checkpoints already stored out of
// their reach bind the chain, up to the newest of those.
//
// # Fail-closed and fail-open
//
// Trail is the front end the gateway writes through. In FailClosed mode
// (the zero value) the gateway calls Trail.Intent before forwarding a call;
// if the intent cannot be written within IntentTimeout the error wraps
// ErrUnavailable and the call is refused with an AWS-shaped error. The
// completion event follows through Trail.Record, which does not let the
// client's disconnection cancel the write. In FailOpen mode no intent is
// written; calls proceed whatever the sink does, and every event a sink
// refuses is counted (TrailStats.Lost) and logged when a Logger is set.
//
// A fail-closed trail never rests on a queue: NewTrail refuses, with
// ErrQueueingSink, a fail-closed trail whose sink does not acknowledge
// stored events (Acknowledger: FileSink without FlushInterval, pgsink,
// SlogSink and Multi of those do; Async, Webhook, a buffered FileSink,
// Discard and any sink that does not say do not). Every event a trail
// loses is counted once in TrailStats.Lost, including those a queueing
// sink accepted and lost later (LossReporter: Async and Webhook drops and
// failed deliveries). Trail.Check reports whether the trail can record
// now, through the sink's Checker when it has one (FileSink probes its
// directory, pgsink reads its table), so a gateway can stop taking calls
// while a fail-closed trail refuses them and take them again once the
// sink recovers.
//
// # Recording and replay
//
// A Recorder stores Exchanges: per session (the gateway session id, or an
// MCP session id passed in a signed header), request/response pairs after
// masking, with the call's completion event attached so that a recording
// replays with its decision and approval. FilterHeader drops credentials
// (Authorization, X-Amz-Security-Token, cookies, SSE-C keys, anything named
// like a token or secret), RedactURL drops presigned-URL signatures and STS
// tokens and assertions, and NewBody keeps at most a bounded prefix of a
// body (Truncated and Size say what was cut). A body whose content was not
// recorded carries Withheld (why) and Size. awsproxy never hands a
// recorder a live credential: it masks every body with the secret
// detectors and the aws-secrets profile whatever the policy said, or
// withholds it. FileRecorder, the default, writes one JSON Lines file per
// session (SessionFile makes safe names from arbitrary ids), re-applies
// those filters and bounds, and caps each session file; LoadSession and
// Sessions read them back. examples/replay prints a session as a terminal
// timeline and writes it as one self-contained HTML page.
//
// # Bounds
//
// Everything a caller or an input controls is bounded: an encoded event
// (FileConfig.MaxRecordBytes, default 1 MiB; WebhookConfig.MaxBatchBytes;
// pgsink Config.MaxRecordBytes), a chain file (FileConfig.MaxBytes, 64
// MiB), buffered bytes (FileConfig.BufferBytes), queues (AsyncConfig.Queue,
// WebhookConfig.Queue), batch sizes, retries and their backoff, every
// network attempt (WebhookConfig.Timeout), the intent write
// (TrailConfig.IntentTimeout), Close (CloseTimeout: what is still queued
// then is dropped and counted), a checkpoint read back
// (MaxCheckpointBytes, 16 KiB), one CheckpointWriter call
// (CheckpointWriteTimeout, 10 s), recorded bodies (DefaultMaxBody, 64 KiB)
// and session files (DefaultMaxSessionBytes, 64 MiB), and lines read back
// (Verify's MaxLine, 16 MiB for sessions). Nothing logs unless given a
// *slog.Logger, and clocks are injectable (FileConfig.Now,
// WebhookConfig.Now).
package audit
