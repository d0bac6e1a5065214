package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
)

// AgreementKey selects one agreement: by WeChat's contract id, or by the
// merchant's out_contract_code and plan id.
type AgreementKey struct {
	ContractID      string
	OutContractCode string
	PlanID          int64
}

func (k AgreementKey) validate() error {
	var v violations
	switch {
	case k.ContractID != "" && k.OutContractCode != "":
		v.add("contract_id", "give either contract_id or out_contract_code with plan_id, not both")
	case k.ContractID != "":
		v.token("contract_id", k.ContractID, 64, true)
	case k.OutContractCode != "":
		v.code("out_contract_code", k.OutContractCode, 32, true)
		if k.PlanID <= 0 {
			v.add("plan_id", "is required with out_contract_code and must be positive")
		}
	default:
		v.add("contract_id", "is required (or out_contract_code with plan_id)")
	}
	return v.err()
}

func (k AgreementKey) String() string {
	if k.ContractID != "" {
		return "contract " + k.ContractID
	}
	return fmt.Sprintf("out_contract_code %s plan %d", k.OutContractCode, k.PlanID)
}

// find reads the agreement k names from r, as the caller of ctx may see
// it: another sub-merchant's agreement is ErrAgreementNotFound, exactly as
// a missing one (see Caller.Sees).
func (k AgreementKey) find(ctx context.Context, r AgreementReader) (Agreement, error) {
	var a Agreement
	var err error
	if k.ContractID != "" {
		a, err = r.AgreementByContractID(ctx, k.ContractID)
	} else if a, err = r.AgreementByOutContractCode(ctx, k.OutContractCode); err == nil && a.PlanID != k.PlanID {
		err = ErrNotFound
	}
	if err == nil && !CallerFrom(ctx).Sees(a.SubMchID) {
		err = ErrNotFound
	}
	if err != nil {
		return Agreement{}, notFoundAs(err, ErrAgreementNotFound)
	}
	return a, nil
}

// visibleSubMchIDs narrows a list filter's sub-merchants (one, an explicit
// sub_mchid; set, an allowed set) to those the caller of ctx sees. ok is
// false when none is left: the page is empty, as for a sub-merchant
// without records, never an error.
func visibleSubMchIDs(ctx context.Context, one string, set []string) (_ []string, ok bool) {
	c := CallerFrom(ctx)
	switch {
	case len(c.SubMchIDs) == 0:
		return set, true
	case one != "" && !c.Sees(one):
		return nil, false
	case len(set) == 0:
		return slices.Clone(c.SubMchIDs), true
	}
	set = slices.DeleteFunc(slices.Clone(set), func(id string) bool { return !c.Sees(id) })
	return set, len(set) > 0
}

// notFoundAs replaces the store's ErrNotFound with a specific sentinel.
func notFoundAs(err error, sentinel *Error) error {
	if errors.Is(err, ErrNotFound) {
		return sentinel
	}
	return err
}

// GetAgreement answers from the local record. With refresh it first asks
// WeChat and records what WeChat says (see LookupAgreement).
func (s *Service) GetAgreement(ctx context.Context, k AgreementKey, refresh bool) (Agreement, error) {
	a, _, err := s.LookupAgreement(ctx, k, refresh)
	return a, err
}

// LookupAgreement answers from the local record. With refresh it first
// asks WeChat and records what WeChat says; the Refresh says whether it
// did. Another sub-merchant's agreement than the caller's is
// ErrAgreementNotFound, and WeChat is not asked. The refresh is an optional call (WithOptionalCall): concurrent
// refreshes of one contract may share one query, and when papayd's
// outbound limit refuses it (ErrRateLimited) the local record is the
// answer, with RefreshRateLimited and no error.
func (s *Service) LookupAgreement(ctx context.Context, k AgreementKey, refresh bool) (Agreement, Refresh, error) {
	if err := k.validate(); err != nil {
		return Agreement{}, RefreshNotAsked, err
	}
	a, err := k.find(ctx, s.store)
	if err != nil {
		return Agreement{}, RefreshNotAsked, fmt.Errorf("get %s: %w", k, err)
	}
	if !refresh {
		return a, RefreshNotAsked, nil
	}
	ra, err := s.refreshAgreement(WithOptionalCall(ctx), a)
	switch {
	case errors.Is(err, ErrRateLimited):
		s.log.InfoContext(ctx, "agreement not refreshed: outbound limit reached", "out_contract_code", a.OutContractCode)
		return a, RefreshRateLimited, nil
	case err != nil:
		return Agreement{}, RefreshNotAsked, fmt.Errorf("refresh %s: %w", k, err)
	}
	return ra, Refreshed, nil
}

// refreshAgreement queries WeChat about a and applies the answer.
func (s *Service) refreshAgreement(ctx context.Context, a Agreement) (Agreement, error) {
	q := ContractQuery{Merchant: a.Merchant, ContractID: a.ContractID}
	if q.ContractID == "" {
		q.OutContractCode, q.PlanID = a.OutContractCode, a.PlanID
	}
	rc, err := s.wechat.QueryContract(ctx, q)
	var re *RemoteError
	notFound := errors.As(err, &re) && re.NotFound()
	if err != nil && !notFound {
		return Agreement{}, fromRemote("query contract", err)
	}
	err = s.inTx(ctx, func(tx Tx) error {
		cur, err := tx.AgreementByOutContractCode(ctx, a.OutContractCode)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		changed := false
		if notFound {
			// Not signed (yet): a pending session that is over is expired,
			// and asked about again a while later (a re-check).
			if changed = cur.expire(now); changed {
				cur.NextCheckTime, cur.CheckAttempts = s.cfg.Reconcile.recheckAfter(now, 0), 0
			}
		} else {
			changed = cur.applyRemote(rc, now)
		}
		a = cur
		if !changed {
			return nil
		}
		a.UpdateTime = now
		s.logCommitted(ctx, tx, slog.LevelInfo, "agreement refreshed from WeChat", "out_contract_code", a.OutContractCode,
			"contract_id", a.ContractID, "state", string(a.State))
		return tx.UpdateAgreement(ctx, a)
	})
	return a, err
}

// ListAgreements pages through the local records of the sub-merchants
// the caller sees; a sub_mchid filter naming another is an empty page.
func (s *Service) ListAgreements(ctx context.Context, f AgreementFilter) ([]Agreement, string, error) {
	var v violations
	v.token("openid", f.OpenID, 128, false)
	v.token("sub_mchid", f.SubMchID, 32, false)
	if f.PlanID < 0 {
		v.add("plan_id", "must not be negative")
	}
	switch f.State {
	case "", AgreementPending, AgreementSigned, AgreementTerminated, AgreementExpired:
	default:
		v.add("state", "unknown state %q", f.State)
	}
	f.PageSize = pageSize(&v, f.PageSize)
	if err := v.err(); err != nil {
		return nil, "", err
	}
	var ok bool
	if f.SubMchIDs, ok = visibleSubMchIDs(ctx, f.SubMchID, f.SubMchIDs); !ok {
		return nil, "", nil
	}
	as, next, err := s.store.ListAgreements(ctx, f)
	if err != nil {
		return nil, "", fmt.Errorf("list agreements: %w", err)
	}
	return as, next, nil
}

// Page sizes.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

func pageSize(v *violations, n int) int {
	switch {
	case n < 0:
		v.add("page_size", "must not be negative")
	case n == 0:
		return DefaultPageSize
	case n > MaxPageSize:
		v.add("page_size", "must be at most %d", MaxPageSize)
	}
	return n
}
