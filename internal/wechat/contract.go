package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/papayd/papayd/internal/service"
)

const contractsPath = "/v3/global/papay/contracts"

// presignBody is the body of every pre-sign call; Presign leaves the
// fields a channel does not take empty, and empty optional fields are
// omitted.
type presignBody struct {
	SPAppID          string `json:"sp_appid"`
	SubMchID         string `json:"sub_mchid"`
	SubAppID         string `json:"sub_appid,omitempty"`
	PlanID           int64  `json:"plan_id"`
	OutContractCode  string `json:"out_contract_code"`
	UserDisplayName  string `json:"user_display_name,omitempty"`
	SuccessNotifyURL string `json:"success_notify_url"`
	OpenID           string `json:"openid,omitempty"`
	UserClientIP     string `json:"user_client_ip,omitempty"`
	ReturnURL        string `json:"return_url,omitempty"`
	ReturnAppID      string `json:"return_appid,omitempty"`
	ExpiredTime      string `json:"expired_time,omitempty"`
}

type presignAnswer struct {
	SessionID   string `json:"session_id"`
	SignURL     string `json:"sign_url"`
	ShowCodeURL string `json:"show_code_url"`
}

// presignPaths are the pre-sign endpoints by channel.
var presignPaths = map[service.Channel]string{
	service.ChannelMiniProgram: contractsPath + "/miniprogram-pre-entrust-sign",
	service.ChannelApp:         contractsPath + "/app-pre-entrust-sign",
	service.ChannelH5:          contractsPath + "/h5-pre-entrust-sign",
	service.ChannelJSAPI:       contractsPath + "/jsapi-pre-entrust-sign",
	service.ChannelWeb:         contractsPath + "/web-pre-entrust-sign",
}

// Presign calls the pre-sign endpoint of req.Channel with the fields that
// channel takes: openid for the mini program, APP and JSAPI; the client IP
// for the mini program, APP and H5; return_url for H5, JSAPI and WEB;
// return_appid for H5. An answer without the channel's session id or URL
// wraps service.ErrWeChatUnavailable.
func (c *Client) Presign(ctx context.Context, req service.PresignRequest) (service.PresignResult, error) {
	path, ok := presignPaths[req.Channel]
	if !ok {
		return service.PresignResult{}, fmt.Errorf("wechatpay presign: unknown channel %q", req.Channel)
	}
	b := presignBody{
		SPAppID: req.SPAppID, SubMchID: req.SubMchID, SubAppID: req.SubAppID, PlanID: req.PlanID,
		OutContractCode: req.OutContractCode, UserDisplayName: req.UserDisplayName,
		SuccessNotifyURL: req.SuccessNotifyURL,
	}
	ch := req.Channel
	if ch == service.ChannelMiniProgram || ch == service.ChannelApp || ch == service.ChannelJSAPI {
		b.OpenID = req.OpenID
	}
	if ch == service.ChannelMiniProgram || ch == service.ChannelApp || ch == service.ChannelH5 {
		b.UserClientIP = req.UserClientIP
	}
	if ch == service.ChannelH5 || ch == service.ChannelJSAPI || ch == service.ChannelWeb {
		b.ReturnURL = req.ReturnURL
	}
	if ch == service.ChannelH5 {
		b.ReturnAppID = req.ReturnAppID
	}
	if !req.ExpireTime.IsZero() {
		b.ExpiredTime = req.ExpireTime.Format(time.RFC3339)
	}
	body, err := marshal(b)
	if err != nil {
		return service.PresignResult{}, fmt.Errorf("wechatpay presign: %w", err)
	}
	answer, err := c.do(ctx, http.MethodPost, path, nil, body)
	if err != nil {
		return service.PresignResult{}, err
	}
	var a presignAnswer
	if err := json.Unmarshal(answer, &a); err != nil {
		return service.PresignResult{}, c.unusable(ctx, http.MethodPost, path, "pre-sign answer is not JSON")
	}
	var res service.PresignResult
	switch ch {
	case service.ChannelMiniProgram, service.ChannelApp:
		res.SessionID = a.SessionID
	case service.ChannelH5, service.ChannelJSAPI:
		res.SignURL = a.SignURL
	case service.ChannelWeb:
		// show_code_url since 2025-04; sign_url before.
		res.ShowCodeURL = a.ShowCodeURL
		if res.ShowCodeURL == "" {
			res.ShowCodeURL = a.SignURL
		}
	}
	if res == (service.PresignResult{}) {
		return res, c.unusable(ctx, http.MethodPost, path, "pre-sign answer has no session id or URL")
	}
	return res, nil
}

