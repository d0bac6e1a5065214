package service

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestRefreshRateLimitedServesLocal is hostile review 10, finding 9: when
// papayd's outbound limit refuses a refresh, GetCharge and GetAgreement
// answer the local record, flagged as not refreshed, instead of an error.
func TestRefreshRateLimitedServesLocal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := chargeFixture(t)
	local := f.charge(t, chargeIn("T1"))
	limited := fmt.Errorf("wechatpay GET /v3/global/papay/transactions: %w", ErrRateLimited)
	f.wc.mu.Lock()
	f.wc.orderErr = limited
	f.wc.queryErr = limited
	f.wc.mu.Unlock()

	c, err := f.svc.GetCharge(ctx, ChargeKey{OutTradeNo: "T1"}, true)
	if err != nil || c.OutTradeNo != "T1" || c.State != local.State {
		t.Fatalf("GetCharge(refresh) when rate-limited = %+v, %v; want the local record", c, err)
	}
	a, err := f.svc.GetAgreement(ctx, AgreementKey{ContractID: "W1"}, true)
	if err != nil || a.ContractID != "W1" {
		t.Fatalf("GetAgreement(refresh) when rate-limited = %+v, %v; want the local record", a, err)
	}
}

// TestLookupRefreshStatus: the lookups say whether they refreshed, and
// mark their WeChat calls optional.
func TestLookupRefreshStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := chargeFixture(t)
	f.charge(t, chargeIn("T1"))
	f.wc.mu.Lock()
	f.wc.orderFn = func(q TransactionQuery) (RemoteTransaction, error) {
		return RemoteTransaction{}, &RemoteError{HTTPStatus: 404, Code: "ORDER_NOT_EXIST"}
	}
	f.wc.mu.Unlock()
	for _, refresh := range []bool{false, true} {
		_, st, err := f.svc.LookupCharge(ctx, ChargeKey{OutTradeNo: "T1"}, refresh)
		want := map[bool]Refresh{false: RefreshNotAsked, true: Refreshed}[refresh]
		if err != nil || st != want {
			t.Errorf("LookupCharge(refresh %v) = %v, %v; want %v", refresh, st, err, want)
		}
		_, st, err = f.svc.LookupAgreement(ctx, AgreementKey{ContractID: "W1"}, refresh)
		if err != nil || st != want {
			t.Errorf("LookupAgreement(refresh %v) = %v, %v; want %v", refresh, st, err, want)
		}
	}
	limited := fmt.Errorf("limited: %w", ErrRateLimited)
	f.wc.mu.Lock()
	f.wc.orderFn, f.wc.orderErr, f.wc.queryErr = nil, limited, limited
	f.wc.mu.Unlock()
	if _, st, err := f.svc.LookupCharge(ctx, ChargeKey{OutTradeNo: "T1"}, true); err != nil || st != RefreshRateLimited {
		t.Errorf("LookupCharge rate-limited = %v, %v", st, err)
	}
	if _, st, err := f.svc.LookupAgreement(ctx, AgreementKey{ContractID: "W1"}, true); err != nil || st != RefreshRateLimited {
		t.Errorf("LookupAgreement rate-limited = %v, %v", st, err)
	}
	// Any other failure is still an error.
	f.wc.mu.Lock()
	f.wc.orderErr = &RemoteError{HTTPStatus: 500, Code: "SYSTEM_ERROR"}
	f.wc.mu.Unlock()
	if _, _, err := f.svc.LookupCharge(ctx, ChargeKey{OutTradeNo: "T1"}, true); !errors.Is(err, ErrWeChatUnavailable) {
		t.Errorf("LookupCharge on a 500: %v", err)
	}
}
