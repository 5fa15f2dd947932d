package approval

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// SlackConfig configures a Slack incoming-webhook notifier.
type SlackConfig struct {
	// WebhookURL is the incoming webhook (https://hooks.slack.com/...).
	// Required; it is a secret and never appears in errors.
	WebhookURL string
	// Client sends the requests; nil means a client with a
	// DefaultHTTPTimeout per attempt.
	Client *http.Client
	// Retry bounds the attempts.
	Retry Retry
}

// Slack posts an incoming-webhook message (a plain-text fallback plus
// Block Kit blocks: header, who wants what and why, resources and summary
// fields, a "Review" button linking to the approval page, and the id and
// deadline) for every new record.
type Slack struct {
	cfg    SlackConfig
	client *http.Client
}

// NewSlack validates cfg.
func NewSlack(cfg SlackConfig) (*Slack, error) {
	if err := checkHTTPURL("SlackConfig.WebhookURL", cfg.WebhookURL); err != nil {
		return nil, err
	}
	r, err := cfg.Retry.check("SlackConfig.Retry")
	if err != nil {
		return nil, err
	}
	cfg.Retry = r
	return &Slack{cfg: cfg, client: httpClient(cfg.Client)}, nil
}

// Slack message limits (Block Kit): texts are truncated to fit.
const (
	slackSectionText = 3000
	slackFieldText   = 2000
	slackMaxFields   = 10
	slackMaxResLines = 10
)

// SlackMessage is the incoming-webhook body Slack sends; exported so tests
// and tools can decode it.
type SlackMessage struct {
	Text   string       `json:"text"`
	Blocks []SlackBlock `json:"blocks"`
}

// SlackBlock is one Block Kit block (the subset Slack uses).
type SlackBlock struct {
	Type     string         `json:"type"`
	Text     *SlackText     `json:"text,omitempty"`
	Fields   []SlackText    `json:"fields,omitempty"`
	Elements []SlackElement `json:"elements,omitempty"`
}

// SlackText is a Block Kit text object.
type SlackText struct {
	Type string `json:"type"` // "plain_text" or "mrkdwn"
	Text string `json:"text"`
}

// SlackElement is a context text or an actions button.
type SlackElement struct {
	Type  string `json:"type"`           // "mrkdwn" or "button"
	Text  any    `json:"text,omitempty"` // string for mrkdwn, *SlackText for button
	URL   string `json:"url,omitempty"`
	Style string `json:"style,omitempty"`
	Value string `json:"value,omitempty"`
}

// Notify implements Notifier.
func (s *Slack) Notify(ctx context.Context, n Notification) error {
	body, err := json.Marshal(SlackMessageFor(n))
	if err != nil {
		return err
	}
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"gatehouse-approval"}}
	return post(ctx, s.client, s.cfg.Retry, s.cfg.WebhookURL, body, h)
}

// SlackMessageFor builds the message Slack sends for n.
func SlackMessageFor(n Notification) SlackMessage {
	r := n.Record
	who := r.Principal
	if r.Requester.Email != "" {
		who = r.Requester.Email + " (" + r.Principal + ")"
	}
	fallback := fmt.Sprintf("Approval needed: %s wants %s", who, r.Action)
	if n.URL != "" {
		fallback += " - " + n.URL
	}

	var main strings.Builder
	fmt.Fprintf(&main, "*%s* wants to call `%s`", slackEscape(who), slackEscape(r.Action))
	for _, q := range r.Requirements {
		reason := q.Reason
		if reason == "" {
			reason = "approval required"
		}
		fmt.Fprintf(&main, "\n*Rule* %s: %s (needs %d of %s)", slackEscape(q.Rule), slackEscape(reason),
			q.MinApprovals, slackEscape(strings.Join(q.Groups, ", ")))
	}

	blocks := []SlackBlock{
		{Type: "header", Text: &SlackText{Type: "plain_text", Text: "Approval needed: " + truncate(r.Action, 100)}},
		{Type: "section", Text: &SlackText{Type: "mrkdwn", Text: truncate(main.String(), slackSectionText)}},
	}

	var fields []SlackText
	if len(r.Resources) > 0 {
		var res strings.Builder
		res.WriteString("*Resources*")
		for i, a := range r.Resources {
			if i == slackMaxResLines {
				fmt.Fprintf(&res, "\n... and %d more", len(r.Resources)-i)
				break
			}
			res.WriteString("\n`" + slackEscape(a) + "`")
		}
		fields = append(fields, SlackText{Type: "mrkdwn", Text: truncate(res.String(), slackFieldText)})
	}
	keys := make([]string, 0, len(r.Summary))
	for k := range r.Summary {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if len(fields) == slackMaxFields {
			break
		}
		fields = append(fields, SlackText{Type: "mrkdwn", Text: truncate("*"+slackEscape(k)+"*\n"+slackEscape(r.Summary[k]), slackFieldText)})
	}
	if len(fields) > 0 {
		blocks = append(blocks, SlackBlock{Type: "section", Fields: fields})
	}
	if n.URL != "" {
		blocks = append(blocks, SlackBlock{Type: "actions", Elements: []SlackElement{{
			Type: "button", Text: &SlackText{Type: "plain_text", Text: "Review"}, URL: n.URL, Style: "primary", Value: r.ID,
		}}})
	}
	blocks = append(blocks, SlackBlock{Type: "context", Elements: []SlackElement{{
		Type: "mrkdwn", Text: fmt.Sprintf("Approval `%s` - expires %s", r.ID, r.ExpiresAt.UTC().Format(time.RFC3339)),
	}}})
	return SlackMessage{Text: truncate(fallback, slackSectionText), Blocks: blocks}
}

// slackEscape escapes the three characters Slack's mrkdwn treats as
// control characters.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
