package sandbox

import (
	"net/http"
	"testing"
	"time"
)

// TestRefundWindow: an order paid more than a year ago (Options.Now) cannot be
// refunded; one paid just within the year can. The year is tested inside the package:
// a request signed a year away from the sandbox clock would not authenticate.
func TestRefundWindow(t *testing.T) {
	t.Parallel()
	creds, err := NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	s, err := New(Options{Credentials: creds, Now: func() time.Time { return now }, TimeScale: 0.0001})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	paid := func(no string, at time.Time) {
		o := &Order{SPMchID: creds.MchID, SubMchID: creds.SubMchID, SPAppID: creds.SPAppID, OutTradeNo: no,
			TransactionID: "4200000000" + no, Total: 100, Currency: "HKD", PayerTotal: 100, PayerCurrency: "HKD",
			ExchangeRate: RateScale, TradeState: TradeSuccess, SuccessTime: at}
		s.orders[orderKey{o.SubMchID, no}], s.byTransaction[o.TransactionID] = o, o
		s.ledger = append(s.ledger, o)
	}
	paid("OLD", now.Add(-RefundWindow-time.Second))
	paid("YOUNG", now.Add(-RefundWindow+time.Second))
	refund := func(no string) refundOutcome {
		return s.createRefund(&Refund{SubMchID: creds.SubMchID, SPAppID: creds.SPAppID, OutTradeNo: no,
			OutRefundNo: "R" + no, Refund: 1, Total: 100, Currency: "HKD"})
	}
	if out := refund("OLD"); out.err == nil || out.err.status != http.StatusBadRequest || out.err.Code != CodeInvalidRequest {
		t.Errorf("refund of an order paid a year and a second ago: %+v", out.err)
	}
	if out := refund("YOUNG"); out.err != nil || !out.fresh || out.refund.Applied != 1 {
		t.Errorf("refund of an order paid within the year: %+v", out)
	}
}
