package sandbox

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"time"

	qrcode "github.com/skip2/go-qrcode"
)

// SignPagePath is the path of the signing page served by SignPageHandler.
const SignPagePath = "/sandbox/sign"

// maxFormBytes caps the body of the signing page's form post.
const maxFormBytes = 16 << 10

//go:embed signpage.html
var signPageHTML string

var signPageTemplate = template.Must(template.New("signpage").Parse(signPageHTML))

// signPageCSP allows the page's inline style and its data: QR code, and form posts to
// itself; nothing is loaded from anywhere.
const signPageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// signURL is the sign_url of an H5 or JSAPI session.
func (s *Sandbox) signURL(id string) string {
	if s.signPageBase != "" {
		return s.signPageURL(id)
	}
	return signURLPrefix + url.QueryEscape(id) + signURLSuffix
}

// showCodeURL is the show_code_url of a WEB session.
func (s *Sandbox) showCodeURL(id string) string {
	if s.signPageBase != "" {
		return s.signPageURL(id)
	}
	return showCodeURLPrefix + url.QueryEscape(id)
}

func (s *Sandbox) signPageURL(id string) string {
	return s.signPageBase + SignPagePath + "?os_session_id=" + url.QueryEscape(id)
}

// SignPageHandler serves the signing page at SignPagePath: GET shows a session (any
// channel's, by os_session_id) with Agree and Decline buttons, POST is the form those
// buttons send. Agree is SignSession with no user given, as the control API's
// {session_id}:sign with an empty body (H5 and WEB sessions take the openid typed into the
// form, or a generated one); Decline is DeclineSession. A post must come from the page
// itself: cross-origin posts (Sec-Fetch-Site, Origin) are refused, and the form carries a
// token bound to the session and to the sandbox's APIv3 key.
func (s *Sandbox) SignPageHandler() http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.renderSignPage(w, http.StatusForbidden, &signPage{Title: "Refused",
			Error: "This form was sent from another site. Open the signing page and use its buttons."})
	}))
	return cop.Handler(http.HandlerFunc(s.serveSignPage))
}

// signPage is what the template shows.
type signPage struct {
	Title       string
	Entry       bool     // no session asked for: the form to open one by id
	Session     *Session // nil on error pages without a session
	SPMchID     string
	Expires     string
	Token       string
	Pending     bool
	AskOpenID   bool         // H5 and WEB: the user is whoever opens the page
	SessionURL  string       // WEB: what the QR code holds
	QRCode      template.URL // WEB: a data: URL of the QR code PNG
	Outcome     string       // after a button: what happened
	Error       string
	ContractID  string
	ReturnURL   string
	RefreshMeta string // the meta refresh content that follows ReturnURL
}

func (s *Sandbox) serveSignPage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != SignPagePath {
		s.renderSignPage(w, http.StatusNotFound, &signPage{Title: "Not found", Error: "No such page."})
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.showSignPage(w, r)
	case http.MethodPost:
		s.postSignPage(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		s.renderSignPage(w, http.StatusMethodNotAllowed, &signPage{Title: "Method not allowed",
			Error: "The signing page answers GET and POST only."})
	}
}

func (s *Sandbox) showSignPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("os_session_id")
	if id == "" {
		s.renderSignPage(w, http.StatusOK, &signPage{Title: "Open a signing session", Entry: true})
		return
	}
	sess, ok := s.Session(id)
	if !ok {
		s.renderSignPage(w, http.StatusNotFound, &signPage{Title: "Session not found",
			Error: "There is no signing session " + id + "."})
		return
	}
	p := s.sessionPage(r, sess)
	status := http.StatusOK
	if sess.State == SessionExpired {
		status = http.StatusGone
	}
	s.renderSignPage(w, status, p)
}

