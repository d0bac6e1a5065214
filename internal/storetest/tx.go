package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/papayd/papayd/internal/service"
)

func testInTxRollback(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	boom := errors.New("boom")
	ep := webhookEndpoint("we_1", base)
	err := s.InTx(ctx, func(tx service.Tx) error {
		for _, op := range []func() error{
			func() error { return tx.CreateAgreement(ctx, FullAgreement("OCC1", "C1", base)) },
			func() error { return tx.CreateCharge(ctx, FullCharge("T1", "X1", base)) },
			func() error { return tx.CreateRefund(ctx, FullRefund("R1", "W1", base)) },
			func() error { return tx.InsertNotification(ctx, notification("N1", "m1")) },
			func() error { return tx.InsertAnomaly(ctx, anomaly("T1")) },
			func() error {
				_, err := tx.CreateIntent(ctx, service.Intent{Kind: service.IntentClose, Key: "T1", CreateTime: base})
				return err
			},
			func() error { return tx.InsertAuditEntry(ctx, auditEntry(0, "k1", "charges/T1")) },
			func() error { return tx.AppendEvent(ctx, chargeEvent("m1", base)) },
			func() error { return tx.CreateKey(ctx, storedKey("aaaaaaaaaaaa", base)) },
			func() error { return tx.CreateWebhookEndpoint(ctx, ep) },
			func() error {
				_, err := tx.CreateWebhookDelivery(ctx, service.NewWebhookDelivery("we_1", service.Event{ID: "evt_1", Sequence: 1}, base))
				return err
			},
		} {
			if err := op(); err != nil {
				return fmt.Errorf("the writes before the error: %w", err)
			}
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx: err = %v, want %v", err, boom)
	}
	_, err = s.AgreementByOutContractCode(ctx, "OCC1")
	checkErr(t, "agreement after rollback", err, service.ErrNotFound)
	_, err = s.ChargeByOutTradeNo(ctx, "T1")
	checkErr(t, "charge after rollback", err, service.ErrNotFound)
	_, err = s.RefundByOutRefundNo(ctx, "R1")
	checkErr(t, "refund after rollback", err, service.ErrNotFound)
	_, err = s.WebhookEndpoint(ctx, "we_1")
	checkErr(t, "webhook endpoint after rollback", err, service.ErrNotFound)
	inTx(t, s, func(tx service.Tx) error {
		n := notification("N1", "m1")
		recorded, err := tx.NotificationRecorded(ctx, service.NotificationKey{SpMchID: n.SpMchID, SubMchID: n.SubMchID, ID: n.ID})
		if err != nil {
			return err
		}
		if recorded {
			t.Errorf("notification recorded after rollback, want not")
		}
		return nil
	})
	checks := []struct {
		what string
		n    func() (int, error)
	}{
		{"open intents", func() (int, error) { ins, err := s.OpenIntents(ctx); return len(ins), err }},
		{"audit entries", func() (int, error) {
			es, _, err := s.ListAuditEntries(ctx, service.AuditFilter{PageSize: 10})
			return len(es), err
		}},
		{"events", func() (int, error) {
			es, err := s.ListEvents(ctx, service.EventFilter{PageSize: 10})
			return len(es), err
		}},
		{"keys", func() (int, error) { ks, err := s.Keys(ctx); return len(ks), err }},
		{"webhook endpoints", func() (int, error) { es, err := s.WebhookEndpoints(ctx); return len(es), err }},
		{"webhook deliveries", func() (int, error) {
			ds, err := s.ListWebhookDeliveries(ctx, service.WebhookDeliveryFilter{})
			return len(ds), err
		}},
	}
	for _, c := range checks {
		n, err := c.n()
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if n != 0 {
			t.Errorf("%d %s after rollback, want 0", n, c.what)
		}
	}
}

// myError is an error type of the caller's, which InTx must pass through.
type myError struct{ code int }

func (e *myError) Error() string { return fmt.Sprintf("my error %d", e.code) }

func testInTxError(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	mine := &myError{code: 7}
	for _, want := range []error{mine, service.ErrConflict, service.ErrOutTradeNoReused, fmt.Errorf("wrapped: %w", service.ErrNotFound)} {
		err := s.InTx(ctx, func(tx service.Tx) error {
			if _, err := tx.ChargeByOutTradeNo(ctx, "T1"); !errors.Is(err, service.ErrNotFound) {
				return fmt.Errorf("ChargeByOutTradeNo: %v, want ErrNotFound", err)
			}
			return want
		})
		if err != want {
			t.Errorf("InTx returned %v (%T), want fn's error %v (%T) as is", err, err, want, want)
		}
	}
	// A committed transaction returns nil.
	if err := s.InTx(ctx, func(tx service.Tx) error { return tx.CreateCharge(ctx, FullCharge("T1", "", base)) }); err != nil {
		t.Fatalf("InTx: %v, want nil", err)
	}
	checkCharge(t, s, "committed", FullCharge("T1", "", base))
}

// testInTxPanic: a panic in fn rolls the transaction back and goes on to
// InTx's caller, and the store goes on serving transactions.
func testInTxPanic(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the panic of fn", p)
			}
		}()
		_ = s.InTx(ctx, func(tx service.Tx) error {
			if err := tx.CreateAgreement(ctx, FullAgreement("OCC1", "", base)); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	_, err := s.AgreementByOutContractCode(ctx, "OCC1")
	checkErr(t, "agreement of the panicked transaction", err, service.ErrNotFound)
	for i := range 20 {
		a := FullAgreement(fmt.Sprint("OCC", i+2), "", base)
		createAgreements(t, s, a)
		checkAgreement(t, s, "after the panic", a)
	}
}
