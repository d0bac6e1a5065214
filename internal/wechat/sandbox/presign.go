package sandbox

import (
	"io"
	"net/http"
	"net/url"
	"time"
)

// Channel is the pre-sign variant a session was created through.
type Channel string

// The five pre-sign channels.
const (
	ChannelMiniProgram Channel = "MINIPROGRAM" // returns session_id
	ChannelApp         Channel = "APP"         // returns session_id
	ChannelH5          Channel = "H5"          // returns sign_url
	ChannelJSAPI       Channel = "JSAPI"       // returns sign_url
	ChannelWeb         Channel = "WEB"         // returns show_code_url
)

// SessionState is the state of a signing session.
type SessionState string

// Session states. EXPIRED is never stored: Session reports it for pending sessions past
// their expiry.
const (
	SessionPending  SessionState = "PENDING"
	SessionSigned   SessionState = "SIGNED"
	SessionDeclined SessionState = "DECLINED"
	SessionExpired  SessionState = "EXPIRED"
)

// defaultSessionLifetime applies when a pre-sign request has no expired_time (WeChat's
// Global default is not documented; domestic sessions last 2 h).
const defaultSessionLifetime = 2 * time.Hour

// Sign URL shapes returned by the H5/JSAPI and WEB channels without Options.SignPageBaseURL.
const (
	signURLPrefix     = "https://apihk.mch.weixin.qq.com/global/papay/contracts/login?os_session_id="
	signURLSuffix     = "#wechat_redirect"
	showCodeURLPrefix = "https://osapp.pay.weixin.qq.com/global/papay/contracts/sessions/show_code?os_session_id="
)

// Session is a signing session created by a pre-sign call: everything the merchant sent,
// waiting for the user to agree. For H5, JSAPI and WEB the id is the os_session_id of the
// returned URL.
type Session struct {
	ID               string       `json:"session_id"`
	Channel          Channel      `json:"channel"`
	State            SessionState `json:"state"`
	SubMchID         string       `json:"sub_mchid"`
	SPAppID          string       `json:"sp_appid"`
	SubAppID         string       `json:"sub_appid,omitempty"`
	PlanID           int64        `json:"plan_id"`
	OutContractCode  string       `json:"out_contract_code"`
	UserDisplayName  string       `json:"user_display_name,omitempty"`
	SuccessNotifyURL string       `json:"success_notify_url"`
	OpenID           string       `json:"openid,omitempty"`
	UserClientIP     string       `json:"user_client_ip,omitempty"`
	ReturnURL        string       `json:"return_url,omitempty"`
	ReturnAppID      string       `json:"return_appid,omitempty"`
	CreatedAt        time.Time    `json:"created_at"`
	ExpiresAt        time.Time    `json:"expires_at"`
	ContractID       string       `json:"contract_id,omitempty"`
}

// presignRequest is the body of all five pre-sign calls; each channel reads its subset.
type presignRequest struct {
	SubMchID         string `json:"sub_mchid"`
	SPAppID          string `json:"sp_appid"`
	SubAppID         string `json:"sub_appid"`
	PlanID           *int64 `json:"plan_id"`
	OutContractCode  string `json:"out_contract_code"`
	UserDisplayName  string `json:"user_display_name"`
	SuccessNotifyURL string `json:"success_notify_url"`
	OpenID           string `json:"openid"`
	UserClientIP     string `json:"user_client_ip"`
	ExpiredTime      string `json:"expired_time"`
	ReturnURL        string `json:"return_url"`
	ReturnAppID      string `json:"return_appid"`
}

// handlePresign serves one pre-sign channel.
func (s *Sandbox) handlePresign(ch Channel) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // already buffered by routeAPI
		var req presignRequest
		if e := decodeBody(body, &req); e != nil {
			writeAPIError(w, e)
			return
		}
		now := s.now()
		sess, e := checkPresign(ch, &req, now)
		if e == nil {
			e = s.authorize(sess.SubMchID, sess.SPAppID)
		}
		if e == nil {
			e = s.openSession(sess)
		}
		if e != nil {
			writeAPIError(w, e)
			return
		}
		switch ch {
		case ChannelMiniProgram, ChannelApp:
			writeJSON(w, http.StatusOK, map[string]string{"session_id": sess.ID})
		case ChannelH5, ChannelJSAPI:
			writeJSON(w, http.StatusOK, map[string]string{
				"sign_url": s.signURL(sess.ID)})
		case ChannelWeb:
			writeJSON(w, http.StatusOK, map[string]string{
				"show_code_url": s.showCodeURL(sess.ID)})
		}
	}
}

