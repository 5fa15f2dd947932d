// Command gateway is gatehouse's production-shaped binary: one YAML file
// configures the whole gateway (OIDC issuers, session keys, roles, AWS
// credentials, policy, masking, approvals, limits), validated at start with
// errors that name the field.
//
// One listener serves the gateway's own endpoints under the reserved
// prefix /@gatehouse/ and the AWS data path everywhere else:
//
//	/@gatehouse/approvals/  the approver API and page, behind OIDC bearer tokens
//	/@gatehouse/healthz     liveness: 200 while the process serves
//	/@gatehouse/readyz      readiness: 200 while calls can succeed (listening, not
//	                        draining, a fail-closed audit trail able to record)
//	/@gatehouse/status      every dependency's check (audit trail, approval store)
//	/@gatehouse/metrics     Prometheus text format
//	everything else         the AWS data path (awsproxy) and its STS endpoint
//
// "@" is in no S3 bucket name and starts no AWS REST API path, so no AWS
// request reaches the gateway's endpoints and no bucket is shadowed. The
// data path is never cleaned or redirected: "//", "." and ".." segments
// and encoded slashes reach AWS exactly as the client signed them, and
// policy judges the bucket and key those bytes name.
//
// SIGHUP reloads the policy files and the TLS certificate (a bad policy or
// certificate is logged and the old one keeps serving). SIGTERM and SIGINT stop accepting connections and drain
// in-flight requests for up to limits.shutdownTimeout.
//
// Usage:
//
//	gateway -config /etc/gatehouse/gateway.yaml [-listen 127.0.0.1:8443]
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/pgsink"
	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
	"github.com/gatehouse-dev/gatehouse/policy/approval/pgstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run loads the configuration named by args, serves until ctx is done,
// then drains. Once listening it writes "listening on URL" to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "gateway.yaml", "configuration file")
	listen := fs.String("listen", "", "listen address, overriding the configuration's listen")
	checkOnly := fs.Bool("check", false, "validate the configuration and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("gateway: unexpected argument %q", fs.Arg(0))
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))

	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	g, err := newGateway(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer g.close()
	if cfg.TLS.Cert != "" {
		cert, err := loadCert(cfg.TLS)
		if err != nil {
			return err
		}
		g.cert = new(atomic.Pointer[tls.Certificate])
		g.cert.Store(cert)
	}
	if *checkOnly {
		fmt.Fprintln(stdout, "configuration ok")
		return nil
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("gateway: listen: %w", err)
	}
	// Every handler is counted, so that the trail is closed only after the
	// last one wrote its completion record, even when the drain times out
	// and calls held for approval are cut.
	var inflight atomic.Int64
	routes := g.routes()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inflight.Add(1)
			defer inflight.Add(-1)
			routes.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		IdleTimeout:       cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    serverHeaderBytes(cfg.Limits.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	errc := make(chan error, 1)
	if g.cert != nil {
		scheme = "https"
		srv.TLSConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return g.cert.Load(), nil
			},
		}
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	g.ready.Store(true)
	addr := scheme + "://" + ln.Addr().String()
	log.Info("listening", "addr", addr)
	fmt.Fprintln(stdout, "listening on", addr)

	for {
		select {
		case <-hup:
			g.reload()
			g.reloadCert()
		case err := <-errc:
			return fmt.Errorf("gateway: serve: %w", err)
		case <-ctx.Done():
			g.ready.Store(false)
			log.Info("shutting down", "drainTimeout", cfg.Limits.ShutdownTimeout.String())
			sctx, cancel := context.WithTimeout(context.Background(), cfg.Limits.ShutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				// Cut what is left (held calls see their context end and
				// answer), then wait, bounded, for their records.
				srv.Close()
				waitIdle(&inflight, 5*time.Second)
				return fmt.Errorf("gateway: drain: %w", err)
			}
			log.Info("stopped")
			return nil
		}
	}
}

