package service

import (
	"context"
	"errors"
	"fmt"
)

// ChargeKey selects one charge: by out_trade_no, or by WeChat's
// transaction id.
type ChargeKey struct {
	OutTradeNo    string
	TransactionID string
}

func (k ChargeKey) validate() error {
	var v violations
	switch {
	case k.OutTradeNo != "" && k.TransactionID != "":
		v.add("out_trade_no", "give either out_trade_no or transaction_id, not both")
	case k.TransactionID != "":
		v.token("transaction_id", k.TransactionID, 32, true)
	default:
		v.code("out_trade_no", k.OutTradeNo, 32, true)
	}
	return v.err()
}

func (k ChargeKey) String() string {
	if k.TransactionID != "" {
		return "transaction " + k.TransactionID
	}
	return "charge " + k.OutTradeNo
}

// find reads the charge k names from r, as the caller of ctx may see it:
// another sub-merchant's charge is ErrChargeNotFound, exactly as a missing
// one (see Caller.Sees).
func (k ChargeKey) find(ctx context.Context, r ChargeReader) (Charge, error) {
	var c Charge
	var err error
	if k.TransactionID != "" {
		c, err = r.ChargeByTransactionID(ctx, k.TransactionID)
	} else {
		c, err = r.ChargeByOutTradeNo(ctx, k.OutTradeNo)
	}
	if err == nil && !CallerFrom(ctx).Sees(c.SubMchID) {
		err = ErrNotFound
	}
	if err != nil {
		return Charge{}, notFoundAs(err, ErrChargeNotFound)
	}
	return c, nil
}

// GetCharge answers from the local record. With refresh it first asks
// WeChat and records what WeChat says (see LookupCharge).
func (s *Service) GetCharge(ctx context.Context, k ChargeKey, refresh bool) (Charge, error) {
	c, _, err := s.LookupCharge(ctx, k, refresh)
	return c, err
}

// LookupCharge answers from the local record. With refresh it first asks
// WeChat and records what WeChat says; the Refresh says whether it did.
// Another sub-merchant's charge than the caller's is ErrChargeNotFound,
// and WeChat is not asked.
//
// The refresh is an optional call (WithOptionalCall): concurrent refreshes
// of one order may share one query, and when papayd's outbound limit
// refuses it (ErrRateLimited) the local record is the answer, with
// RefreshRateLimited and no error. It takes no lock on the charge: a
// query changes nothing at WeChat, and its answer is recorded in one
// transaction through the state machine, like a notification's.
func (s *Service) LookupCharge(ctx context.Context, k ChargeKey, refresh bool) (Charge, Refresh, error) {
	if err := k.validate(); err != nil {
		return Charge{}, RefreshNotAsked, err
	}
	c, err := k.find(ctx, s.store)
	if err != nil {
		return Charge{}, RefreshNotAsked, fmt.Errorf("get %s: %w", k, err)
	}
	if !refresh {
		return c, RefreshNotAsked, nil
	}
	rc, err := s.refreshCharge(WithOptionalCall(ctx), c)
	switch {
	case errors.Is(err, ErrRateLimited):
		s.log.InfoContext(ctx, "charge not refreshed: outbound limit reached", "out_trade_no", c.OutTradeNo)
		return c, RefreshRateLimited, nil
	case err != nil:
		return Charge{}, RefreshNotAsked, fmt.Errorf("refresh %s: %w", k, err)
	}
	return rc, Refreshed, nil
}

// refreshCharge queries WeChat about c and records the answer. An order
// WeChat does not know leaves the charge as it is.
func (s *Service) refreshCharge(ctx context.Context, c Charge) (Charge, error) {
	c, _, err := s.queryCharge(ctx, c)
	return c, err
}

// ListCharges pages through the local records of the sub-merchants the
// caller sees; a sub_mchid filter naming another is an empty page.
func (s *Service) ListCharges(ctx context.Context, f ChargeFilter) ([]Charge, string, error) {
	var v violations
	v.token("contract_id", f.ContractID, 64, false)
	v.code("out_contract_code", f.OutContractCode, 32, false)
	v.token("openid", f.OpenID, 128, false)
	v.token("sub_mchid", f.SubMchID, 32, false)
	switch f.State {
	case "", ChargePending, ChargeProcessing, ChargeClosing, ChargeSucceeded, ChargeFailed, ChargeClosed:
	default:
		v.add("state", "unknown state %q", f.State)
	}
	if !f.CreatedFrom.IsZero() && !f.CreatedTo.IsZero() && !f.CreatedTo.After(f.CreatedFrom) {
		v.add("create_time_end", "must be after create_time_start")
	}
	f.PageSize = pageSize(&v, f.PageSize)
	if err := v.err(); err != nil {
		return nil, "", err
	}
	var ok bool
	if f.SubMchIDs, ok = visibleSubMchIDs(ctx, f.SubMchID, f.SubMchIDs); !ok {
		return nil, "", nil
	}
	cs, next, err := s.store.ListCharges(ctx, f)
	if err != nil {
		return nil, "", fmt.Errorf("list charges: %w", err)
	}
	return cs, next, nil
}
