package awsproxy

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
)

// CredentialSource gives the gateway the AWS credentials to sign a caller's
// request for upstream. It is called on every forwarded request and
// concurrently, so implementations cache (aws.CredentialsCache does).
// Errors are answered to the client as KindInternal unless they are *Error.
type CredentialSource interface {
	Credentials(ctx context.Context, s *Session) (aws.Credentials, error)
}

// CredentialSourceFunc adapts a function to CredentialSource.
type CredentialSourceFunc func(ctx context.Context, s *Session) (aws.Credentials, error)

// Credentials implements CredentialSource.
func (f CredentialSourceFunc) Credentials(ctx context.Context, s *Session) (aws.Credentials, error) {
	return f(ctx, s)
}

// StaticCredentials serves every caller with the credentials of p, cached
// and refreshed early by aws.CredentialsCache.
func StaticCredentials(p aws.CredentialsProvider) CredentialSource {
	if _, ok := p.(*aws.CredentialsCache); !ok {
		p = aws.NewCredentialsCache(p)
	}
	return CredentialSourceFunc(func(ctx context.Context, _ *Session) (aws.Credentials, error) {
		return p.Retrieve(ctx)
	})
}

// Role is an IAM role the gateway assumes on behalf of callers.
type Role struct {
	// Name is how sessions refer to the role (Session.Role); it may also be
	// the ARN itself.
	Name string
	// ARN of the IAM role to assume. Required.
	ARN string
	// ExternalID, if the role's trust policy asks for one.
	ExternalID string
	// Duration of the assumed-role session; zero means one hour.
	Duration time.Duration
	// Policy is an optional inline session policy (JSON) that narrows the role.
	Policy string
	// TagClaims maps session tag keys to principal claim names; each present
	// claim becomes a session tag (sanitized to STS's tag alphabet). The
	// role's trust policy must allow sts:TagSession.
	TagClaims map[string]string
}

// AssumeRoleConfig configures an AssumeRoleSource.
type AssumeRoleConfig struct {
	// Client calls STS with the gateway's own base credentials. Nil means
	// sts.NewFromConfig of config.LoadDefaultConfig (the default chain).
	Client stscreds.AssumeRoleAPIClient
	// Roles the gateway may assume. At least one.
	Roles []Role
	// DefaultRole is used for sessions whose Role is empty; "" means the
	// first of Roles.
	DefaultRole string
	// MaxEntries bounds the number of cached (role, principal) providers;
	// the least recently used is dropped past it. Zero means 4096.
	MaxEntries int
	// ExpiryWindow refreshes credentials this long before they expire.
	// Zero means 5 minutes.
	ExpiryWindow time.Duration
}

// AssumeRoleSource assumes the session's role through STS with a role
// session name derived from the principal, SourceIdentity set to the
// principal's subject, and session tags from configured claims, so that
// CloudTrail names the workload behind every call. Credentials are cached
// per (role, principal), refreshed before they expire, and concurrent
// callers share one refresh.
type AssumeRoleSource struct {
	client  stscreds.AssumeRoleAPIClient
	roles   map[string]*Role
	def     *Role
	max     int
	window  time.Duration
	mu      sync.Mutex
	entries map[string]*list.Element
	lru     *list.List
}

type roleEntry struct {
	key   string
	cache *aws.CredentialsCache
}

// NewAssumeRoleSource validates cfg and returns a source. With a nil
// cfg.Client it loads the default AWS configuration, which may read files
// and the environment but makes no network call.
func NewAssumeRoleSource(ctx context.Context, cfg AssumeRoleConfig) (*AssumeRoleSource, error) {
	if len(cfg.Roles) == 0 {
		return nil, errors.New("awsproxy: AssumeRoleConfig.Roles is empty")
	}
	s := &AssumeRoleSource{
		client:  cfg.Client,
		roles:   make(map[string]*Role, len(cfg.Roles)*2),
		max:     cfg.MaxEntries,
		window:  cfg.ExpiryWindow,
		entries: make(map[string]*list.Element),
		lru:     list.New(),
	}
	if s.max <= 0 {
		s.max = 4096
	}
	if s.window <= 0 {
		s.window = 5 * time.Minute
	}
	for i := range cfg.Roles {
		r := &cfg.Roles[i]
		if r.ARN == "" || !strings.HasPrefix(r.ARN, "arn:") {
			return nil, fmt.Errorf("awsproxy: AssumeRoleConfig.Roles[%d].ARN %q is not an ARN", i, r.ARN)
		}
		if r.Duration != 0 && (r.Duration < 15*time.Minute || r.Duration > 12*time.Hour) {
			return nil, fmt.Errorf("awsproxy: AssumeRoleConfig.Roles[%d].Duration must be 15m..12h", i)
		}
		for _, name := range []string{r.Name, r.ARN} {
			if name == "" {
				continue
			}
			if _, dup := s.roles[name]; dup && s.roles[name] != r {
				return nil, fmt.Errorf("awsproxy: AssumeRoleConfig.Roles[%d]: duplicate role %q", i, name)
			}
			s.roles[name] = r
		}
	}
	s.def = &cfg.Roles[0]
	if cfg.DefaultRole != "" {
		r, ok := s.roles[cfg.DefaultRole]
		if !ok {
			return nil, fmt.Errorf("awsproxy: AssumeRoleConfig.DefaultRole %q is not among Roles", cfg.DefaultRole)
		}
		s.def = r
	}
	if s.client == nil {
		awsCfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("awsproxy: loading the default AWS config for STS: %w", err)
		}
		s.client = sts.NewFromConfig(awsCfg)
	}
	return s, nil
}