// waitIdle waits, at most d, until no handler runs. (A counter rather
// than a sync.WaitGroup: a request read on a connection just before Close
// may still start a handler while this waits.)
func waitIdle(n *atomic.Int64, d time.Duration) {
	for deadline := time.Now().Add(d); n.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

// serverHeaderBytes is the net/http bound on request headers: the gateway's
// own bound (checked by awsproxy, with an AWS-shaped error) plus room for
// the request line, so the AWS-shaped refusal is what callers see.
func serverHeaderBytes(limit int) int {
	if limit == 0 {
		limit = awsproxy.DefaultMaxHeaderBytes
	}
	return limit + 16<<10
}

// newGateway builds every component from cfg. It reads key files and
// environment variables, resolves the AWS credentials (with
// aws.assumeRole, one sts:GetCallerIdentity), opens the audit trail and,
// with PostgreSQL, connects to the store; its other network call is OIDC
// discovery.
func newGateway(ctx context.Context, cfg *Config, log *slog.Logger) (*gateway, error) {
	g := &gateway{cfg: cfg, log: log}
	ok := false
	defer func() {
		if !ok {
			g.close()
		}
	}()

	issuers := make([]identity.Issuer, len(cfg.OIDC.Issuers))
	for i, is := range cfg.OIDC.Issuers {
		issuers[i] = identity.Issuer{URL: is.URL, Audiences: is.Audiences, GroupsClaim: is.GroupsClaim}
	}
	verifier, err := identity.NewVerifier(ctx, identity.VerifierConfig{Issuers: issuers})
	if err != nil {
		return nil, fmt.Errorf("gateway: oidc.issuers: %w", err)
	}
	roles := make([]identity.Role, len(cfg.Roles))
	proxyRoles := make([]awsproxy.Role, len(cfg.Roles))
	for i, r := range cfg.Roles {
		roles[i] = identity.Role{Name: r.Name, ARN: r.ARN, When: r.When, MaxDuration: r.MaxDuration}
		proxyRoles[i] = awsproxy.Role{Name: r.Name, ARN: r.ARN}
	}
	mapper, err := identity.NewRoleMapper(roles)
	if err != nil {
		return nil, fmt.Errorf("gateway: roles: %w", err)
	}
	var keys []identity.SessionKey
	for i, f := range cfg.Sessions.KeyFiles {
		secret, err := secretFromFile(fmt.Sprintf("sessions.keyFiles[%d]", i), f, 32)
		if err != nil {
			return nil, err
		}
		keys = append(keys, identity.SessionKey{ID: keyID(secret), Secret: secret})
	}
	sessions, err := identity.NewSessions(identity.SessionConfig{Keys: keys, MaxDuration: cfg.Sessions.MaxDuration})
	if err != nil {
		return nil, fmt.Errorf("gateway: sessions: %w", err)
	}

	creds, err := credentialSource(ctx, cfg, proxyRoles)
	if err != nil {
		return nil, err
	}

	g.engine, err = policy.NewEngine(policy.EngineConfig{Files: cfg.Policy.Files, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("gateway: policy.files: %w", err)
	}

	var hashKey []byte
	if cfg.Masks.HashKeyFile != "" {
		if hashKey, err = secretFromFile("masks.hashKeyFile", cfg.Masks.HashKeyFile, 16); err != nil {
			return nil, err
		}
	}

	trail, recorder, err := g.openAudit(cfg)
	if err != nil {
		return nil, err
	}
	if err := g.openApprovals(ctx, verifier); err != nil {
		return nil, err
	}
	g.deps = g.dependencies()
	g.metrics = newMetrics(g.pendingApprovals, g.auditLost, g.deps, g.up)

	auditLog := slices.Contains(cfg.Audit.Sinks, "slog")
	g.proxy, err = awsproxy.New(awsproxy.Config{
		Audit:           trail,
		Recorder:        recorder,
		Authenticator:   awsproxy.SessionAuthenticator(sessions),
		WebIdentity:     &identity.Exchanger{Verifier: verifier, Roles: mapper, Sessions: sessions},
		Credentials:     creds,
		Upstreams:       cfg.Upstreams,
		Account:         cfg.AWS.Account,
		Stages:          []awsproxy.Stage{awsproxy.PolicyStage(g.engine, g.broker)},
		MaskHashKey:     hashKey,
		MaxMaskBody:     cfg.Masks.MaxBody,
		MaxSkew:         cfg.Limits.MaxSkew,
		MaxHeaderBytes:  cfg.Limits.MaxHeaderBytes,
		MaxBodyBuffer:   cfg.Limits.MaxBodyBuffer,
		BodyReadTimeout: cfg.Limits.BodyReadTimeout,
		Logger:          log,
		OnDone: func(c *awsproxy.Call) {
			g.metrics.observe(c)
			if auditLog {
				logCall(log, c)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	ok = true
	return g, nil
}

// credentialCheckTimeout bounds resolving the gateway's AWS credentials
// (and, with aws.assumeRole, the STS call that checks them) at start.
const credentialCheckTimeout = 30 * time.Second

// credentialSource builds the credentials the gateway re-signs with. It
// resolves them, and with aws.assumeRole checks them with STS
// (GetCallerIdentity), so that a gateway that could not sign any call
// does not start and -check names the problem.
func credentialSource(ctx context.Context, cfg *Config, roles []awsproxy.Role) (awsproxy.CredentialSource, error) {
	var base aws.CredentialsProvider
	if cfg.AWS.Credentials == "static" {
		s := cfg.AWS.Static
		id, err := secretFromEnv("aws.static.accessKeyIdEnv", s.AccessKeyIDEnv)
		if err != nil {
			return nil, err
		}
		secret, err := secretFromEnv("aws.static.secretAccessKeyEnv", s.SecretAccessKeyEnv)
		if err != nil {
			return nil, err
		}
		token := ""
		if s.SessionTokenEnv != "" {
			if token, err = secretFromEnv("aws.static.sessionTokenEnv", s.SessionTokenEnv); err != nil {
				return nil, err
			}
		}
		base = credentials.NewStaticCredentialsProvider(id, secret, token)
	}
	// The SDK's shared configuration is loaded in both modes, so that its
	// endpoint settings (AWS_ENDPOINT_URL_STS, endpoint_url in a profile:
	// a VPC or FIPS endpoint for STS) apply to the gateway's own STS calls;
	// a static key only replaces the credential chain.
	var opts []func(*awsconfig.LoadOptions) error
	if cfg.AWS.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.AWS.Region))
	}
	if base != nil {
		opts = append(opts, awsconfig.WithCredentialsProvider(base))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gateway: aws.credentials: %w", err)
	}
	if ac.Credentials == nil {
		return nil, fmt.Errorf("gateway: aws.credentials: the default chain found no credentials")
	}
	// Resolve the credentials now: the SDK chain is lazy, and a gateway
	// that cannot resolve them would answer every call with a 500.
	rctx, cancel := context.WithTimeout(ctx, credentialCheckTimeout)
	defer cancel()
	if _, err := ac.Credentials.Retrieve(rctx); err != nil {
		return nil, fmt.Errorf("gateway: aws.credentials: %s: no usable AWS credentials: %w", cfg.AWS.Credentials, err)
	}
	base = ac.Credentials
	if cfg.AWS.AssumeRole {
		if ac.Region == "" {
			ac.Region = "us-east-1"
		}
		client := sts.NewFromConfig(ac)
		// AssumeRole per session needs STS to accept these credentials:
		// ask it who they are, which needs no permission.
		if _, err := client.GetCallerIdentity(rctx, &sts.GetCallerIdentityInput{}); err != nil {
			return nil, fmt.Errorf("gateway: aws.assumeRole: STS did not accept the gateway's credentials (sts:GetCallerIdentity in %s): %w", ac.Region, err)
		}
		src, err := awsproxy.NewAssumeRoleSource(ctx, awsproxy.AssumeRoleConfig{Client: client, Roles: roles})
		if err != nil {
			return nil, fmt.Errorf("gateway: aws.assumeRole: %w", err)
		}
		return src, nil
	}
	return awsproxy.StaticCredentials(base), nil
}

// gateway holds the running components.
type gateway struct {
	cfg      *Config
	log      *slog.Logger
	engine   *policy.Engine
	broker   *approval.Broker
	pg       *pgstore.Store
	store    approval.Store
	approver http.Handler
	proxy    http.Handler
	metrics  *metrics
	ready    atomic.Bool
	deps     []*dependency
	cert     *atomic.Pointer[tls.Certificate] // nil without TLS
	trail    *audit.Trail                     // nil without the file sink
	stop     []func()
}

// openApprovals builds the store, notifiers, broker and approver handler.
func (g *gateway) openApprovals(ctx context.Context, verifier *identity.Verifier) error {
	a := g.cfg.Approvals
	switch a.Store {
	case "postgres":
		dsn, err := secretFromEnv("approvals.dsnEnv", a.DSNEnv)
		if err != nil {
			return err
		}
		pg, err := pgstore.New(ctx, pgstore.Config{DSN: dsn, Schema: a.Schema, Logger: g.log})
		if err != nil {
			return fmt.Errorf("gateway: approvals: %w", err)
		}
		g.pg, g.store = pg, pg
		g.stop = append(g.stop, pg.Close)
	default:
		mem, err := approval.NewMemoryStore(approval.MemoryConfig{})
		if err != nil {
			return fmt.Errorf("gateway: approvals: %w", err)
		}
		g.store = mem
	}
	var notifiers []approval.Notifier
	if w := a.Notifiers.Webhook; w != nil {
		secret, err := secretFromEnv("approvals.notifiers.webhook.secretEnv", w.SecretEnv)
		if err != nil {
			return err
		}
		n, err := approval.NewWebhook(approval.WebhookConfig{URL: w.URL, Secret: []byte(secret)})
		if err != nil {
			return fmt.Errorf("gateway: approvals.notifiers.webhook: %w", err)
		}
		notifiers = append(notifiers, n)
	}
	if s := a.Notifiers.Slack; s != nil {
		u, err := secretFromEnv("approvals.notifiers.slack.urlEnv", s.URLEnv)
		if err != nil {
			return err
		}
		n, err := approval.NewSlack(approval.SlackConfig{WebhookURL: u})
		if err != nil {
			return fmt.Errorf("gateway: approvals.notifiers.slack: %w", err)
		}
		notifiers = append(notifiers, n)
	}
	var err error
	var events approval.EventSink
	if g.trail != nil {
		events = awsproxy.ApprovalEvents(g.trail)
	}
	g.broker, err = approval.New(approval.Config{Store: g.store, Notifiers: notifiers, Events: events, Logger: g.log, URLBase: a.URLBase})
	if err != nil {
		return fmt.Errorf("gateway: approvals: %w", err)
	}
	var csrf []byte
	if a.CSRFKeyFile != "" {
		if csrf, err = secretFromFile("approvals.csrfKeyFile", a.CSRFKeyFile, 32); err != nil {
			return err
		}
	}
	h, err := approval.NewHandler(approval.HandlerConfig{Broker: g.broker, CSRFKey: csrf, Logger: g.log})
	if err != nil {
		return fmt.Errorf("gateway: approvals: %w", err)
	}
	bearer := &identity.Bearer{Verifier: verifier}
	g.approver = http.StripPrefix(OwnPrefix+"approvals", bearer.Wrap(h))

	jctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.broker.Run(jctx)
	}()
	g.stop = append(g.stop, func() { cancel(); <-done })
	return nil
}

// reload re-reads the policy files; on error the old policy keeps serving.
func (g *gateway) reload() error {
	err := g.engine.Reload()
	if err != nil {
		g.log.Error("policy reload failed; the previous policy keeps serving", "err", err)
		g.metrics.reloads.WithLabelValues("error").Inc()
		return err
	}
	g.log.Info("policy reloaded", "revision", g.engine.Policy().Revision())
	g.metrics.reloads.WithLabelValues("ok").Inc()
	return nil
}

// pendingApprovals counts pending records for the gauge, up to
// approval.MaxListLimit.
func (g *gateway) pendingApprovals() (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	recs, err := g.broker.List(ctx, approval.Filter{State: approval.Pending, Limit: approval.MaxListLimit})
	return float64(len(recs)), err
}

// loadCert reads the TLS certificate chain and key.
func loadCert(c TLSConfig) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fieldErr("tls.cert", "%v", err)
	}
	return &cert, nil
}

