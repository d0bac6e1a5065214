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
// out_contract_code and parameters answers the same session while it lives;
// after that (or when WeChat's answer was lost) WeChat is first asked
// whether the user signed under the code, and only if not is a new session
// opened. Other parameters, and a code already signed, are
// ErrOutContractCodeReused.
//
// The caller acts for its sub-merchants only: a sub_mchid it does not see
// is ErrPermissionDenied. Without one, a caller limited to one
// sub-merchant presigns for it; a caller of several, for the deployment's
// sub_mchid if it sees it, else sub_mchid is required. A code of another
// sub-merchant's agreement is ErrOutContractCodeReused, as for the
// caller's own code with other parameters: codes are unique across
// sub-merchants, so that the code is taken cannot be hidden, and nothing
// else about the agreement is told (WeChat is not asked about it).
func (s *Service) CreatePresignSession(ctx context.Context, in PresignInput) (PresignOutput, error) {
	now := s.clock.Now()
	caller := CallerFrom(ctx)
	s.applyDefaults(&in, now, caller)
	if in.SubMchID != "" && !caller.Sees(in.SubMchID) {
		return PresignOutput{}, wrap(ErrPermissionDenied, fmt.Sprintf("the API key does not act for sub_mchid %s", in.SubMchID), nil)
	}
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
	// One presign per code at a time in this process: a retry waits for the
	// attempt in flight (and replays its session), so a refused first
	// attempt never discards a record that a concurrent retry sent.
	unlock, err := s.lock(ctx, "presign/"+a.OutContractCode)
	if err != nil {
		return PresignOutput{}, fmt.Errorf("presign %s: %w", a.OutContractCode, err)
	}
	defer unlock()

	step, old, err := s.startPresign(ctx, &in, a, now, false)
	if err == nil && step == presignRetry {
		// WeChat may hold a contract the user signed in an earlier session
		// whose PAPAY.SIGN was lost: ask before touching the record.
		if err = s.adoptSignedContract(ctx, old); err == nil {
			step, old, err = s.startPresign(ctx, &in, a, now, true)
		}
	}
	if err != nil {
		return PresignOutput{}, fmt.Errorf("presign %s: %w", a.OutContractCode, err)
	}
	if step == presignReplay {
		return PresignOutput{Agreement: old, Session: old.Session}, nil
	}

	res, err := s.wechat.Presign(ctx, PresignRequest{
		Merchant: in.Merchant, Channel: in.Channel, PlanID: in.PlanID, OutContractCode: in.OutContractCode,
		OpenID: in.OpenID, UserDisplayName: in.UserDisplayName, SuccessNotifyURL: s.cfg.NotifyURL,
		UserClientIP: in.UserClientIP, ReturnURL: in.ReturnURL, ReturnAppID: in.ReturnAppID,
		ExpireTime: in.SessionExpireTime,
	})
	if err != nil {
		derr := fromRemote("presign "+a.OutContractCode, err)
		// WeChat refused a first attempt: nothing was ever opened under the
		// code, so nothing is kept. A refused retry keeps its record: an
		// earlier attempt reached WeChat, and the reconciler settles it.
		if step == presignNew && KindOf(derr) != KindUnavailable {
			if dErr := s.discardPending(ctx, a.OutContractCode); dErr != nil {
				return PresignOutput{}, errors.Join(derr, dErr)
			}
		}
		return PresignOutput{}, derr
	}
	err = s.inTx(ctx, func(tx Tx) error {
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

// presignStep is how a presign goes on from the local record.
type presignStep int

const (
	presignNew    presignStep = iota + 1 // recorded by this call: a first attempt
	presignReplay                        // the recorded session lives: answer it
	presignRetry                         // ask WeChat again under the same code
)

// startPresign records a as a new PENDING agreement, or decides from the
// one recorded under its out_contract_code, which it returns. A retry
// overwrites that record with a only when renew is set (once WeChat was
// asked about the code).
func (s *Service) startPresign(ctx context.Context, in *PresignInput, a Agreement, now time.Time, renew bool) (presignStep, Agreement, error) {
	var step presignStep
	var old Agreement
	err := s.inTx(ctx, func(tx Tx) error {
		step = 0
		a := a // a run's changes to a are its own
		var err error
		old, err = tx.AgreementByOutContractCode(ctx, a.OutContractCode)
		if errors.Is(err, ErrNotFound) {
			step = presignNew
			if err := tx.CreateAgreement(ctx, a); err != nil {
				return err
			}
			return s.audit(ctx, tx, "CreatePresignSession", "agreements/"+a.OutContractCode)
		}
		if err != nil {
			return err
		}
		// Another sub-merchant's code is never the same request (its
		// Merchant differs); the check says so where it matters.
		if !CallerFrom(ctx).Sees(old.SubMchID) || old.State != AgreementPending || !in.sameRequest(old) {
			old = Agreement{}
			return ErrOutContractCodeReused
		}
		if old.Session != (PresignResult{}) && now.Before(old.SessionExpireTime) {
			step = presignReplay
			return nil
		}
		// A retry of a call whose answer was lost, or of an expired session.
		step = presignRetry
		if !renew {
			return nil
		}
		a.CreateTime = old.CreateTime
		if err := tx.UpdateAgreement(ctx, a); err != nil {
			return err
		}
		return s.audit(ctx, tx, "CreatePresignSession", "agreements/"+a.OutContractCode)
	})
	return step, old, err
}

// adoptSignedContract asks WeChat about a's out_contract_code before a
// presign retry. If WeChat holds a SIGNED or TERMINATED contract under it,
// the contract is recorded and the retry is refused with
// ErrOutContractCodeReused saying what the agreement now is. A failed query
// fails the retry (ErrWeChatUnavailable when the outcome is unknown) and
// changes nothing. nil means WeChat has no such contract: the retry may go on.
func (s *Service) adoptSignedContract(ctx context.Context, a Agreement) error {
	rc, err := s.wechat.QueryContract(ctx, ContractQuery{Merchant: a.Merchant, OutContractCode: a.OutContractCode, PlanID: a.PlanID})
	var re *RemoteError
	if errors.As(err, &re) && re.NotFound() {
		return nil
	}
	if err != nil {
		return fromRemote("query contract", err)
	}
	if rc.State != string(AgreementSigned) && rc.State != string(AgreementTerminated) {
		// Not a contract the user signed (WeChat documents no other state).
		s.log.WarnContext(ctx, "presign retry: WeChat reports the contract in an unknown state",
			"out_contract_code", a.OutContractCode, "state", rc.State)
		return nil
	}
	err = s.inTx(ctx, func(tx Tx) error {
		cur, err := tx.AgreementByOutContractCode(ctx, a.OutContractCode)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		if cur.applyRemote(rc, now) {
			cur.UpdateTime = now
			if err := tx.UpdateAgreement(ctx, cur); err != nil {
				return err
			}
		}
		a = cur
		return nil
	})
	if err != nil {
		return fmt.Errorf("record contract %s: %w", rc.ContractID, err)
	}
	s.log.InfoContext(ctx, "presign retry found the contract at WeChat", "out_contract_code", a.OutContractCode,
		"contract_id", a.ContractID, "state", string(a.State))
	return wrap(ErrOutContractCodeReused, fmt.Sprintf(
		"out_contract_code is already used: the user signed it in WeChat Pay and the agreement is now %s (contract_id %s)",
		a.State, a.ContractID), nil)
}

func (s *Service) applyDefaults(in *PresignInput, now time.Time, caller Caller) {
	if in.Channel == "" {
		in.Channel = ChannelMiniProgram
	}
	if in.SubMchID == "" {
		switch {
		case len(caller.SubMchIDs) == 1:
			in.SubMchID = caller.SubMchIDs[0]
		case caller.Sees(s.cfg.SubMchID):
			in.SubMchID = s.cfg.SubMchID
		} // else none: validate says sub_mchid is required
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

// discardPending deletes the pending agreement of a first presign attempt
// that WeChat refused, unless something else already moved it on. Only the
// call that created the record may discard it: a record that any earlier
// attempt sent to WeChat is kept.
func (s *Service) discardPending(ctx context.Context, code string) error {
	return s.inTx(ctx, func(tx Tx) error {
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