// contractAnswer is the contract object; unknown fields are ignored.
type contractAnswer struct {
	ContractID      string    `json:"contract_id"`
	OutContractCode string    `json:"out_contract_code"`
	PlanID          flexInt   `json:"plan_id"`
	OpenID          string    `json:"openid"`
	UserDisplayName string    `json:"user_display_name"`
	State           string    `json:"state"`
	SignedTime      looseTime `json:"signed_time"`
	TerminatedTime  looseTime `json:"terminated_time"`
	TerminationMode string    `json:"termination_mode"`
	TerminationNote string    `json:"termination_note"`
}

// queryContract reads a contract by q.ContractID, or by q.OutContractCode
// and q.PlanID when ContractID is empty; QueryContract limits it. State and
// termination mode are kept as WeChat gives them.
func (c *Client) queryContract(ctx context.Context, q service.ContractQuery) (service.RemoteContract, error) {
	query := merchantQuery(q.Merchant)
	var path string
	switch {
	case q.ContractID != "":
		seg, err := pathSegment(q.ContractID)
		if err != nil {
			return service.RemoteContract{}, fmt.Errorf("wechatpay query contract: contract id: %w", err)
		}
		path = contractsPath + "/" + seg
	case q.OutContractCode != "":
		seg, err := pathSegment(q.OutContractCode)
		if err != nil {
			return service.RemoteContract{}, fmt.Errorf("wechatpay query contract: out_contract_code: %w", err)
		}
		path = contractsPath + "/out-contract-code/" + seg
		query.Set("plan_id", strconv.FormatInt(q.PlanID, 10))
	default:
		return service.RemoteContract{}, errors.New("wechatpay query contract: no contract id and no out_contract_code")
	}
	answer, err := c.do(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return service.RemoteContract{}, err
	}
	var a contractAnswer
	if err := json.Unmarshal(answer, &a); err != nil {
		return service.RemoteContract{}, c.unusable(ctx, http.MethodGet, path, "contract answer does not decode")
	}
	return service.RemoteContract{
		ContractID: a.ContractID, OutContractCode: a.OutContractCode, PlanID: int64(a.PlanID),
		OpenID: a.OpenID, UserDisplayName: a.UserDisplayName, State: a.State,
		SignedTime: time.Time(a.SignedTime), TerminatedTime: time.Time(a.TerminatedTime),
		TerminationMode: service.TerminationMode(a.TerminationMode), TerminationNote: a.TerminationNote,
	}, nil
}

type terminateBody struct {
	SPAppID         string `json:"sp_appid"`
	SubMchID        string `json:"sub_mchid"`
	SubAppID        string `json:"sub_appid,omitempty"`
	TerminationNote string `json:"termination_note"`
}

// TerminateContract ends a contract; WeChat answers 204 without a body.
func (c *Client) TerminateContract(ctx context.Context, req service.TerminateRequest) error {
	seg, err := pathSegment(req.ContractID)
	if err != nil {
		return fmt.Errorf("wechatpay terminate contract: contract id: %w", err)
	}
	body, err := marshal(terminateBody{
		SPAppID: req.SPAppID, SubMchID: req.SubMchID, SubAppID: req.SubAppID, TerminationNote: req.TerminationNote,
	})
	if err != nil {
		return fmt.Errorf("wechatpay terminate contract: %w", err)
	}
	_, err = c.do(ctx, http.MethodPost, contractsPath+"/"+seg+"/terminate", nil, body)
	return err
}

func merchantQuery(m service.Merchant) url.Values {
	q := url.Values{"sub_mchid": {m.SubMchID}, "sp_appid": {m.SPAppID}}
	if m.SubAppID != "" {
		q.Set("sub_appid", m.SubAppID)
	}
	return q
}

// pathSegment escapes s as one path segment.
func pathSegment(s string) (string, error) {
	if s == "" || s == "." || s == ".." {
		return "", fmt.Errorf("%q is not a path segment", s)
	}
	return url.PathEscape(s), nil
}

// unusable reports a verified answer papayd cannot read: the call's effect
// at WeChat is unknown.
func (c *Client) unusable(ctx context.Context, method, path, reason string) error {
	c.log.WarnContext(ctx, "wechatpay answer unusable", "method", method, "path", path, "reason", reason)
	return fmt.Errorf("wechatpay %s %s: %w: %s", method, path, service.ErrWeChatUnavailable, reason)
}
