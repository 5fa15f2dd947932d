package awsproxy_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/rclone/gofakes3"
	"github.com/rclone/gofakes3/s3mem"

	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/identity"
)

// The gateway's own base credentials, which only the fake STS accepts.
const (
	stsBaseAKID   = "AKIAGATEWAYBASE00001"
	stsBaseSecret = "gateway-base-secret"
)

// assumeRoleCall is one AssumeRole request as the fake STS parsed it.
type assumeRoleCall struct {
	RoleArn         string
	RoleSessionName string
	SourceIdentity  string
	ExternalID      string
	Policy          string
	DurationSeconds string // "" when the client left it out
	Tags            map[string]string
	AccessKeyID     string // the access key id the request was signed with
}

// issuedKeys is what the fake STS hands out for one call.
type issuedKeys struct {
	AccessKeyID, SecretAccessKey, SessionToken string
	Expiration                                 time.Time
}

// fakeSTS is an STS AssumeRole endpoint on 127.0.0.1 that parses the query
// protocol form and answers with an AssumeRoleResponse whose keys and
// Expiration the test chooses.
type fakeSTS struct {
	Server *httptest.Server
	// Issue picks the keys of the n-th call (1-based); nil gives distinct
	// keys per call that expire in an hour.
	Issue func(n int64) issuedKeys
	// Hold, if set, makes every call wait for it to be closed; Entered is
	// closed when the first call arrives.
	Hold    chan struct{}
	Entered chan struct{}

	n     atomic.Int64
	once  sync.Once
	mu    sync.Mutex
	calls []assumeRoleCall
}

func newFakeSTS(t testing.TB) *fakeSTS {
	t.Helper()
	f := &fakeSTS{Entered: make(chan struct{})}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Server.Close)
	return f
}

// Calls returns the AssumeRole calls received so far.
func (f *fakeSTS) Calls() []assumeRoleCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]assumeRoleCall(nil), f.calls...)
}

// Client returns an STS client that calls the fake with the gateway's base
// credentials.
func (f *fakeSTS) Client() *sts.Client {
	return sts.New(sts.Options{
		BaseEndpoint:     aws.String(f.Server.URL),
		Region:           testRegion,
		Credentials:      credentials.NewStaticCredentialsProvider(stsBaseAKID, stsBaseSecret, ""),
		HTTPClient:       f.Server.Client(),
		RetryMaxAttempts: 1,
	})
}

var stsAuthScopeRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request,`)

func (f *fakeSTS) serve(w http.ResponseWriter, r *http.Request) {
	stsError := func(status int, code, msg string) {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake</RequestId></ErrorResponse>`, code, msg)
	}
	m := stsAuthScopeRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil || m[1] != stsBaseAKID || m[2] != testRegion || m[3] != "sts" {
		stsError(http.StatusForbidden, "InvalidClientTokenId", "not signed with the gateway's base key for sts/us-east-1")
		return
	}
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		stsError(http.StatusBadRequest, "InvalidRequest", "want a form POST")
		return
	}
	form := r.PostForm
	if form.Get("Action") != "AssumeRole" || form.Get("Version") != "2011-06-15" {
		stsError(http.StatusBadRequest, "InvalidAction", "only AssumeRole 2011-06-15")
		return
	}
	c := assumeRoleCall{
		RoleArn:         form.Get("RoleArn"),
		RoleSessionName: form.Get("RoleSessionName"),
		SourceIdentity:  form.Get("SourceIdentity"),
		ExternalID:      form.Get("ExternalId"),
		Policy:          form.Get("Policy"),
		DurationSeconds: form.Get("DurationSeconds"),
		AccessKeyID:     m[1],
	}
	for i := 1; form.Has("Tags.member." + strconv.Itoa(i) + ".Key"); i++ {
		if c.Tags == nil {
			c.Tags = map[string]string{}
		}
		p := "Tags.member." + strconv.Itoa(i)
		c.Tags[form.Get(p+".Key")] = form.Get(p + ".Value")
	}
	if c.RoleArn == "" || c.RoleSessionName == "" {
		stsError(http.StatusBadRequest, "ValidationError", "RoleArn and RoleSessionName are required")
		return
	}
	n := f.n.Add(1)
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	f.once.Do(func() { close(f.Entered) })
	if f.Hold != nil {
		<-f.Hold
	}
	keys := issuedKeys{
		AccessKeyID:     fmt.Sprintf("ASIAFAKE%08d", n),
		SecretAccessKey: fmt.Sprintf("assumed-secret-%d", n),
		SessionToken:    fmt.Sprintf("session-token-%d", n),
		Expiration:      time.Now().Add(time.Hour),
	}
	if f.Issue != nil {
		keys = f.Issue(n)
	}
	type assumeRoleResponse struct {
		XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleResponse"`
		Result  struct {
			SourceIdentity  string `xml:"SourceIdentity,omitempty"`
			AssumedRoleUser struct {
				Arn           string `xml:"Arn"`
				AssumedRoleID string `xml:"AssumedRoleId"`
			} `xml:"AssumedRoleUser"`
			Credentials struct {
				AccessKeyID     string `xml:"AccessKeyId"`
				SecretAccessKey string `xml:"SecretAccessKey"`
				SessionToken    string `xml:"SessionToken"`
				Expiration      string `xml:"Expiration"`
			} `xml:"Credentials"`
			PackedPolicySize int `xml:"PackedPolicySize"`
		} `xml:"AssumeRoleResult"`
		RequestID string `xml:"ResponseMetadata>RequestId"`
	}
	var out assumeRoleResponse
	out.Result.SourceIdentity = c.SourceIdentity
	out.Result.AssumedRoleUser.Arn = strings.Replace(c.RoleArn, ":role/", ":assumed-role/", 1) + "/" + c.RoleSessionName
	out.Result.AssumedRoleUser.AssumedRoleID = "AROAFAKE:" + c.RoleSessionName
	out.Result.Credentials.AccessKeyID = keys.AccessKeyID
	out.Result.Credentials.SecretAccessKey = keys.SecretAccessKey
	out.Result.Credentials.SessionToken = keys.SessionToken
	out.Result.Credentials.Expiration = keys.Expiration.UTC().Format(time.RFC3339)
	out.RequestID = "fake-" + strconv.FormatInt(n, 10)
	body, err := xml.Marshal(out)
	if err != nil {
		stsError(http.StatusInternalServerError, "InternalFailure", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Write(append([]byte(xml.Header), body...))
}

var sessionNameRE = regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]{2,64}$`)

func TestRoleSessionName(t *testing.T) {
	hashed := regexp.MustCompile(`-[0-9a-f]{10}$`)
	long := strings.Repeat("abcdefghij", 20)
	for _, tc := range []struct {
		name       string
		principal  string
		wantPrefix string // readable part kept before the hash suffix, which every name has
	}{
		{name: "valid name kept readable", principal: "agent-1", wantPrefix: "agent-1"},
		{name: "all allowed characters kept", principal: "a+b=c,d.e@f_g-h", wantPrefix: "a+b=c,d.e@f_g-h"},
		{name: "exactly 64 is cut to make room for the hash", principal: strings.Repeat("x", 64), wantPrefix: strings.Repeat("x", 53)},
		{name: "issuer#subject", principal: "https://idp.test#agent-1", wantPrefix: "https---idp.test-agent-1"},
		{name: "one character", principal: "a", wantPrefix: "a"},
		{name: "looks like a hashed name", principal: "a--ca978112ca", wantPrefix: "a--ca978112ca"},
		{name: "empty", principal: "", wantPrefix: ""},
		{name: "65 characters", principal: strings.Repeat("y", 65), wantPrefix: strings.Repeat("y", 53)},
		{name: "long keeps its end", principal: long + "#tail", wantPrefix: long[len(long)-48:] + "-tail"},
		{name: "non-ASCII", principal: "müller@example.com", wantPrefix: "m--ller@example.com"},
		{name: "tilde is not allowed", principal: "a~b", wantPrefix: "a-b"},
		{name: "leading separators trimmed", principal: "///x", wantPrefix: "x"},
		{name: "aws: prefix", principal: "aws:x", wantPrefix: "aws-x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := awsproxy.RoleSessionName(tc.principal)
			if !sessionNameRE.MatchString(got) {
				t.Fatalf("RoleSessionName(%q) = %q: not 2-64 of [A-Za-z0-9+=,.@_-]", tc.principal, got)
			}
			if again := awsproxy.RoleSessionName(tc.principal); again != got {
				t.Fatalf("not deterministic: %q then %q", got, again)
			}
			if !hashed.MatchString(got) {
				t.Fatalf("RoleSessionName(%q) = %q: want a -<10 hex> hash suffix", tc.principal, got)
			}
			if prefix := got[:len(got)-11]; prefix != tc.wantPrefix {
				t.Fatalf("RoleSessionName(%q) = %q: readable part %q, want %q", tc.principal, got, prefix, tc.wantPrefix)
			}
		})
	}
}

func TestRoleSessionNameDistinct(t *testing.T) {
	var principals []string
	head := "https://login.example.com/tenants/" + strings.Repeat("t", 80)
	tail := strings.Repeat("s", 80)
	for i := range 500 {
		// Distinct only at the end, past the truncation point of a prefix.
		principals = append(principals, head+"#"+strconv.Itoa(i))
		// Distinct only at the start, in the part truncation drops.
		principals = append(principals, "https://idp"+strconv.Itoa(i)+".test#"+tail)
	}
	// Distinct strings that sanitize to the same characters.
	principals = append(principals, "a/b", "a:b", "a-b", "a b", "a~b", "aüb", "a\x00b", "AB", "ab")
	seen := map[string]string{}
	for _, p := range principals {
		name := awsproxy.RoleSessionName(p)
		if !sessionNameRE.MatchString(name) {
			t.Fatalf("RoleSessionName(%q) = %q: invalid", p, name)
		}
		if other, dup := seen[name]; dup {
			t.Fatalf("principals %q and %q share the session name %q", other, p, name)
		}
		seen[name] = p
	}
}

// session returns an authenticated session of a principal, as an
// Authenticator would.
func roleSession(issuer, subject, role string, claims map[string]any) *awsproxy.Session {
	return &awsproxy.Session{
		Principal: identity.Principal{Issuer: issuer, Subject: subject, Claims: claims},
		Role:      role,
	}
}

func TestAssumeRoleSourceRequest(t *testing.T) {
	const arn = "arn:aws:iam::123456789012:role/mcp-reader"
	for _, tc := range []struct {
		name               string
		role               awsproxy.Role
		sess               *awsproxy.Session
		wantSourceIdentity string
		wantTags           map[string]string
		wantDuration       []string // acceptable DurationSeconds values
	}{
		{
			name:               "plain subject",
			role:               awsproxy.Role{Name: "reader", ARN: arn},
			sess:               roleSession("https://idp.test", "agent-1", "", nil),
			wantSourceIdentity: "agent-1",
			// Role.Duration zero means one hour, sent explicitly (stscreds
			// would otherwise ask for 15 minutes).
			wantDuration: []string{"3600"},
		},
		{
			name: "every option",
			role: awsproxy.Role{
				Name: "reader", ARN: arn, ExternalID: "ext-42", Duration: 2 * time.Hour,
				Policy:    `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`,
				TagClaims: map[string]string{"team": "team", "Env": "env", "absent": "no-such-claim", "dept": "dept"},
			},
			sess: roleSession("https://idp.test", "user:42/ü", "reader", map[string]any{
				"team": "data/eng", "env": "prod", "dept": "R&D ü", "other": "ignored",
			}),
			wantSourceIdentity: awsproxy.RoleSessionName("user:42/ü"), // rewritten, so hashed
			wantTags:           map[string]string{"team": "data/eng", "Env": "prod", "dept": "R_D _"},
			wantDuration:       []string{"7200"},
		},
		{
			name:               "role by ARN, long subject",
			role:               awsproxy.Role{Name: "reader", ARN: arn, Duration: 15 * time.Minute},
			sess:               roleSession("https://idp.test", strings.Repeat("s", 100), arn, nil),
			wantSourceIdentity: awsproxy.RoleSessionName(strings.Repeat("s", 100)), // too long, so hashed
			wantDuration:       []string{"900"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSTS(t)
			src, err := awsproxy.NewAssumeRoleSource(context.Background(), awsproxy.AssumeRoleConfig{
				Client: f.Client(), Roles: []awsproxy.Role{tc.role},
			})
			if err != nil {
				t.Fatal(err)
			}
			creds, err := src.Credentials(context.Background(), tc.sess)
			if err != nil {
				t.Fatalf("Credentials: %v", err)
			}
			calls := f.Calls()
			if len(calls) != 1 {
				t.Fatalf("%d STS calls, want 1", len(calls))
			}
			c := calls[0]
			if c.AccessKeyID != stsBaseAKID {
				t.Errorf("STS call signed by %q, want the base key", c.AccessKeyID)
			}
			if c.RoleArn != arn {
				t.Errorf("RoleArn = %q, want %q", c.RoleArn, arn)
			}
			if want := awsproxy.RoleSessionName(tc.sess.Principal.String()); c.RoleSessionName != want {
				t.Errorf("RoleSessionName = %q, want %q", c.RoleSessionName, want)
			}
			if !sessionNameRE.MatchString(c.RoleSessionName) {
				t.Errorf("RoleSessionName %q is not a valid STS session name", c.RoleSessionName)
			}
			if c.SourceIdentity != tc.wantSourceIdentity {
				t.Errorf("SourceIdentity = %q, want %q", c.SourceIdentity, tc.wantSourceIdentity)
			}
			if c.ExternalID != tc.role.ExternalID {
				t.Errorf("ExternalId = %q, want %q", c.ExternalID, tc.role.ExternalID)
			}
			if c.Policy != tc.role.Policy {
				t.Errorf("Policy = %q, want %q", c.Policy, tc.role.Policy)
			}
			okDuration := false
			for _, d := range tc.wantDuration {
				okDuration = okDuration || c.DurationSeconds == d
			}
			if !okDuration {
				t.Errorf("DurationSeconds = %q, want one of %q", c.DurationSeconds, tc.wantDuration)
			}
			if fmt.Sprint(c.Tags) != fmt.Sprint(tc.wantTags) {
				t.Errorf("Tags = %v, want %v", c.Tags, tc.wantTags)
			}
			if creds.AccessKeyID != "ASIAFAKE00000001" || creds.SecretAccessKey != "assumed-secret-1" || creds.SessionToken != "session-token-1" {
				t.Errorf("credentials = %+v, want the ones STS issued", creds)
			}
			if !creds.CanExpire || creds.Expires.IsZero() {
				t.Errorf("credentials do not expire: %+v", creds)
			}
			t.Logf("session name %q, DurationSeconds %q", c.RoleSessionName, c.DurationSeconds)
		})
	}
}

func TestAssumeRoleSourceCache(t *testing.T) {
	f := newFakeSTS(t)
	roles := []awsproxy.Role{
		{Name: "reader", ARN: "arn:aws:iam::123456789012:role/reader"},
		{Name: "writer", ARN: "arn:aws:iam::123456789012:role/writer"},
	}
	src, err := awsproxy.NewAssumeRoleSource(context.Background(), awsproxy.AssumeRoleConfig{Client: f.Client(), Roles: roles, DefaultRole: "writer"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	keyOf := map[string]string{}
	for _, tc := range []struct {
		name      string
		sess      *awsproxy.Session
		wantCalls int64
		sameAs    string // earlier step whose credentials must be reused
		wantRole  string // RoleArn of the last STS call
	}{
		{name: "alice reader", sess: roleSession("https://idp.test", "alice", "reader", nil), wantCalls: 1, wantRole: roles[0].ARN},
		{name: "alice reader again", sess: roleSession("https://idp.test", "alice", "reader", nil), wantCalls: 1, sameAs: "alice reader"},
		{name: "alice reader by ARN", sess: roleSession("https://idp.test", "alice", roles[0].ARN, nil), wantCalls: 1, sameAs: "alice reader"},
		{name: "bob reader", sess: roleSession("https://idp.test", "bob", "reader", nil), wantCalls: 2, wantRole: roles[0].ARN},
		{name: "alice writer", sess: roleSession("https://idp.test", "alice", "writer", nil), wantCalls: 3, wantRole: roles[1].ARN},
		{name: "alice default role is writer", sess: roleSession("https://idp.test", "alice", "", nil), wantCalls: 3, sameAs: "alice writer"},
		{name: "alice of another issuer", sess: roleSession("https://other.test", "alice", "reader", nil), wantCalls: 4, wantRole: roles[0].ARN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			creds, err := src.Credentials(ctx, tc.sess)
			if err != nil {
				t.Fatal(err)
			}
			keyOf[tc.name] = creds.AccessKeyID
			if got := f.n.Load(); got != tc.wantCalls {
				t.Fatalf("STS calls = %d, want %d", got, tc.wantCalls)
			}
			if tc.sameAs != "" && creds.AccessKeyID != keyOf[tc.sameAs] {
				t.Fatalf("got key %s, want the cached %s of %q", creds.AccessKeyID, keyOf[tc.sameAs], tc.sameAs)
			}
			if tc.wantRole != "" {
				calls := f.Calls()
				if last := calls[len(calls)-1]; last.RoleArn != tc.wantRole {
					t.Fatalf("assumed %s, want %s", last.RoleArn, tc.wantRole)
				}
			}
		})
	}
}

func TestAssumeRoleSourceConcurrent(t *testing.T) {
	for _, tc := range []struct {
		name       string
		principals int
		wantCalls  int64
	}{
		{name: "one principal", principals: 1, wantCalls: 1},
		{name: "five principals", principals: 5, wantCalls: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSTS(t)
			f.Hold = make(chan struct{})
			src, err := awsproxy.NewAssumeRoleSource(context.Background(), awsproxy.AssumeRoleConfig{
				Client: f.Client(), Roles: []awsproxy.Role{{ARN: "arn:aws:iam::123456789012:role/r"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			const callers = 50
			keys := make([]string, callers)
			errs := make([]error, callers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range callers {
				wg.Go(func() {
					<-start
					c, err := src.Credentials(context.Background(), roleSession("https://idp.test", "p"+strconv.Itoa(i%tc.principals), "", nil))
					keys[i], errs[i] = c.AccessKeyID, err
				})
			}
			close(start)
			// Hold STS until a call has arrived and give the other callers
			// a moment to pile up behind it. Late callers find the cached
			// credentials, so the call count holds whatever the timing.
			<-f.Entered
			time.Sleep(50 * time.Millisecond)
			close(f.Hold)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("caller %d: %v", i, err)
				}
			}
			if got := f.n.Load(); got != tc.wantCalls {
				t.Fatalf("STS calls = %d, want %d", got, tc.wantCalls)
			}
			for i := range callers {
				if keys[i] != keys[i%tc.principals] {
					t.Fatalf("caller %d got %s, caller %d of the same principal got %s", i, keys[i], i%tc.principals, keys[i%tc.principals])
				}
			}
		})
	}
}

func TestAssumeRoleSourceRefresh(t *testing.T) {
	// The SDK's credentials cache reads the wall clock (its clock is
	// internal), so expirations are set relative to now with margins of
	// minutes: the outcome does not depend on how fast the test runs.
	for _, tc := range []struct {
		name       string
		window     time.Duration
		firstTTL   time.Duration // lifetime of the first credentials STS issues
		wantCalls  int64         // STS calls after three Credentials calls
		wantRotate bool          // second call gets new keys
	}{
		{name: "inside configured window", window: 30 * time.Minute, firstTTL: 20 * time.Minute, wantCalls: 2, wantRotate: true},
		{name: "outside configured window", window: 30 * time.Minute, firstTTL: 50 * time.Minute, wantCalls: 1},
		{name: "inside default window", window: 0, firstTTL: 2 * time.Minute, wantCalls: 2, wantRotate: true},
		{name: "outside default window", window: 0, firstTTL: 20 * time.Minute, wantCalls: 1},
		{name: "already expired", window: time.Minute, firstTTL: -time.Minute, wantCalls: 2, wantRotate: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSTS(t)
			f.Issue = func(n int64) issuedKeys {
				ttl := 2 * time.Hour
				if n == 1 {
					ttl = tc.firstTTL
				}
				return issuedKeys{
					AccessKeyID: fmt.Sprintf("ASIAREFRESH%05d", n), SecretAccessKey: "s", SessionToken: "t",
					Expiration: time.Now().Add(ttl),
				}
			}
			src, err := awsproxy.NewAssumeRoleSource(context.Background(), awsproxy.AssumeRoleConfig{
				Client: f.Client(), Roles: []awsproxy.Role{{ARN: "arn:aws:iam::123456789012:role/r"}}, ExpiryWindow: tc.window,
			})
			if err != nil {
				t.Fatal(err)
			}
			sess := roleSession("https://idp.test", "refresher", "", nil)
			var got []string
			for range 3 {
				c, err := src.Credentials(context.Background(), sess)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, c.AccessKeyID)
			}
			if n := f.n.Load(); n != tc.wantCalls {
				t.Fatalf("STS calls = %d, want %d (keys %v)", n, tc.wantCalls, got)
			}
			if rotated := got[1] != got[0]; rotated != tc.wantRotate {
				t.Fatalf("keys %v: rotated = %v, want %v", got, rotated, tc.wantRotate)
			}
			if got[2] != got[1] {
				t.Fatalf("keys %v: fresh credentials were not cached", got)
			}
		})
	}
}

func TestAssumeRoleSourceUnknownRole(t *testing.T) {
	f := newFakeSTS(t)
	src, err := awsproxy.NewAssumeRoleSource(context.Background(), awsproxy.AssumeRoleConfig{
		Client: f.Client(), Roles: []awsproxy.Role{{Name: "reader", ARN: "arn:aws:iam::123456789012:role/reader"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"writer", "arn:aws:iam::123456789012:role/writer", "READER"} {
		t.Run(name, func(t *testing.T) {
			_, err := src.Credentials(context.Background(), roleSession("https://idp.test", "alice", name, nil))
			var e *awsproxy.Error
			if !errors.As(err, &e) || e.Kind != awsproxy.KindAccessDenied {
				t.Fatalf("err = %v, want an *awsproxy.Error of KindAccessDenied", err)
			}
		})
	}
	if n := f.n.Load(); n != 0 {
		t.Fatalf("STS was called %d times for unknown roles", n)
	}
}

func TestNewAssumeRoleSourceValidation(t *testing.T) {
	client := newFakeSTS(t).Client()
	arn := func(name string) string { return "arn:aws:iam::123456789012:role/" + name }
	for _, tc := range []struct {
		name    string
		cfg     awsproxy.AssumeRoleConfig
		wantErr string // substring naming the bad field; "" for success
	}{
		{name: "no roles", cfg: awsproxy.AssumeRoleConfig{}, wantErr: "AssumeRoleConfig.Roles"},
		{name: "missing ARN", cfg: awsproxy.AssumeRoleConfig{Roles: []awsproxy.Role{{Name: "r"}}}, wantErr: "Roles[0].ARN"},
		{name: "not an ARN", cfg: awsproxy.AssumeRoleConfig{Roles: []awsproxy.Role{{ARN: arn("a")}, {ARN: "role/b"}}}, wantErr: "Roles[1].ARN"},
		{name: "duration too short", cfg: awsproxy.AssumeRoleConfig{Roles: []awsproxy.Role{{ARN: arn("a"), Duration: 5 * time.Minute}}}, wantErr: "Roles[0].Duration"},
		{name: "duration too long", cfg: awsproxy.AssumeRoleConfig{Roles: []awsproxy.Role{{ARN: arn("a"), Duration: 13 * time.Hour}}}, wantErr: "Roles[0].Duration"},
		{name: "duplicate name", cfg: awsproxy.AssumeRoleConfig{Roles: []awsproxy.Role{{Name: "r", ARN: arn("a")}, {Name: "r", ARN: arn("b")}}}, wantErr: "Roles[1]"},
		{name: "unknown default", cfg: awsproxy.AssumeRoleConfig{Roles: []awsproxy.Role{{Name: "r", ARN: arn("a")}}, DefaultRole: "s"}, wantErr: "DefaultRole"},
		{name: "valid", cfg: awsproxy.AssumeRoleConfig{Roles: []awsproxy.Role{{Name: "r", ARN: arn("a"), Duration: time.Hour}, {ARN: arn("b")}}, DefaultRole: arn("b")}},
		{name: "name equal to its ARN", cfg: awsproxy.AssumeRoleConfig{Roles: []awsproxy.Role{{Name: arn("a"), ARN: arn("a")}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Client = client
			src, err := awsproxy.NewAssumeRoleSource(context.Background(), tc.cfg)
			if tc.wantErr == "" {
				if err != nil || src == nil {
					t.Fatalf("NewAssumeRoleSource: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one naming %q", err, tc.wantErr)
			}
		})
	}
}

func TestAssumeRoleSourceLRU(t *testing.T) {
	f := newFakeSTS(t)
	src, err := awsproxy.NewAssumeRoleSource(context.Background(), awsproxy.AssumeRoleConfig{
		Client: f.Client(), Roles: []awsproxy.Role{{ARN: "arn:aws:iam::123456789012:role/r"}}, MaxEntries: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	// With room for two entries: a, b, c evicts a; a evicts b; c is still
	// cached (and becomes most recent); b evicts a.
	for i, tc := range []struct {
		name      string
		subject   string
		wantCalls int64
	}{
		{name: "a", subject: "a", wantCalls: 1},
		{name: "b", subject: "b", wantCalls: 2},
		{name: "c evicts a", subject: "c", wantCalls: 3},
		{name: "a again", subject: "a", wantCalls: 4},
		{name: "c cached", subject: "c", wantCalls: 4},
		{name: "b evicted", subject: "b", wantCalls: 5},
		{name: "c still cached", subject: "c", wantCalls: 5},
	} {
		if _, err := src.Credentials(context.Background(), roleSession("https://idp.test", tc.subject, "", nil)); err != nil {
			t.Fatalf("step %d (%s): %v", i, tc.name, err)
		}
		if got := f.n.Load(); got != tc.wantCalls {
			t.Fatalf("step %d (%s): STS calls = %d, want %d", i, tc.name, got, tc.wantCalls)
		}
	}
}

// TestAssumeRoleEndToEnd runs a gateway whose credentials come from the fake
// STS in front of an S3 that only knows the assumed-role keys.
func TestAssumeRoleEndToEnd(t *testing.T) {
	const (
		assumedAKID   = "ASIAASSUMEDROLE00001"
		assumedSecret = "assumed-role-secret"
		assumedToken  = "assumed-role-session-token"
		deniedAKID    = "GHCLIENTKEYDENIED01"
	)
	f := newFakeSTS(t)
	f.Issue = func(int64) issuedKeys {
		return issuedKeys{AccessKeyID: assumedAKID, SecretAccessKey: assumedSecret, SessionToken: assumedToken, Expiration: time.Now().Add(time.Hour)}
	}
	src, err := awsproxy.NewAssumeRoleSource(context.Background(), awsproxy.AssumeRoleConfig{
		Client: f.Client(),
		Roles:  []awsproxy.Role{{Name: "s3-rw", ARN: "arn:aws:iam::123456789012:role/s3-rw", TagClaims: map[string]string{"client": "azp"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seenAKIDs, seenTokens []string
	fake := gofakes3.New(s3mem.New(), gofakes3.WithV4Auth(map[string]string{assumedAKID: assumedSecret}))
	fakeHandler := fake.Server()
	s3srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := stsAuthScopeRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			mu.Lock()
			seenAKIDs = append(seenAKIDs, m[1])
			seenTokens = append(seenTokens, r.Header.Get("X-Amz-Security-Token"))
			mu.Unlock()
		}
		fakeHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(s3srv.Close)
	principal := identity.Principal{Issuer: "https://idp.test", Subject: "agent-7", Claims: map[string]any{"azp": "mcp-agent"}}
	h := newHarness(t, harnessOptions{TLS: true, Config: func(cfg *awsproxy.Config) {
		cfg.Credentials = src
		cfg.Upstreams["s3"] = s3srv.URL
		cfg.Authenticator = awsproxy.StaticAuthenticator{
			clientAKID: {SecretAccessKey: clientSecret, Principal: principal, Role: "s3-rw"},
			deniedAKID: {SecretAccessKey: clientSecret, Principal: principal, Role: "admin"},
		}
	}})
	client := h.s3Client(t)
	ctx := context.Background()
	bucket := "assumed"
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	body := []byte("written with assumed-role credentials")
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("k")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("GetObject = %q, want %q", got, body)
	}
	calls := f.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d STS calls for three S3 calls of one principal, want 1", len(calls))
	}
	if want := awsproxy.RoleSessionName(principal.String()); calls[0].RoleSessionName != want || calls[0].SourceIdentity != "agent-7" || calls[0].Tags["client"] != "mcp-agent" {
		t.Fatalf("AssumeRole call = %+v, want session %q, source identity agent-7, tag client=mcp-agent", calls[0], want)
	}
	mu.Lock()
	for i := range seenAKIDs {
		if seenAKIDs[i] != assumedAKID || seenTokens[i] != assumedToken {
			t.Errorf("upstream request %d signed by %q with token %q, want the assumed-role keys", i, seenAKIDs[i], seenTokens[i])
		}
	}
	if len(seenAKIDs) != 3 {
		t.Errorf("upstream saw %d signed requests, want 3", len(seenAKIDs))
	}
	mu.Unlock()

	// A caller mapped to a role the gateway does not have is refused with
	// AccessDenied before anything is sent upstream or to STS.
	before := len(seenAKIDs)
	denied := s3.NewFromConfig(h.awsConfig(t, deniedAKID, clientSecret), func(o *s3.Options) { o.UsePathStyle = true })
	_, err = denied.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("k")})
	if code := apiCode(err); code != "AccessDenied" {
		t.Fatalf("unknown role: error code %q (%v), want AccessDenied", code, err)
	}
	mu.Lock()
	after := len(seenAKIDs)
	mu.Unlock()
	if after != before || f.n.Load() != 1 {
		t.Fatalf("refused call reached the upstream (%d→%d) or STS (%d calls)", before, after, f.n.Load())
	}
}
