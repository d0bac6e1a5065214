package sandbox_test

import (
	"bytes"
	"encoding/base64"
	"html"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// pageEnv is an env whose sign_url and show_code_url point at a server of the signing page.
type pageEnv struct {
	*env
	pageURL string // the page server's base URL
}

func newPageEnv(t *testing.T, opts sandbox.Options) *pageEnv {
	t.Helper()
	mux := http.NewServeMux()
	page := httptest.NewServer(mux)
	t.Cleanup(page.Close)
	opts.SignPageBaseURL = page.URL + "/"
	e := newEnv(t, opts)
	mux.Handle(sandbox.SignPagePath, e.sb.SignPageHandler())
	return &pageEnv{env: e, pageURL: page.URL}
}

// presignURL calls an H5, JSAPI or WEB pre-sign and returns the URL answered.
func (e *pageEnv) presignURL(t *testing.T, channel string, body map[string]any) string {
	t.Helper()
	out := e.presignAnswer(t, channel, body)
	if u := out["sign_url"] + out["show_code_url"]; u != "" {
		return u
	}
	t.Fatalf("pre-sign %s: no URL in %v", channel, out)
	return ""
}

// page is one answer of the signing page.
type page struct {
	status int
	header http.Header
	body   string
}

func (e *pageEnv) get(t *testing.T, rawURL string) page {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

// post sends the page's form as a browser on the page's own origin does.
func (e *pageEnv) post(t *testing.T, form url.Values, header map[string]string) page {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.pageURL+sandbox.SignPagePath, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.pageURL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

func readPage(t *testing.T, resp *http.Response) page {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{resp.StatusCode, resp.Header, string(b)}
}

var (
	tokenField = regexp.MustCompile(`name="token" value="([^"]+)"`)
	qrImage    = regexp.MustCompile(`src="data:image/png;base64,([^"]+)"`)
)

// form is what the page's buttons post for action.
func (p page) form(t *testing.T, sessionID, action string) url.Values {
	t.Helper()
	m := tokenField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no token in the page:\n%s", p.body)
	}
	return url.Values{"os_session_id": {sessionID}, "token": {html.UnescapeString(m[1])}, "action": {action}}
}

func (p page) has(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(p.body, w) {
			t.Errorf("page (%d) lacks %q:\n%s", p.status, w, p.body)
		}
	}
}

func (p page) hasButtons() bool {
	return strings.Contains(p.body, `id="agree"`) || strings.Contains(p.body, `id="decline"`)
}

func sessionIDOf(t *testing.T, rawURL string) string {
	t.Helper()
	id, ok := sandbox.SessionIDFromURL(rawURL)
	if !ok {
		t.Fatalf("no os_session_id in %q", rawURL)
	}
	return id
}

// TestSignPageURLs: with SignPageBaseURL, H5 and JSAPI sign_url and WEB show_code_url
// point at the signing page, and SessionIDFromURL reads them.
func TestSignPageURLs(t *testing.T) {
	t.Parallel()
	e := newPageEnv(t, sandbox.Options{})
	for i, ch := range []string{"h5", "jsapi", "web"} {
		u := e.presignURL(t, ch, e.presignBody("C90"+string(rune('0'+i)), "oPage", e.sinkURL))
		id := sessionIDOf(t, u)
		if want := e.pageURL + "/sandbox/sign?os_session_id=" + url.QueryEscape(id); u != want {
			t.Errorf("%s: URL %q, want %q", ch, u, want)
		}
		if _, ok := e.sb.Session(id); !ok {
			t.Errorf("%s: session %s unknown", ch, id)
		}
	}
}

// TestSignPageShowsSession: the page shows the plan, the merchant, the user's display
// name, the contract code, the channel and the expiry, with Agree and Decline, and loads
// nothing from elsewhere.
func TestSignPageShowsSession(t *testing.T) {
	t.Parallel()
	e := newPageEnv(t, sandbox.Options{})
	body := e.presignBody("C910", "oJS", e.sinkURL)
	body["expired_time"] = "2099-01-02T03:04:05+08:00"
	u := e.presignURL(t, "jsapi", body)
	p := e.get(t, u)
	if p.status != http.StatusOK {
		t.Fatalf("status %d:\n%s", p.status, p.body)
	}
	p.has(t, "Plan 123", e.creds.SubMchID, e.creds.MchID, e.creds.SPAppID, e.creds.SubAppID,
		"Zhang San", "oJS", "C910", "JSAPI", "PENDING", "2099-01-01 19:04:05 UTC",
		`id="agree"`, `id="decline"`, `method="post" action="/sandbox/sign"`)
	if strings.Contains(p.body, `name="openid"`) {
		t.Error("a JSAPI session names its user: the page must not ask for an openid")
	}
	if got := p.header.Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", got)
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for _, ext := range []string{`src="http`, `href="http`, `src="//`, `href="//`, "<script", "<link"} {
		if strings.Contains(p.body, ext) {
			t.Errorf("page has %q", ext)
		}
	}

	// A mini program session, by its session_id.
	id := e.presign(t, "miniprogram", e.presignBody("C911", "oMP", e.sinkURL))
	p = e.get(t, e.pageURL+"/sandbox/sign?os_session_id="+url.QueryEscape(id))
	if p.status != http.StatusOK || !p.hasButtons() {
		t.Fatalf("mini program session: %d\n%s", p.status, p.body)
	}
	p.has(t, "MINIPROGRAM", "C911", "oMP")

	// Without a session: a form to open one by id.
	p = e.get(t, e.pageURL+"/sandbox/sign")
	if p.status != http.StatusOK || p.hasButtons() {
		t.Fatalf("entry page: %d\n%s", p.status, p.body)
	}
	p.has(t, `method="get"`, `name="os_session_id"`)
}

// TestSignPageAgree: Agree signs the session as the control API does (SignSession) and
// PAPAY.SIGN is delivered; the page then shows the contract, and the used session shows
// no buttons and cannot be signed again.
func TestSignPageAgree(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newPageEnv(t, sandbox.Options{Credentials: creds})
	u := e.presignURL(t, "jsapi", e.presignBody("C920", "oAgree", recv.URL))
	id := sessionIDOf(t, u)
	form := e.get(t, u).form(t, id, "agree")

	p := e.post(t, form, nil)
	if p.status != http.StatusOK {
		t.Fatalf("agree: %d\n%s", p.status, p.body)
	}
	sess, _ := e.sb.Session(id)
	if sess.State != sandbox.SessionSigned || sess.ContractID == "" {
		t.Fatalf("session after Agree: %+v", sess)
	}
	p.has(t, `id="outcome"`, "The contract is signed", sess.ContractID)
	if p.hasButtons() || strings.Contains(p.body, `http-equiv="refresh"`) || strings.Contains(p.body, `id="error"`) {
		t.Errorf("outcome page with buttons, a redirect (no return_url) or an error:\n%s", p.body)
	}
	n := recv.next(t)
	if n.req.EventType != sandbox.EventSign || n.content["contract_id"] != sess.ContractID ||
		n.content["openid"] != "oAgree" || n.content["out_contract_code"] != "C920" {
		t.Errorf("PAPAY.SIGN %s %v", n.req.EventType, n.content)
	}

	p = e.get(t, u)
	if p.status != http.StatusOK || p.hasButtons() {
		t.Fatalf("signed session page: %d\n%s", p.status, p.body)
	}
	p.has(t, "already signed", sess.ContractID)
	if p = e.post(t, form, nil); p.status != http.StatusConflict {
		t.Errorf("second Agree: %d\n%s", p.status, p.body)
	}
	p.has(t, "already used")
}

// TestSignPageAgreeH5WithOpenID: an H5 session names no user; the openid typed into the
// page becomes the contract's.
func TestSignPageAgreeH5WithOpenID(t *testing.T) {
	t.Parallel()
	e := newPageEnv(t, sandbox.Options{})
	u := e.presignURL(t, "h5", e.presignBody("C925", "", e.sinkURL))
	id := sessionIDOf(t, u)
	p := e.get(t, u)
	p.has(t, `name="openid"`)
	form := p.form(t, id, "agree")
	form.Set("openid", "oTyped")
	if p = e.post(t, form, nil); p.status != http.StatusOK {
		t.Fatalf("agree: %d\n%s", p.status, p.body)
	}
	sess, _ := e.sb.Session(id)
	c, ok := e.sb.Contract(sess.ContractID)
	if !ok || c.OpenID != "oTyped" {
		t.Errorf("contract %+v", c)
	}
}

// TestSignPageDeclineFollowsReturnURL: Decline closes the session with no notification
// and no contract; the outcome page follows the presign's return_url.
func TestSignPageDeclineFollowsReturnURL(t *testing.T) {
	t.Parallel()
	e := newPageEnv(t, sandbox.Options{})
	body := e.presignBody("C930", "", e.sinkURL)
	body["return_url"] = "https://merchant.example/back?x=1&y=2"
	u := e.presignURL(t, "h5", body)
	id := sessionIDOf(t, u)
	p := e.post(t, e.get(t, u).form(t, id, "decline"), nil)
	if p.status != http.StatusOK {
		t.Fatalf("decline: %d\n%s", p.status, p.body)
	}
	p.has(t, "You declined", `<meta http-equiv="refresh" content="3;url=https://merchant.example/back?x=1&amp;y=2">`,
		`href="https://merchant.example/back?x=1&amp;y=2"`)
	if p.hasButtons() || strings.Contains(p.body, `id="error"`) {
		t.Errorf("outcome page with buttons or an error:\n%s", p.body)
	}
	if sess, _ := e.sb.Session(id); sess.State != sandbox.SessionDeclined || sess.ContractID != "" {
		t.Errorf("session after Decline: %+v", sess)
	}
	if got := e.sb.Deliveries(); len(got) != 0 {
		t.Errorf("deliveries after Decline: %+v", got)
	}
	if len(e.sb.Contracts()) != 0 {
		t.Errorf("contracts after Decline: %+v", e.sb.Contracts())
	}
	p = e.get(t, u)
	if p.status != http.StatusOK || p.hasButtons() || strings.Contains(p.body, "refresh") {
		t.Errorf("declined session page: %d\n%s", p.status, p.body)
	}
	p.has(t, "was declined")
}

// TestSignPageExpired: an expired session shows so, with no buttons, and a form posted
// before it expired is refused with 410.
func TestSignPageExpired(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Now()}
	e := newPageEnv(t, sandbox.Options{Now: clk.Now})
	body := e.presignBody("C940", "oLate", e.sinkURL)
	body["expired_time"] = clk.Now().Add(time.Minute).Format(time.RFC3339)
	u := e.presignURL(t, "jsapi", body)
	id := sessionIDOf(t, u)
	form := e.get(t, u).form(t, id, "agree")
	clk.Advance(2 * time.Minute)

	p := e.get(t, u)
	if p.status != http.StatusGone || p.hasButtons() {
		t.Fatalf("expired page: %d\n%s", p.status, p.body)
	}
	p.has(t, "Session expired", "EXPIRED")
	if p = e.post(t, form, nil); p.status != http.StatusGone || p.hasButtons() {
		t.Errorf("Agree on an expired session: %d\n%s", p.status, p.body)
	}
	p.has(t, "has expired")
	if len(e.sb.Contracts()) != 0 {
		t.Error("an expired session was signed")
	}
}

