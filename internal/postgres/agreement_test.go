package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

var shanghai = time.FixedZone("CST", 8*3600)

// fullAgreement returns an agreement with every field set; its times carry
// nanoseconds and a non-UTC zone.
func fullAgreement(code, contractID string, created time.Time) service.Agreement {
	return service.Agreement{
		OutContractCode: code,
		ContractID:      contractID,
		PlanID:          12535,
		Merchant:        service.Merchant{SubMchID: "1900000109", SPAppID: "wx1234567890abcdef", SubAppID: "wxfedcba0987654321"},
		OpenID:          "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
		UserDisplayName: "Zhang San",
		Channel:         service.ChannelMiniProgram,
		State:           service.AgreementSigned,
		TerminationMode: service.TerminatedByUser,
		TerminationNote: "user asked",
		SignedTime:      created.Add(time.Minute + 7).In(shanghai),
		TerminatedTime:  created.Add(time.Hour + 11).In(shanghai),

		SessionExpireTime: created.Add(30*time.Minute + 3),
		UserClientIP:      "203.0.113.7",
		ReturnURL:         "https://merchant.example/return",
		ReturnAppID:       "wxreturn",
		Session:           service.PresignResult{SessionID: "sess-1", SignURL: "https://pay.example/sign", ShowCodeURL: "https://pay.example/qr"},

		CreateTime: created,
		UpdateTime: created.Add(2*time.Hour + 1).In(shanghai),

		NextCheckTime: created.Add(5*time.Minute + 13).In(shanghai),
		CheckAttempts: 3,
	}
}

// TestFullAgreementSetsEveryField keeps the round trip tests honest: a
// field added to service.Agreement that the fixture leaves zero would not
// be checked to be stored.
func TestFullAgreementSetsEveryField(t *testing.T) {
	t.Parallel()
	checkEveryFieldSet(t, "Agreement", fullAgreement("OCC1", "C1", time.Now()))
}

func TestAgreementRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	created := time.Date(2026, 3, 1, 10, 0, 0, 123456789, shanghai)

	a := fullAgreement("OCC1", "C1", created)
	inTx(t, db, func(tx Tx) error { return tx.CreateAgreement(ctx, a) })
	check := func(step string, want service.Agreement) {
		t.Helper()
		byCode, err := db.AgreementByOutContractCode(ctx, want.OutContractCode)
		if err != nil {
			t.Fatalf("%s: AgreementByOutContractCode: %v", step, err)
		}
		if diff := cmp.Diff(want, byCode); diff != "" {
			t.Errorf("%s: by out_contract_code (-want +got):\n%s", step, diff)
		}
		if byCode.CreateTime.Location() != time.UTC {
			t.Errorf("%s: CreateTime in %v, want UTC", step, byCode.CreateTime.Location())
		}
		if want.ContractID == "" {
			return
		}
		byID, err := db.AgreementByContractID(ctx, want.ContractID)
		if err != nil {
			t.Fatalf("%s: AgreementByContractID: %v", step, err)
		}
		if diff := cmp.Diff(want, byID); diff != "" {
			t.Errorf("%s: by contract id (-want +got):\n%s", step, diff)
		}
	}
	check("create", a)

	// Change every field; clear the times that can be zero. The fields fixed
	// at creation keep their recorded values.
	b := fullAgreement("OCC1", "C2", created.Add(time.Second))
	b.PlanID, b.SubMchID, b.SPAppID, b.SubAppID = 7, "m2", "sp2", "sub2"
	b.OpenID, b.UserDisplayName, b.Channel, b.State = "o2", "Li Si", service.ChannelApp, service.AgreementPending
	b.TerminationMode, b.TerminationNote = "", ""
	b.SignedTime, b.TerminatedTime, b.SessionExpireTime = time.Time{}, time.Time{}, time.Time{}
	b.UserClientIP, b.ReturnURL, b.ReturnAppID = "198.51.100.1", "", ""
	b.Session = service.PresignResult{}
	b.UpdateTime, b.NextCheckTime, b.CheckAttempts = time.Time{}, time.Time{}, 4
	inTx(t, db, func(tx Tx) error { return tx.UpdateAgreement(ctx, b) })
	b.PlanID, b.Merchant, b.Channel, b.CreateTime = a.PlanID, a.Merchant, a.Channel, a.CreateTime
	b.UserClientIP, b.ReturnURL, b.ReturnAppID = a.UserClientIP, a.ReturnURL, a.ReturnAppID
	check("update", b)
	if _, err := db.AgreementByContractID(ctx, "C1"); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("old contract id after update: err = %v, want ErrNotFound", err)
	}

	inTx(t, db, func(tx Tx) error { return tx.DeleteAgreement(ctx, "OCC1") })
	if _, err := db.AgreementByOutContractCode(ctx, "OCC1"); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("after delete: err = %v, want ErrNotFound", err)
	}
}