func (s *Sandbox) postSignPage(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.renderSignPage(w, http.StatusBadRequest, &signPage{Title: "Bad request", Error: "The form could not be read."})
		return
	}
	id, action := r.PostForm.Get("os_session_id"), r.PostForm.Get("action")
	want := s.signPageToken(id)
	if !hmac.Equal([]byte(r.PostForm.Get("token")), []byte(want)) {
		s.renderSignPage(w, http.StatusForbidden, &signPage{Title: "Refused",
			Error: "This form is not the signing page's own (or is from before the sandbox's keys changed). Reload the page."})
		return
	}
	openID := r.PostForm.Get("openid")
	if len(openID) > 128 {
		s.renderSignPage(w, http.StatusBadRequest, &signPage{Title: "Bad request", Error: "An openid has at most 128 characters."})
		return
	}
	if action != "agree" && action != "decline" {
		s.renderSignPage(w, http.StatusBadRequest, &signPage{Title: "Bad request", Error: "Choose Agree or Decline."})
		return
	}
	var (
		contract Contract
		err      error
	)
	if action == "agree" {
		contract, err = s.SignSession(id, User{OpenID: openID})
	} else {
		err = s.DeclineSession(id)
	}
	sess, found := s.Session(id)
	if !found {
		s.renderSignPage(w, http.StatusNotFound, &signPage{Title: "Session not found",
			Error: "There is no signing session " + id + "."})
		return
	}
	p := s.sessionPage(r, sess)
	if err != nil {
		p.Error = signPageError(err)
		s.renderSignPage(w, signPageStatus(err), p)
		return
	}
	p.Error = "" // the session's closed state is the outcome itself
	if action == "agree" {
		p.Title, p.Outcome, p.ContractID = "Signed", "You agreed. The contract is signed.", contract.ContractID
	} else {
		p.Title, p.Outcome = "Declined", "You declined. No contract was signed."
	}
	if sess.ReturnURL != "" {
		p.ReturnURL = sess.ReturnURL
		p.RefreshMeta = "3;url=" + sess.ReturnURL
	}
	s.renderSignPage(w, http.StatusOK, p)
}

// sessionPage describes a session as it stands.
func (s *Sandbox) sessionPage(r *http.Request, sess Session) *signPage {
	p := &signPage{Session: &sess, SPMchID: s.creds.MchID,
		Expires: sess.ExpiresAt.UTC().Format(time.DateTime + " UTC")}
	switch sess.State {
	case SessionPending:
		p.Title, p.Pending, p.Token = "Authorize automatic deduction", true, s.signPageToken(sess.ID)
		p.AskOpenID = sess.OpenID == ""
	case SessionSigned:
		p.Title, p.ContractID = "Already signed", sess.ContractID
		p.Error = "This session is already signed: it cannot be used again."
	case SessionDeclined:
		p.Title, p.Error = "Declined", "This session was declined: it cannot be used again."
	case SessionExpired:
		p.Title, p.Error = "Session expired", "This signing session has expired. Ask the merchant for a new one."
	}
	if sess.Channel == ChannelWeb && sess.State == SessionPending {
		p.SessionURL = s.pageURLFor(r, sess.ID)
		if png, err := qrcode.Encode(p.SessionURL, qrcode.Medium, 256); err == nil {
			p.QRCode = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
		}
	}
	return p
}

// pageURLFor is the session's page URL: under SignPageBaseURL, else under the address the
// request came to.
func (s *Sandbox) pageURLFor(r *http.Request, id string) string {
	if s.signPageBase != "" {
		return s.signPageURL(id)
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + SignPagePath + "?os_session_id=" + url.QueryEscape(id)
}

// signPageToken binds a form to its session: an HMAC of the session id under a key
// derived from the APIv3 key, so it outlives a restart with the same credentials.
func (s *Sandbox) signPageToken(sessionID string) string {
	k := hmac.New(sha256.New, s.creds.APIv3Key)
	k.Write([]byte("papayd sandbox signing page"))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// signPageError words a SignSession or DeclineSession error for the user.
func signPageError(err error) string {
	switch {
	case errors.Is(err, ErrSessionExpired):
		return "This signing session has expired. Ask the merchant for a new one."
	case errors.Is(err, ErrSessionClosed):
		return "This session was already used: it cannot be used again."
	case errors.Is(err, ErrContractExists):
		return "A signed contract already exists for this contract code or this user and plan."
	case errors.Is(err, ErrUserMismatch):
		return "This session is for another WeChat user."
	}
	return err.Error()
}

// signPageStatus is the HTTP status of a failed button, as the control API's.
func signPageStatus(err error) int {
	switch {
	case errors.Is(err, ErrSessionNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrSessionExpired):
		return http.StatusGone
	case errors.Is(err, ErrSessionClosed), errors.Is(err, ErrContractExists):
		return http.StatusConflict
	case errors.Is(err, ErrUserMismatch):
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

func (s *Sandbox) renderSignPage(w http.ResponseWriter, status int, p *signPage) {
	var buf bytes.Buffer
	if err := signPageTemplate.Execute(&buf, p); err != nil {
		s.log.Error("sandbox: signing page", "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", signPageCSP)
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
