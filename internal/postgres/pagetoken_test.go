package postgres

import (
	"encoding/base64"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/db"
	"github.com/papayd/papayd/internal/service"
)

// TestPageTokensAgreeWithSQLite pins that both stores issue the same page
// tokens: the same rows inserted in the same order page alike, and a token
// of one store continues the listing on the other.
func TestPageTokensAgreeWithSQLite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg := openTestDB(t)
	lite, err := db.Open(ctx, filepath.Join(t.TempDir(), "papayd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lite.Close() })

	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var as []service.Agreement
	var cs []service.Charge
	for i, at := range []time.Duration{0, time.Second, time.Second, time.Second, 2 * time.Second, 3 * time.Second} {
		code := string(rune('A' + i))
		a := fullAgreement(code, "", base.Add(at))
		a.SubMchID = []string{"m1", "m2"}[i%2]
		as = append(as, a)
		c := fullCharge(code, "", base.Add(at))
		c.SubMchID = a.SubMchID
		cs = append(cs, c)
	}
	inTx(t, pg, func(tx Tx) error {
		for i := range as {
			if err := tx.CreateAgreement(ctx, as[i]); err != nil {
				return err
			}
			if err := tx.CreateCharge(ctx, cs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err := lite.InTx(ctx, func(tx service.Tx) error {
		for i := range as {
			if err := tx.CreateAgreement(ctx, as[i]); err != nil {
				return err
			}
			if err := tx.CreateCharge(ctx, cs[i]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	codes := func(as []service.Agreement) (out []string) {
		for _, a := range as {
			out = append(out, a.OutContractCode)
		}
		return out
	}
	nos := func(cs []service.Charge) (out []string) {
		for _, c := range cs {
			out = append(out, c.OutTradeNo)
		}
		return out
	}
	for _, set := range [][]string{nil, {"m1", "m2"}} {
		af := service.AgreementFilter{PageSize: 2, SubMchIDs: set}
		pa, pnext, err1 := pg.ListAgreements(ctx, af)
		la, lnext, err2 := lite.ListAgreements(ctx, af)
		if err1 != nil || err2 != nil {
			t.Fatalf("first pages: %v, %v", err1, err2)
		}
		if diff := cmp.Diff(codes(la), codes(pa)); diff != "" || pnext != lnext {
			t.Errorf("set %v: agreement pages differ (-sqlite +pg):\n%s\ntokens %q, %q", set, diff, lnext, pnext)
		}
		af.PageToken = lnext // SQLite's token, on PostgreSQL
		pa2, _, err := pg.ListAgreements(ctx, af)
		if err != nil {
			t.Fatal(err)
		}
		af.PageToken = pnext
		la2, _, err := lite.ListAgreements(ctx, af)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(codes(la2), codes(pa2)); diff != "" {
			t.Errorf("set %v: second agreement pages differ (-sqlite +pg):\n%s", set, diff)
		}
		// A token of another encoding version is refused by both.
		raw, err := base64.RawURLEncoding.DecodeString(lnext)
		if err != nil || len(raw) == 0 {
			t.Fatalf("SQLite's token %q: %v, want base64url", lnext, err)
		}
		af.PageToken = base64.RawURLEncoding.EncodeToString(append([]byte{raw[0] + 1}, raw[1:]...))
		_, _, errP := pg.ListAgreements(ctx, af)
		_, _, errL := lite.ListAgreements(ctx, af)
		if !errors.Is(errP, service.ErrInvalidPageToken) || !errors.Is(errL, service.ErrInvalidPageToken) {
			t.Errorf("set %v: a token of another version: err %v on PostgreSQL, %v on SQLite; want ErrInvalidPageToken", set, errP, errL)
		}

		cf := service.ChargeFilter{PageSize: 2, SubMchIDs: set, CreatedTo: base.Add(3 * time.Second)}
		pc, pnext, err1 := pg.ListCharges(ctx, cf)
		lc, lnext, err2 := lite.ListCharges(ctx, cf)
		if err1 != nil || err2 != nil {
			t.Fatalf("first charge pages: %v, %v", err1, err2)
		}
		if diff := cmp.Diff(nos(lc), nos(pc)); diff != "" || pnext != lnext {
			t.Errorf("set %v: charge pages differ (-sqlite +pg):\n%s\ntokens %q, %q", set, diff, lnext, pnext)
		}
		cf.PageToken = lnext
		pc2, _, err := pg.ListCharges(ctx, cf)
		if err != nil {
			t.Fatal(err)
		}
		cf.PageToken = pnext
		lc2, _, err := lite.ListCharges(ctx, cf)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(nos(lc2), nos(pc2)); diff != "" {
			t.Errorf("set %v: second charge pages differ (-sqlite +pg):\n%s", set, diff)
		}
	}
}

// TestRefundPageTokensAgreeWithSQLite: as above, for ListRefunds.
func TestRefundPageTokensAgreeWithSQLite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg := openTestDB(t)
	lite, err := db.Open(ctx, filepath.Join(t.TempDir(), "papayd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lite.Close() })

	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var rs []service.Refund
	for i, at := range []time.Duration{0, time.Second, time.Second, time.Second, 2 * time.Second, 3 * time.Second} {
		r := fullRefund(string(rune('A'+i)), "", base.Add(at))
		r.SubMchID = []string{"m1", "m2"}[i%2]
		rs = append(rs, r)
	}
	inTx(t, pg, func(tx Tx) error {
		for _, r := range rs {
			if err := tx.CreateRefund(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err := lite.InTx(ctx, func(tx service.Tx) error {
		for _, r := range rs {
			if err := tx.CreateRefund(ctx, r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	for _, set := range [][]string{nil, {"m1", "m2"}} {
		f := service.RefundFilter{PageSize: 2, OutTradeNo: "T1", SubMchIDs: set}
		p, pnext, err1 := pg.ListRefunds(ctx, f)
		l, lnext, err2 := lite.ListRefunds(ctx, f)
		if err1 != nil || err2 != nil {
			t.Fatalf("first pages: %v, %v", err1, err2)
		}
		if diff := cmp.Diff(refundNos(l), refundNos(p)); diff != "" || pnext != lnext || pnext == "" {
			t.Errorf("set %v: refund pages differ (-sqlite +pg):\n%s\ntokens %q, %q", set, diff, lnext, pnext)
		}
		f.PageToken = lnext // SQLite's token, on PostgreSQL
		p2, _, err := pg.ListRefunds(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		f.PageToken = pnext
		l2, _, err := lite.ListRefunds(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(refundNos(l2), refundNos(p2)); diff != "" || len(p2) == 0 {
			t.Errorf("set %v: second refund pages differ or are empty (-sqlite +pg):\n%s", set, diff)
		}
	}
}
