package tests

import (
	"context"
	"strings"
	"sync"
	"testing"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// TestConcurrentRefreshesShareQueries is hostile review 10, finding 9:
// 300 concurrent GetCharge(refresh) requests made 300 order queries. Now
// they share a handful, and every one is answered: refreshed, or the local
// record flagged as not refreshed (the outbound limit), never an error.
func TestConcurrentRefreshesShareQueries(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	a := signed(t, p, "oPayer-refresh-storm")
	c := createCharge(t, p, chargeReq("ORDER-STORM", a.GetContractId(), 1200))
	queries := func() int {
		n := 0
		for _, call := range p.wechatCalls() {
			if strings.Contains(call.Path, "/transactions/out-trade-no/") {
				n++
			}
		}
		return n
	}
	before := queries()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		status = map[papayv1.RefreshStatus]int{}
	)
	for range 300 {
		wg.Go(func() {
			resp, err := p.charges.GetCharge(context.Background(), &papayv1.GetChargeRequest{OutTradeNo: c.GetOutTradeNo(), Refresh: true})
			if err != nil {
				t.Errorf("GetCharge(refresh): %v", err)
				return
			}
			if resp.GetCharge().GetOutTradeNo() != c.GetOutTradeNo() {
				t.Errorf("GetCharge(refresh) answered %v", resp.GetCharge())
			}
			mu.Lock()
			status[resp.GetRefreshStatus()]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if n := queries() - before; n > 5 {
		t.Errorf("300 concurrent refreshes of one charge made %d order queries, want at most 5", n)
	}
	if status[papayv1.RefreshStatus_REFRESH_STATUS_REFRESHED] == 0 ||
		status[papayv1.RefreshStatus_REFRESH_STATUS_REFRESHED]+status[papayv1.RefreshStatus_REFRESH_STATUS_RATE_LIMITED] != 300 {
		t.Errorf("refresh statuses %v", status)
	}
	// Without refresh: no status.
	resp, err := p.charges.GetCharge(context.Background(), &papayv1.GetChargeRequest{OutTradeNo: c.GetOutTradeNo()})
	if err != nil || resp.GetRefreshStatus() != papayv1.RefreshStatus_REFRESH_STATUS_UNSPECIFIED {
		t.Errorf("GetCharge without refresh: %v, %v", resp, err)
	}
	ar, err := p.agreements.GetAgreement(context.Background(), &papayv1.GetAgreementRequest{ContractId: a.GetContractId(), Refresh: true})
	if err != nil || ar.GetRefreshStatus() != papayv1.RefreshStatus_REFRESH_STATUS_REFRESHED {
		t.Errorf("GetAgreement(refresh): %v, %v", ar, err)
	}
}