// TestSignPageUnknownSession: an unknown session id is 404, by GET and by POST.
func TestSignPageUnknownSession(t *testing.T) {
	t.Parallel()
	e := newPageEnv(t, sandbox.Options{})
	p := e.get(t, e.pageURL+"/sandbox/sign?os_session_id=nosuchsession")
	if p.status != http.StatusNotFound || p.hasButtons() {
		t.Errorf("GET: %d\n%s", p.status, p.body)
	}
	p.has(t, "There is no signing session nosuchsession.")

	// A real session's page gives the form shape; its token does not fit another id.
	u := e.presignURL(t, "jsapi", e.presignBody("C950", "oX", e.sinkURL))
	form := e.get(t, u).form(t, sessionIDOf(t, u), "agree")
	form.Set("os_session_id", "nosuchsession")
	if p = e.post(t, form, nil); p.status != http.StatusForbidden {
		t.Errorf("POST with another session's token: %d\n%s", p.status, p.body)
	}
}

// TestSignPageMethods: the page answers GET, HEAD and POST only.
func TestSignPageMethods(t *testing.T) {
	t.Parallel()
	e := newPageEnv(t, sandbox.Options{})
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		req, _ := http.NewRequest(m, e.pageURL+"/sandbox/sign?os_session_id=x", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD, POST" {
			t.Errorf("%s: %d Allow %q", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	resp, err := http.Head(e.pageURL + "/sandbox/sign")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD: %d", resp.StatusCode)
	}
}

// TestSignPageRefusesForeignPosts: a post from another origin, or without the page's
// token, changes nothing.
func TestSignPageRefusesForeignPosts(t *testing.T) {
	t.Parallel()
	e := newPageEnv(t, sandbox.Options{})
	u := e.presignURL(t, "jsapi", e.presignBody("C960", "oVictim", e.sinkURL))
	id := sessionIDOf(t, u)
	good := e.get(t, u).form(t, id, "agree")
	noToken := url.Values{"os_session_id": {id}, "action": {"agree"}}
	badToken := url.Values{"os_session_id": {id}, "action": {"agree"}, "token": {"x" + good.Get("token")[1:]}}
	tests := []struct {
		name   string
		form   url.Values
		header map[string]string
	}{
		{"other origin", good, map[string]string{"Origin": "http://attacker.example", "Sec-Fetch-Site": ""}},
		{"cross-site fetch", good, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"same-site fetch", good, map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"no token", noToken, nil},
		{"wrong token", badToken, nil},
	}
	for _, tc := range tests {
		p := e.post(t, tc.form, tc.header)
		if p.status != http.StatusForbidden || p.hasButtons() {
			t.Errorf("%s: %d\n%s", tc.name, p.status, p.body)
		}
		p.has(t, "Refused")
	}
	if sess, _ := e.sb.Session(id); sess.State != sandbox.SessionPending {
		t.Fatalf("session after refused posts: %s", sess.State)
	}
	// The same form from the page itself goes through.
	if p := e.post(t, good, nil); p.status != http.StatusOK {
		t.Errorf("own post: %d\n%s", p.status, p.body)
	}
}

// TestSignPageBadForm: an unknown action and an overlong openid are 400.
func TestSignPageBadForm(t *testing.T) {
	t.Parallel()
	e := newPageEnv(t, sandbox.Options{})
	u := e.presignURL(t, "h5", e.presignBody("C970", "", e.sinkURL))
	id := sessionIDOf(t, u)
	form := e.get(t, u).form(t, id, "maybe")
	if p := e.post(t, form, nil); p.status != http.StatusBadRequest {
		t.Errorf("action maybe: %d", p.status)
	}
	form.Set("action", "agree")
	form.Set("openid", strings.Repeat("o", 129))
	if p := e.post(t, form, nil); p.status != http.StatusBadRequest {
		t.Errorf("129-character openid: %d", p.status)
	}
	if sess, _ := e.sb.Session(id); sess.State != sandbox.SessionPending {
		t.Errorf("session after bad forms: %s", sess.State)
	}
}

// TestSignPageWebQRCode: a WEB session's page holds a QR code PNG of its show_code_url,
// inline.
func TestSignPageWebQRCode(t *testing.T) {
	t.Parallel()
	e := newPageEnv(t, sandbox.Options{})
	u := e.presignURL(t, "web", e.presignBody("C980", "", e.sinkURL))
	p := e.get(t, u)
	if p.status != http.StatusOK || !p.hasButtons() {
		t.Fatalf("WEB page: %d\n%s", p.status, p.body)
	}
	p.has(t, "WEB", html.EscapeString(u))
	m := qrImage.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no inline QR code:\n%s", p.body)
	}
	raw, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("QR code PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 256 || b.Dy() != 256 {
		t.Errorf("QR code %v", b)
	}
	// Other channels have no QR code.
	if p := e.get(t, e.presignURL(t, "h5", e.presignBody("C981", "", e.sinkURL))); qrImage.MatchString(p.body) {
		t.Error("H5 page with a QR code")
	}
}

// TestSignURLsWithoutPage: without SignPageBaseURL the URLs are WeChat's.
func TestSignURLsWithoutPage(t *testing.T) {
	t.Parallel()
	e := &pageEnv{env: newEnv(t, sandbox.Options{})}
	if u := e.presignURL(t, "h5", e.presignBody("C990", "", e.sinkURL)); !strings.HasPrefix(u, "https://apihk.mch.weixin.qq.com/") {
		t.Errorf("sign_url %q", u)
	}
	if u := e.presignURL(t, "web", e.presignBody("C991", "", e.sinkURL)); !strings.HasPrefix(u, "https://osapp.pay.weixin.qq.com/") {
		t.Errorf("show_code_url %q", u)
	}
}
