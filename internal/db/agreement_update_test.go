package db

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/service"
)

// Signing a pending agreement whose openid is known names neither openid
// nor anything else unchanged, so agreements_openid is left alone; the
// update of an agreement the function did not read names them all.
func TestAgreementUpdateWritesChangedIndexesOnly(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	prev := fullAgreement("OCC1", "", time.Now())
	prev.State, prev.SignedTime, prev.TerminatedTime, prev.TerminationMode, prev.TerminationNote = service.AgreementPending, time.Time{}, time.Time{}, "", ""
	a := prev
	a.State, a.ContractID, a.SignedTime, a.UpdateTime = service.AgreementSigned, "C1", time.Now(), time.Now()
	a.NextCheckTime = time.Now().Add(24 * time.Hour)
	set, _, err := changes(agreementLife, &prev, &a)
	if err != nil {
		t.Fatal(err)
	}
	query := updateChangedQuery("agreements", "out_contract_code", agreementLife, set)
	if strings.Contains(query, "openid =") {
		t.Errorf("%q writes openid, which did not change", query)
	}
	got := indexesWritten(t, db, query)
	if diff := cmp.Diff([]string{"agreements_contract_id", "agreements_due", "agreements_state"}, got); diff != "" {
		t.Errorf("indexes %s writes (-want +got):\n%s", query, diff)
	}
	all := indexesWritten(t, db, updateAgreementSQL)
	if diff := cmp.Diff([]string{"agreements_contract_id", "agreements_due", "agreements_openid", "agreements_state",
		"sqlite_autoindex_agreements_1"}, all); diff != "" {
		t.Errorf("indexes updateAgreementSQL writes (-want +got):\n%s", diff)
	}
}

// A transaction's reads of an agreement it created, read or updated are
// the row as stored; an update changing one column leaves the others.
func TestAgreementReadAfterWrite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	check := func(name string, tx *tx) {
		t.Helper()
		got, err := tx.AgreementByOutContractCode(ctx, "OCC1")
		if err != nil {
			t.Fatal(err)
		}
		stored, _, err := tx.reader.agreementByOutContractCode(ctx, "OCC1")
		if err != nil {
			t.Fatal(err)
		}
		sameAsStored(t, name+": read", stored, got)
	}
	inTx(t, db, func(stx service.Tx) error {
		tx := stx.(*tx)
		if err := tx.CreateAgreement(ctx, fullAgreement("OCC1", "C1", time.Date(2026, 1, 2, 3, 4, 5, 6, shanghai))); err != nil {
			return err
		}
		if !tx.agreement.ok {
			t.Error("the agreement is not kept after its insert")
		}
		check("after the insert", tx)
		return nil
	})
	for _, change := range []func(a *service.Agreement){
		func(a *service.Agreement) { a.CheckAttempts++ },
		func(a *service.Agreement) { a.OpenID, a.UpdateTime = "o2", time.Now().In(shanghai) },
		func(a *service.Agreement) { a.State, a.TerminatedTime = service.AgreementTerminated, time.Time{} },
		func(*service.Agreement) {},
		func(a *service.Agreement) { a.UserClientIP = "not written: fixed at creation" },
	} {
		inTx(t, db, func(stx service.Tx) error {
			tx := stx.(*tx)
			a, err := tx.AgreementByOutContractCode(ctx, "OCC1")
			if err != nil {
				return err
			}
			change(&a)
			if err := tx.UpdateAgreement(ctx, a); err != nil {
				return err
			}
			check("after an update", tx)
			return nil
		})
	}
	got, err := db.reader.AgreementByOutContractCode(ctx, "OCC1")
	if err != nil {
		t.Fatal(err)
	}
	if got.OpenID != "o2" || got.CheckAttempts != 4 || got.State != service.AgreementTerminated || got.UserClientIP != "203.0.113.7" {
		t.Errorf("stored %+v", got)
	}
	if a, err := db.reader.AgreementByContractID(ctx, "C1"); err != nil || a.OutContractCode != "OCC1" {
		t.Errorf("by contract id: %v, %v", a.OutContractCode, err)
	}
}