// reloadCert re-reads the TLS certificate and key (rotated by cert-manager
// or similar); on error the current certificate keeps serving.
func (g *gateway) reloadCert() {
	if g.cert == nil {
		return
	}
	cert, err := loadCert(g.cfg.TLS)
	if err != nil {
		g.log.Error("TLS certificate reload failed; the previous certificate keeps serving", "err", err)
		return
	}
	g.cert.Store(cert)
	g.log.Info("TLS certificate reloaded")
}

func (g *gateway) close() {
	for i := len(g.stop) - 1; i >= 0; i-- {
		g.stop[i]()
	}
	g.stop = nil
}

// auditLost counts the completion events the file trail lost.
func (g *gateway) auditLost() float64 {
	if g.trail == nil {
		return 0
	}
	return float64(g.trail.Stats().Lost)
}

// openAudit builds the file trail and the session recorder the config asks
// for; both nil when it asks for neither.
func (g *gateway) openAudit(cfg *Config) (*audit.Trail, audit.Recorder, error) {
	var trail *audit.Trail
	var recorder audit.Recorder
	if slices.Contains(cfg.Audit.Sinks, "file") {
		fc := audit.FileConfig{Dir: cfg.Audit.Dir, Logger: g.log}
		if err := g.auditCheckpoints(cfg.Audit.Checkpoint, &fc); err != nil {
			return nil, nil, err
		}
		sink, err := audit.NewFileSink(fc)
		if err != nil {
			if errors.Is(err, audit.ErrTampered) {
				err = fmt.Errorf("%w (FileConfig.InsecureResumeWithoutCheckpoint is audit.checkpoint.insecureResumeWithoutCheckpoint here)", err)
			}
			return nil, nil, fmt.Errorf("gateway: config: audit.dir: %w", err)
		}
		mode := audit.FailClosed
		if cfg.Audit.Mode == "fail-open" {
			mode = audit.FailOpen
		}
		if trail, err = audit.NewTrail(audit.TrailConfig{Sink: sink, Mode: mode, Logger: g.log}); err != nil {
			return nil, nil, fmt.Errorf("gateway: audit: %w", err)
		}
		g.log.Info("audit trail", "dir", cfg.Audit.Dir, "mode", mode.String())
		g.trail = trail
		g.stop = append(g.stop, func() {
			if err := trail.Close(); err != nil {
				g.log.Error("audit: closing the file trail", "err", err)
			}
		})
	}
	if cfg.Audit.RecordingsDir != "" {
		r, err := audit.NewFileRecorder(audit.FileRecorderConfig{Dir: cfg.Audit.RecordingsDir})
		if err != nil {
			return nil, nil, fmt.Errorf("gateway: config: audit.recordingsDir: %w", err)
		}
		recorder = r
	}
	return trail, recorder, nil
}

