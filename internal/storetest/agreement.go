package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// fullAgreement is an agreement with every field set; its times carry
// nanoseconds, some in a zone other than UTC.
func fullAgreement(code, contractID string, created time.Time) service.Agreement {
	return service.Agreement{
		OutContractCode:   code,
		ContractID:        contractID,
		PlanID:            12535,
		Merchant:          service.Merchant{SubMchID: "1900000109", SPAppID: "wx1234567890abcdef", SubAppID: "wxfedcba0987654321"},
		OpenID:            "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
		UserDisplayName:   "张三",
		Channel:           service.ChannelMiniProgram,
		State:             service.AgreementSigned,
		TerminationMode:   service.TerminatedByUser,
		TerminationNote:   "user asked",
		SignedTime:        created.Add(time.Minute + 7).In(shanghai),
		TerminatedTime:    created.Add(time.Hour + 11).In(shanghai),
		SessionExpireTime: created.Add(30*time.Minute + 3),
		UserClientIP:      "203.0.113.7",
		ReturnURL:         "https://merchant.example/return",
		ReturnAppID:       "wxreturn",
		Session:           service.PresignResult{SessionID: "sess-1", SignURL: "https://pay.example/sign", ShowCodeURL: "https://pay.example/qr"},
		CreateTime:        created,
		UpdateTime:        created.Add(2*time.Hour + 1).In(shanghai),
		NextCheckTime:     created.Add(5*time.Minute + 13).In(shanghai),
		CheckAttempts:     3,
	}
}

