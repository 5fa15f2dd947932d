package approval

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"

	"github.com/gatehouse-dev/gatehouse/identity"
)

// MaxBodyBytes bounds the body of a POST to the Handler.
const MaxBodyBytes = 16 << 10

// MinCSRFKeyLen is the shortest HandlerConfig.CSRFKey accepted.
const MinCSRFKeyLen = 32

// HandlerConfig configures the approver HTTP surface.
type HandlerConfig struct {
	// Broker does the work. Required.
	Broker *Broker
	// CSRFKey keys the HTML forms' anti-CSRF tokens (at least
	// MinCSRFKeyLen bytes). Nil means a random key per Handler, which is
	// fine for one replica; replicas behind a load balancer must share a
	// key or a form rendered by one is refused by another.
	CSRFKey []byte
	// TrustedOrigins are extra origins ("https://admin.example") allowed to
	// POST cross-origin (see net/http.CrossOriginProtection).
	TrustedOrigins []string
	// CanView decides whether viewer may see rec (list, show, and act: a
	// record it cannot see is "not found"). Nil means the requester and
	// every eligible approver (Record.Eligible).
	CanView func(viewer identity.Principal, rec Record) bool
	// Logger, if set, receives store failures.
	Logger *slog.Logger
}

// Handler is the approvers' HTTP surface: a JSON API and a small
// server-rendered HTML page over the same operations. Mount it behind
// identity.Bearer (it answers 401 to any request without a principal in
// the context), usually under a prefix with http.StripPrefix:
//
//	GET  /approvals?state=pending&principal=&action=&limit=   list (default state pending; state=all for every state)
//	GET  /approvals/{id}                                       one record, with the request summary and the rules' reasons
//	POST /approvals/{id}/approve   {"reason": "..."} optional  200 record | 403 | 404 | 409
//	POST /approvals/{id}/deny      {"reason": "..."} optional
//	GET  /ui/                                                  HTML: pending approvals the viewer can see
//	GET  /ui/{id}                                              HTML: one approval, with approve and deny forms
//	POST /ui/{id}/approve, /ui/{id}/deny                       HTML forms (csrf, reason); 303 back to /ui/{id}
type Handler struct {
	cfg  HandlerConfig
	b    *Broker
	key  []byte
	cop  *http.CrossOriginProtection
	mux  *http.ServeMux
	tmpl *template.Template
}

// NewHandler validates cfg and returns the Handler.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if cfg.Broker == nil {
		return nil, invalid("HandlerConfig.Broker", "required")
	}
	key := append([]byte(nil), cfg.CSRFKey...)
	switch {
	case key == nil:
		key = make([]byte, MinCSRFKeyLen)
		rand.Read(key)
	case len(key) < MinCSRFKeyLen:
		return nil, invalid("HandlerConfig.CSRFKey", "at least %d bytes required", MinCSRFKeyLen)
	}
	cop := http.NewCrossOriginProtection()
	for i, o := range cfg.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, invalid(fmt.Sprintf("HandlerConfig.TrustedOrigins[%d]", i), "%v", err)
		}
	}
	if cfg.CanView == nil {
		cfg.CanView = func(p identity.Principal, r Record) bool { return p.String() == r.Principal || r.Eligible(p) }
	}
	h := &Handler{cfg: cfg, b: cfg.Broker, key: key, cop: cop, mux: http.NewServeMux(), tmpl: uiTemplate}
	h.mux.HandleFunc("GET /approvals", h.apiList)
	h.mux.HandleFunc("GET /approvals/{id}", h.apiGet)
	h.mux.HandleFunc("POST /approvals/{id}/{verb}", h.apiVote)
	h.mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "ui/") // relative: correct under any mount prefix
		w.WriteHeader(http.StatusMovedPermanently)
	})
	h.mux.HandleFunc("GET /ui/{$}", h.uiList)
	h.mux.HandleFunc("GET /ui/{id}", h.uiGet)
	h.mux.HandleFunc("POST /ui/{id}/{verb}", h.uiVote)
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p, ok := identity.PrincipalFrom(r.Context()); !ok || p.Subject == "" {
		writeJSONError(w, http.StatusUnauthorized, "unauthenticated", "no authenticated principal: mount behind identity.Bearer")
		return
	}
	if err := h.cop.Check(r); err != nil {
		writeJSONError(w, http.StatusForbidden, "cross_origin", "cross-origin request refused")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// RecordView is a record as the API shows it to one viewer.
type RecordView struct {
	Record
	// URL is the approval page.
	URL string `json:"url,omitempty"`
	// CanVote reports whether the viewer may approve or deny it now.
	CanVote bool `json:"can_vote"`
}

func (h *Handler) view(p identity.Principal, rec Record) RecordView {
	return RecordView{Record: rec, URL: h.b.URL(rec.ID), CanVote: rec.State == Pending && rec.Eligible(p)}
}

type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Error: code, Message: msg})
}

