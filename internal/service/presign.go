package service

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// PresignInput is a request to start a signing session.
type PresignInput struct {
	Channel           Channel // "" means the mini program
	PlanID            int64
	OutContractCode   string // "" means generate one
	OpenID            string
	UserDisplayName   string
	Merchant          // zero fields default from Config
	UserClientIP      string
	ReturnURL         string
	ReturnAppID       string
	SessionExpireTime time.Time // zero means now + Config.SessionTTL
}

// PresignOutput is the started session and its agreement.
type PresignOutput struct {
	Agreement Agreement
	Session   PresignResult
}

func (in *PresignInput) validate(now time.Time) error {
	var v violations
	switch in.Channel {
	case ChannelMiniProgram, ChannelApp, ChannelH5, ChannelJSAPI, ChannelWeb:
	default:
		v.add("channel", "unknown signing channel %q", in.Channel)
	}
	if in.PlanID <= 0 {
		v.add("plan_id", "is required and must be positive")
	}
	v.code("out_contract_code", in.OutContractCode, 32, false)
	v.token("openid", in.OpenID, 128, in.Channel.needsOpenID())
	v.text("user_display_name", in.UserDisplayName, 32, false)
	v.token("sub_mchid", in.SubMchID, 32, true)
	v.token("sp_appid", in.SPAppID, 32, true)
	v.token("sub_appid", in.SubAppID, 32, false)
	v.ip("user_client_ip", in.UserClientIP, in.Channel == ChannelH5)
	v.link("return_url", in.ReturnURL, 256)
	v.token("return_appid", in.ReturnAppID, 32, false)
	if in.ReturnAppID != "" && in.Channel != ChannelH5 {
		v.add("return_appid", "applies to the H5 channel only")
	}
	if in.ReturnURL != "" && (in.Channel == ChannelMiniProgram || in.Channel == ChannelApp) {
		v.add("return_url", "applies to the H5, JSAPI and WEB channels only")
	}
	if !in.SessionExpireTime.After(now) {
		v.add("session_expire_time", "must be in the future")
	}
	return v.err()
}

// sameRequest reports whether an existing agreement was created by the same
// presign parameters, so a retry may be answered from it.
func (in *PresignInput) sameRequest(a Agreement) bool {
	return a.PlanID == in.PlanID && a.Channel == in.Channel && a.OpenID == in.OpenID &&
		a.UserDisplayName == in.UserDisplayName && a.Merchant == in.Merchant &&
		a.UserClientIP == in.UserClientIP && a.ReturnURL == in.ReturnURL && a.ReturnAppID == in.ReturnAppID
}

// CreatePresignSession starts a signing session. The agreement is recorded
// PENDING before WeChat is called, so a signing notification can never
// arrive for an agreement papayd does not know. Retrying with the same
// out_contract_code and parameters answers the same session; other
// parameters are ErrOutContractCodeReused.
func (s *Service) CreatePresignSession(ctx context.Context, in PresignInput) (PresignOutput, error) {
	now := s.clock.Now()
	s.applyDefaults(&in, now)
	if err := in.validate(now); err != nil {
		return PresignOutput{}, err
	}
	a := Agreement{
		OutContractCode: in.OutContractCode, PlanID: in.PlanID, Merchant: in.Merchant,
		OpenID: in.OpenID, UserDisplayName: in.UserDisplayName, Channel: in.Channel,
		State: AgreementPending, SessionExpireTime: in.SessionExpireTime,
		UserClientIP: in.UserClientIP, ReturnURL: in.ReturnURL, ReturnAppID: in.ReturnAppID,
		CreateTime: now, UpdateTime: now, NextCheckTime: now.Add(s.cfg.Reconcile.FirstCheck),
	}
	var replay *Agreement
	err := s.store.InTx(ctx, func(tx Tx) error {
		old, err := tx.AgreementByOutContractCode(ctx, a.OutContractCode)
		if errors.Is(err, ErrNotFound) {
			return tx.CreateAgreement(ctx, a)
		}
		if err != nil {
			return err
		}
		if old.State != AgreementPending || !in.sameRequest(old) {
			return ErrOutContractCodeReused
		}
		if old.Session != (PresignResult{}) && now.Before(old.SessionExpireTime) {
			replay = &old
			return nil
		}
		// A retry of a call whose answer was lost, or of an expired session:
		// ask WeChat again with the same out_contract_code.
		a.CreateTime = old.CreateTime
		return tx.UpdateAgreement(ctx, a)
	})
	if err != nil {
		return PresignOutput{}, fmt.Errorf("presign %s: %w", a.OutContractCode, err)
	}
	if replay != nil {
		return PresignOutput{Agreement: *replay, Session: replay.Session}, nil
	}

	res, err := s.wechat.Presign(ctx, PresignRequest{
		Merchant: in.Merchant, Channel: in.Channel, PlanID: in.PlanID, OutContractCode: in.OutContractCode,
		OpenID: in.OpenID, UserDisplayName: in.UserDisplayName, SuccessNotifyURL: s.cfg.NotifyURL,
		UserClientIP: in.UserClientIP, ReturnURL: in.ReturnURL, ReturnAppID: in.ReturnAppID,
		ExpireTime: in.SessionExpireTime,
	})
	if err != nil {
		derr := fromRemote("presign "+a.OutContractCode, err)
		if KindOf(derr) != KindUnavailable {
			// WeChat refused: nothing was opened, so nothing is kept.
			if dErr := s.discardPending(ctx, a.OutContractCode); dErr != nil {
				return PresignOutput{}, errors.Join(derr, dErr)
			}
		}
		return PresignOutput{}, derr
	}
	err = s.store.InTx(ctx, func(tx Tx) error {
		cur, err := tx.AgreementByOutContractCode(ctx, a.OutContractCode)
		if err != nil {
			return err
		}
		cur.Session = res
		cur.UpdateTime = s.clock.Now()
		a = cur
		return tx.UpdateAgreement(ctx, cur)
	})
	if err != nil {
		return PresignOutput{}, fmt.Errorf("presign %s: record session: %w", a.OutContractCode, err)
	}
	s.log.InfoContext(ctx, "signing session started", "out_contract_code", a.OutContractCode,
		"plan_id", a.PlanID, "channel", string(a.Channel), "sub_mchid", a.SubMchID)
	return PresignOutput{Agreement: a, Session: res}, nil
}

func (s *Service) applyDefaults(in *PresignInput, now time.Time) {
	if in.Channel == "" {
		in.Channel = ChannelMiniProgram
	}
	if in.SubMchID == "" {
		in.SubMchID = s.cfg.SubMchID
	}
	if in.SPAppID == "" {
		in.SPAppID = s.cfg.SPAppID
	}
	if in.SubAppID == "" {
		in.SubAppID = s.cfg.SubAppID
	}
	if in.OutContractCode == "" {
		in.OutContractCode = s.ids.NewOutContractCode()
	}
	if in.SessionExpireTime.IsZero() {
		in.SessionExpireTime = now.Add(s.cfg.SessionTTL)
	}
	// WeChat keeps whole seconds (RFC 3339 without fraction): so do we.
	in.SessionExpireTime = in.SessionExpireTime.Truncate(time.Second)
}

// discardPending deletes a pending agreement that WeChat refused to open a
// session for, unless something else already moved it on.
func (s *Service) discardPending(ctx context.Context, code string) error {
	return s.store.InTx(ctx, func(tx Tx) error {
		a, err := tx.AgreementByOutContractCode(ctx, code)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if a.State != AgreementPending || a.Session != (PresignResult{}) {
			return nil
		}
		return tx.DeleteAgreement(ctx, code)
	})
}