// createAgreements inserts as in one transaction and fails the test on
// error.
func createAgreements(t *testing.T, s service.Store, as ...service.Agreement) {
	t.Helper()
	inTx(t, s, func(tx service.Tx) error {
		for _, a := range as {
			if err := tx.CreateAgreement(t.Context(), a); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkAgreement fails the test unless s reads want, by each of its keys,
// outside and inside a transaction, with its times in UTC.
func checkAgreement(t *testing.T, s service.Store, step string, want service.Agreement) {
	t.Helper()
	ctx := t.Context()
	check := func(where string, r service.AgreementReader) {
		t.Helper()
		got, err := r.AgreementByOutContractCode(ctx, want.OutContractCode)
		if err != nil {
			t.Fatalf("%s: AgreementByOutContractCode on %s: %v", step, where, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: by out_contract_code on %s (-want +got):\n%s", step, where, diff)
		}
		checkUTC(t, step, map[string]time.Time{"CreateTime": got.CreateTime, "UpdateTime": got.UpdateTime,
			"SignedTime": got.SignedTime, "TerminatedTime": got.TerminatedTime,
			"SessionExpireTime": got.SessionExpireTime, "NextCheckTime": got.NextCheckTime})
		if want.ContractID == "" {
			return
		}
		got, err = r.AgreementByContractID(ctx, want.ContractID)
		if err != nil {
			t.Fatalf("%s: AgreementByContractID on %s: %v", step, where, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: by contract id on %s (-want +got):\n%s", step, where, diff)
		}
	}
	check("store", s)
	inTx(t, s, func(tx service.Tx) error {
		check("tx", tx)
		return nil
	})
}

func testAgreementRoundTrip(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	created := base.In(shanghai)
	a := fullAgreement("OCC1", "C1", created)
	createAgreements(t, s, a)
	checkAgreement(t, s, "create", a)

	// Change every field and clear the times that may be zero; the fields
	// fixed at creation keep their recorded values.
	b := fullAgreement("OCC1", "C2", created.Add(time.Second))
	b.PlanID, b.Merchant = 7, service.Merchant{SubMchID: "m2", SPAppID: "sp2", SubAppID: "sub2"}
	b.OpenID, b.UserDisplayName, b.Channel, b.State = "o2", "Li Si", service.ChannelApp, service.AgreementPending
	b.TerminationMode, b.TerminationNote = "", ""
	b.SignedTime, b.TerminatedTime, b.SessionExpireTime = time.Time{}, time.Time{}, time.Time{}
	b.UserClientIP, b.ReturnURL, b.ReturnAppID = "198.51.100.1", "", ""
	b.Session = service.PresignResult{}
	b.UpdateTime, b.NextCheckTime, b.CheckAttempts = time.Time{}, time.Time{}, 4
	inTx(t, s, func(tx service.Tx) error { return tx.UpdateAgreement(ctx, b) })
	b.PlanID, b.Merchant, b.Channel, b.CreateTime = a.PlanID, a.Merchant, a.Channel, a.CreateTime
	b.UserClientIP, b.ReturnURL, b.ReturnAppID = a.UserClientIP, a.ReturnURL, a.ReturnAppID
	checkAgreement(t, s, "update", b)
	_, err := s.AgreementByContractID(ctx, "C1")
	checkErr(t, "old contract id after update", err, service.ErrNotFound)

	// And back to every field set.
	c := fullAgreement("OCC1", "C2", created)
	inTx(t, s, func(tx service.Tx) error { return tx.UpdateAgreement(ctx, c) })
	checkAgreement(t, s, "update again", c)

	inTx(t, s, func(tx service.Tx) error { return tx.DeleteAgreement(ctx, "OCC1") })
	_, err = s.AgreementByOutContractCode(ctx, "OCC1")
	checkErr(t, "by out_contract_code after delete", err, service.ErrNotFound)
	_, err = s.AgreementByContractID(ctx, "C2")
	checkErr(t, "by contract id after delete", err, service.ErrNotFound)
}

func testAgreementZeroValues(t *testing.T, open Opener) {
	s := open(t)
	a := service.Agreement{OutContractCode: "OCC0", CreateTime: time.Unix(0, 1).UTC()}
	createAgreements(t, s, a)
	checkAgreement(t, s, "zero values", a)
}

func testAgreementConflicts(t *testing.T, open Opener) {
	created := base
	tests := []struct {
		name     string
		existing []service.Agreement
		op       func(t *testing.T, tx service.Tx) error
		want     error
	}{{
		name:     "duplicate out_contract_code",
		existing: []service.Agreement{fullAgreement("OCC1", "C1", created)},
		op: func(t *testing.T, tx service.Tx) error {
			return tx.CreateAgreement(t.Context(), fullAgreement("OCC1", "C2", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "duplicate out_contract_code, both without contract id",
		existing: []service.Agreement{fullAgreement("OCC1", "", created)},
		op: func(t *testing.T, tx service.Tx) error {
			return tx.CreateAgreement(t.Context(), fullAgreement("OCC1", "", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "duplicate contract id",
		existing: []service.Agreement{fullAgreement("OCC1", "C1", created)},
		op: func(t *testing.T, tx service.Tx) error {
			return tx.CreateAgreement(t.Context(), fullAgreement("OCC2", "C1", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "two empty contract ids",
		existing: []service.Agreement{fullAgreement("OCC1", "", created)},
		op: func(t *testing.T, tx service.Tx) error {
			return tx.CreateAgreement(t.Context(), fullAgreement("OCC2", "", created))
		},
	}, {
		name:     "update to another agreement's contract id",
		existing: []service.Agreement{fullAgreement("OCC1", "C1", created), fullAgreement("OCC2", "", created)},
		op: func(t *testing.T, tx service.Tx) error {
			return tx.UpdateAgreement(t.Context(), fullAgreement("OCC2", "C1", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "update keeping its own contract id",
		existing: []service.Agreement{fullAgreement("OCC1", "C1", created)},
		op: func(t *testing.T, tx service.Tx) error {
			return tx.UpdateAgreement(t.Context(), fullAgreement("OCC1", "C1", created.Add(time.Hour)))
		},
	}, {
		name:     "update missing",
		existing: []service.Agreement{fullAgreement("OCC1", "C1", created)},
		op: func(t *testing.T, tx service.Tx) error {
			return tx.UpdateAgreement(t.Context(), fullAgreement("OCC2", "C2", created))
		},
		want: service.ErrNotFound,
	}, {
		name:     "delete missing",
		existing: []service.Agreement{fullAgreement("OCC1", "C1", created)},
		op:       func(t *testing.T, tx service.Tx) error { return tx.DeleteAgreement(t.Context(), "OCC2") },
		want:     service.ErrNotFound,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			createAgreements(t, s, tt.existing...)
			err := s.InTx(t.Context(), func(tx service.Tx) error { return tt.op(t, tx) })
			checkErr(t, "InTx", err, tt.want)
			if tt.want == nil {
				return
			}
			// A refused write changed nothing.
			for _, want := range tt.existing {
				checkAgreement(t, s, "after a refused write", want)
			}
		})
	}
}

func testAgreementNotFound(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	// An agreement without a contract id: the empty id must not find it.
	createAgreements(t, s, fullAgreement("OCC1", "", base))
	tests := []struct {
		name string
		get  func(service.AgreementReader) error
	}{
		{"unknown out_contract_code", func(r service.AgreementReader) error {
			_, err := r.AgreementByOutContractCode(ctx, "nope")
			return err
		}},
		{"empty out_contract_code", func(r service.AgreementReader) error {
			_, err := r.AgreementByOutContractCode(ctx, "")
			return err
		}},
		{"unknown contract id", func(r service.AgreementReader) error {
			_, err := r.AgreementByContractID(ctx, "nope")
			return err
		}},
		{"empty contract id", func(r service.AgreementReader) error {
			_, err := r.AgreementByContractID(ctx, "")
			return err
		}},
	}
	for _, tt := range tests {
		checkErr(t, tt.name+" on the store", tt.get(s), service.ErrNotFound)
		inTx(t, s, func(tx service.Tx) error {
			checkErr(t, tt.name+" in a tx", tt.get(tx), service.ErrNotFound)
			return nil
		})
	}
}