func TestAgreementZeroValues(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	a := service.Agreement{OutContractCode: "OCC0", CreateTime: time.Unix(0, 1).UTC()}
	inTx(t, db, func(tx Tx) error { return tx.CreateAgreement(ctx, a) })
	got, err := db.AgreementByOutContractCode(ctx, "OCC0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !got.SignedTime.IsZero() || !got.UpdateTime.IsZero() {
		t.Errorf("zero times came back as %v, %v", got.SignedTime, got.UpdateTime)
	}
}

func TestAgreementTimeOutOfRange(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	a := fullAgreement("OCC1", "", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC))
	err := db.InTx(ctx, func(tx Tx) error { return tx.CreateAgreement(ctx, a) })
	if err == nil {
		t.Fatal("CreateAgreement of a time in 2300 succeeded, want an error")
	}
}

func TestAgreementConflicts(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		existing []service.Agreement
		op       func(Tx) error
		want     error
	}{{
		name:     "duplicate out_contract_code",
		existing: []service.Agreement{fullAgreement("OCC1", "C1", created)},
		op: func(tx Tx) error {
			return tx.CreateAgreement(t.Context(), fullAgreement("OCC1", "C2", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "duplicate contract id",
		existing: []service.Agreement{fullAgreement("OCC1", "C1", created)},
		op: func(tx Tx) error {
			return tx.CreateAgreement(t.Context(), fullAgreement("OCC2", "C1", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "two empty contract ids",
		existing: []service.Agreement{fullAgreement("OCC1", "", created)},
		op: func(tx Tx) error {
			return tx.CreateAgreement(t.Context(), fullAgreement("OCC2", "", created))
		},
	}, {
		name:     "update to another agreement's contract id",
		existing: []service.Agreement{fullAgreement("OCC1", "C1", created), fullAgreement("OCC2", "", created)},
		op: func(tx Tx) error {
			return tx.UpdateAgreement(t.Context(), fullAgreement("OCC2", "C1", created))
		},
		want: service.ErrConflict,
	}, {
		name: "update missing",
		op: func(tx Tx) error {
			return tx.UpdateAgreement(t.Context(), fullAgreement("OCC1", "C1", created))
		},
		want: service.ErrNotFound,
	}, {
		name: "delete missing",
		op:   func(tx Tx) error { return tx.DeleteAgreement(t.Context(), "OCC1") },
		want: service.ErrNotFound,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := openTestDB(t)
			inTx(t, db, func(tx Tx) error {
				for _, a := range tt.existing {
					if err := tx.CreateAgreement(t.Context(), a); err != nil {
						return err
					}
				}
				return nil
			})
			err := db.InTx(t.Context(), tt.op)
			if !errors.Is(err, tt.want) { // errors.Is(nil, nil) is true
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAgreementNotFound(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	inTx(t, db, func(tx Tx) error {
		return tx.CreateAgreement(ctx, fullAgreement("OCC1", "", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)))
	})
	tests := []struct {
		name string
		get  func(service.AgreementReader) error
	}{
		{"unknown out_contract_code", func(r service.AgreementReader) error {
			_, err := r.AgreementByOutContractCode(ctx, "nope")
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
		if err := tt.get(db); !errors.Is(err, service.ErrNotFound) {
			t.Errorf("%s on DB: err = %v, want ErrNotFound", tt.name, err)
		}
		_ = db.InTx(ctx, func(tx Tx) error {
			if err := tt.get(tx); !errors.Is(err, service.ErrNotFound) {
				t.Errorf("%s in tx: err = %v, want ErrNotFound", tt.name, err)
			}
			return nil
		})
	}
}