// auditCheckpoints sets up the file trail's signed checkpoints, and their
// PostgreSQL copy, as cp asks. The store closes after the trail (g.stop
// runs backwards), so that the shutdown checkpoint reaches it.
func (g *gateway) auditCheckpoints(cp *CheckpointConfig, fc *audit.FileConfig) error {
	if cp == nil {
		return nil
	}
	signer, err := audit.LoadSigner(cp.KeyFile)
	if err != nil {
		return fmt.Errorf("gateway: config: audit.checkpoint.keyFile: %w", err)
	}
	fc.Signer, fc.CheckpointInterval, fc.CheckpointOrigin = signer, cp.Interval, cp.Origin
	fc.InsecureResumeWithoutCheckpoint = cp.InsecureResumeWithoutCheckpoint
	if cp.DSNEnv == "" {
		return nil
	}
	dsn, err := secretFromEnv("audit.checkpoint.dsnEnv", cp.DSNEnv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := pgsink.NewCheckpointStore(ctx, pgsink.CheckpointStoreConfig{DSN: dsn, Schema: cp.Schema})
	if err != nil {
		return fmt.Errorf("gateway: audit.checkpoint: %w", err)
	}
	g.stop = append(g.stop, func() { store.Close() })
	fc.CheckpointWriter = store
	return nil
}

// logCall is the "slog" audit sink: one line per call, never the
// body or the caller's secrets.
func logCall(log *slog.Logger, c *awsproxy.Call) {
	attrs := []any{"id", c.ID, "action", c.Classification.Action, "status", c.Status, "decision", effect(c), "durationMs", c.Duration.Milliseconds()}
	if c.Session != nil {
		attrs = append(attrs, "principal", c.Session.Principal.String(), "role", c.Session.Role)
	}
	if len(c.Classification.Resources) > 0 {
		attrs = append(attrs, "resources", c.Classification.Resources)
	}
	if c.Decision != nil && c.Decision.Rule != "" {
		attrs = append(attrs, "rule", c.Decision.Rule)
	}
	if c.Err != nil {
		attrs = append(attrs, "error", c.Err.Error())
	}
	log.Info("audit", attrs...)
}