// checkPresign validates the fields of ch in the order of the API's field table and
// returns the session they describe (without id).
func checkPresign(ch Channel, req *presignRequest, now time.Time) (*Session, *apiError) {
	c := fieldChecker{location: locBody}
	c.str("sub_mchid", req.SubMchID, 32, true)
	c.str("sp_appid", req.SPAppID, 32, true)
	c.str("sub_appid", req.SubAppID, 32, false)
	planID := c.planID(req.PlanID)
	c.str("out_contract_code", req.OutContractCode, 32, true)
	c.str("user_display_name", req.UserDisplayName, 32, false)
	c.notifyURL("success_notify_url", req.SuccessNotifyURL, true)
	sess := &Session{
		Channel: ch, State: SessionPending, SubMchID: req.SubMchID, SPAppID: req.SPAppID,
		SubAppID: req.SubAppID, PlanID: planID, OutContractCode: req.OutContractCode,
		UserDisplayName: req.UserDisplayName, SuccessNotifyURL: req.SuccessNotifyURL,
		CreatedAt: now,
	}
	switch ch {
	case ChannelMiniProgram, ChannelApp, ChannelJSAPI:
		c.str("openid", req.OpenID, 128, true)
		sess.OpenID = req.OpenID
	}
	switch ch {
	case ChannelMiniProgram, ChannelApp:
		c.ip("user_client_ip", req.UserClientIP, false)
		sess.UserClientIP = req.UserClientIP
	case ChannelH5:
		c.ip("user_client_ip", req.UserClientIP, true)
		sess.UserClientIP = req.UserClientIP
	}
	sess.ExpiresAt = c.time("expired_time", req.ExpiredTime, now)
	if sess.ExpiresAt.IsZero() {
		sess.ExpiresAt = now.Add(defaultSessionLifetime)
	}
	if ch != ChannelMiniProgram {
		c.absURL("return_url", req.ReturnURL)
		sess.ReturnURL = req.ReturnURL
	}
	if ch == ChannelH5 {
		c.str("return_appid", req.ReturnAppID, 32, false)
		sess.ReturnAppID = req.ReturnAppID
	}
	if c.err != nil {
		return nil, c.err
	}
	return sess, nil
}

// openSession stores sess under a new id unless the merchant contract number, or the
// user, already holds a SIGNED contract for the plan.
func (s *Sandbox) openSession(sess *Session) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.signedByCodeLocked(sess.SubMchID, sess.PlanID, sess.OutContractCode) != nil {
		return invalidRequest("out_contract_code already used: a signed contract exists for this plan")
	}
	if sess.OpenID != "" && s.signedByUserLocked(sess.SubMchID, sess.PlanID, sess.OpenID) != nil {
		return invalidRequest("the user already holds a signed contract for this plan")
	}
	for {
		sess.ID = newSessionID(sess.CreatedAt)
		if _, taken := s.sessions[sess.ID]; !taken {
			break
		}
	}
	s.sessions[sess.ID] = sess
	return nil
}

// Session returns a copy of a session; a pending session past its expiry is reported
// with state EXPIRED.
func (s *Sandbox) Session(sessionID string) (Session, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[sessionID]
	if !ok {
		return Session{}, false
	}
	out := *sess
	if out.State == SessionPending && !now.Before(out.ExpiresAt) {
		out.State = SessionExpired
	}
	return out, true
}

// SessionIDFromURL extracts the session id (os_session_id) from a sign_url or
// show_code_url returned by a pre-sign call.
func SessionIDFromURL(rawURL string) (string, bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", false
	}
	id := u.Query().Get("os_session_id")
	return id, id != ""
}