// Credentials implements CredentialSource.
func (s *AssumeRoleSource) Credentials(ctx context.Context, sess *Session) (aws.Credentials, error) {
	role := s.def
	if sess.Role != "" {
		r, ok := s.roles[sess.Role]
		if !ok {
			return aws.Credentials{}, newError(KindAccessDenied, fmt.Sprintf("role %q is not configured on this gateway", sess.Role), nil)
		}
		role = r
	}
	return s.provider(role, sess).Retrieve(ctx)
}

func (s *AssumeRoleSource) provider(role *Role, sess *Session) *aws.CredentialsCache {
	key := role.ARN + "\x00" + sess.Principal.String()
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.entries[key]; ok {
		s.lru.MoveToFront(el)
		return el.Value.(*roleEntry).cache
	}
	p := sess.Principal
	prov := stscreds.NewAssumeRoleProvider(s.client, role.ARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = RoleSessionName(p.String())
		if p.Subject != "" {
			o.SourceIdentity = aws.String(stsName(p.Subject))
		}
		if role.ExternalID != "" {
			o.ExternalID = aws.String(role.ExternalID)
		}
		o.Duration = time.Hour
		if role.Duration != 0 {
			o.Duration = role.Duration
		}
		if role.Policy != "" {
			o.Policy = aws.String(role.Policy)
		}
		o.Tags = sessionTags(role.TagClaims, p.Claims)
	})
	cache := aws.NewCredentialsCache(prov, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = s.window })
	s.entries[key] = s.lru.PushFront(&roleEntry{key: key, cache: cache})
	for s.lru.Len() > s.max {
		old := s.lru.Back()
		s.lru.Remove(old)
		delete(s.entries, old.Value.(*roleEntry).key)
	}
	return cache
}

// RoleSessionName derives an STS role session name (2-64 characters of
// [A-Za-z0-9+=,.@_-]) from a principal's string form: the sanitized name,
// cut from the front when too long so the subject at its end survives,
// followed by "-" and a hash of the exact input, so distinct principals
// always get distinct names.
func RoleSessionName(principal string) string {
	sum := sha256.Sum256([]byte(principal))
	suffix := "-" + hex.EncodeToString(sum[:5])
	clean := strings.Trim(sanitizeSTS(principal), "-")
	if room := 64 - len(suffix); len(clean) > room {
		clean = strings.TrimLeft(clean[len(clean)-room:], "-")
	}
	return clean + suffix
}

// stsName makes an STS source identity (2-64 characters of the same
// alphabet) from a subject: unchanged when it already fits, otherwise
// sanitized and suffixed with a hash like RoleSessionName, so a subject
// that needed rewriting can never collide with another.
func stsName(subject string) string {
	if len(subject) >= 2 && len(subject) <= 64 && sanitizeSTS(subject) == subject && !strings.HasPrefix(strings.ToLower(subject), "aws:") {
		return subject
	}
	return RoleSessionName(subject)
}

// sanitizeSTS replaces every character STS does not allow in session
// names and source identities with '-'.
func sanitizeSTS(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("+=,.@-_", c) >= 0) {
			b[i] = '-'
		}
	}
	return string(b)
}

func sessionTags(tagClaims map[string]string, claims map[string]any) []ststypes.Tag {
	if len(tagClaims) == 0 {
		return nil
	}
	keys := make([]string, 0, len(tagClaims))
	for k := range tagClaims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var tags []ststypes.Tag
	for _, k := range keys {
		v, ok := claims[tagClaims[k]]
		if !ok {
			continue
		}
		tags = append(tags, ststypes.Tag{Key: aws.String(tagValue(k, 128)), Value: aws.String(tagValue(fmt.Sprint(v), 256))})
	}
	return tags
}

// tagValue keeps the ASCII part of STS's tag alphabet (letters, digits,
// space and _.:/=+-@), replacing anything else with '_', and cuts to max
// characters.
func tagValue(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			break
		}
		ok := r == '_' || r == '.' || r == ':' || r == '/' || r == '=' || r == '+' || r == '-' || r == '@' || r == ' ' ||
			('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
		if !ok {
			r = '_'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