// classify maps a broker error to an HTTP status, an error code and a
// message safe to show.
func (h *Handler) classify(err error) (int, string, string) {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, "not_found", "no such approval"
	case errors.Is(err, ErrSelfApproval):
		return http.StatusForbidden, "self_approval", "you cannot approve or deny your own request"
	case errors.Is(err, ErrNotApprover):
		return http.StatusForbidden, "not_approver", "you are not in an approver group of this request"
	case errors.Is(err, ErrNotPending):
		return http.StatusConflict, "not_pending", "the request is no longer pending"
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, "invalid", err.Error()
	}
	if h.cfg.Logger != nil {
		h.cfg.Logger.Error("approval: handler: store failure", "err", err)
	}
	return http.StatusServiceUnavailable, "unavailable", "the approval store is unavailable"
}

func (h *Handler) apiError(w http.ResponseWriter, err error) {
	status, code, msg := h.classify(err)
	writeJSONError(w, status, code, msg)
}

// lookup returns the record with the path's id if the viewer may see it;
// otherwise an error wrapping ErrNotFound.
func (h *Handler) lookup(r *http.Request, p identity.Principal) (Record, error) {
	id := r.PathValue("id")
	if !validID(id) {
		return Record{}, ErrNotFound
	}
	rec, err := h.b.Get(r.Context(), id)
	if err != nil {
		return Record{}, err
	}
	if !h.cfg.CanView(p, rec) {
		return Record{}, ErrNotFound
	}
	return rec, nil
}

func (h *Handler) list(r *http.Request, p identity.Principal) ([]RecordView, error) {
	q := r.URL.Query()
	f := Filter{State: State(q.Get("state")), Principal: q.Get("principal"), Action: q.Get("action"), Limit: MaxListLimit}
	switch f.State {
	case "":
		f.State = Pending
	case "all":
		f.State = ""
	}
	limit := DefaultListLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxListLimit {
			return nil, invalid("limit", "must be between 1 and %d", MaxListLimit)
		}
		limit = n
	}
	recs, err := h.b.List(r.Context(), f)
	if err != nil {
		return nil, err
	}
	out := []RecordView{}
	for _, rec := range recs {
		if len(out) == limit {
			break
		}
		if h.cfg.CanView(p, rec) {
			out = append(out, h.view(p, rec))
		}
	}
	return out, nil
}

func (h *Handler) apiList(w http.ResponseWriter, r *http.Request) {
	p, _ := identity.PrincipalFrom(r.Context())
	views, err := h.list(r, p)
	if err != nil {
		h.apiError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": views})
}

func (h *Handler) apiGet(w http.ResponseWriter, r *http.Request) {
	p, _ := identity.PrincipalFrom(r.Context())
	rec, err := h.lookup(r, p)
	if err != nil {
		h.apiError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h.view(p, rec))
}

// voteBody is the optional JSON body of approve and deny.
type voteBody struct {
	Reason string `json:"reason"`
}

func (h *Handler) apiVote(w http.ResponseWriter, r *http.Request) {
	p, _ := identity.PrincipalFrom(r.Context())
	verb := r.PathValue("verb")
	if verb != "approve" && verb != "deny" {
		writeJSONError(w, http.StatusNotFound, "not_found", "no such operation")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		writeJSONError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body above %d bytes", MaxBodyBytes))
		return
	}
	var vb voteBody
	if len(body) > 0 {
		// Requiring JSON keeps HTML forms (which cannot send it cross-site
		// without a CORS preflight) from reaching this endpoint.
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			writeJSONError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json")
			return
		}
		if err := json.Unmarshal(body, &vb); err != nil {
			writeJSONError(w, http.StatusBadRequest, "invalid", "body must be {\"reason\": \"...\"}")
			return
		}
	}
	rec, err := h.lookup(r, p)
	if err == nil {
		rec, err = h.cast(r, rec.ID, p, verb, vb.Reason)
	}
	if err != nil {
		h.apiError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h.view(p, rec))
}

func (h *Handler) cast(r *http.Request, id string, p identity.Principal, verb, reason string) (Record, error) {
	if verb == "approve" {
		return h.b.Approve(r.Context(), id, p, reason)
	}
	return h.b.Deny(r.Context(), id, p, reason)
}
