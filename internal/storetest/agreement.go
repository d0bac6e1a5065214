package storetest

import (
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// FullAgreement is an agreement with every field set; its times carry
// nanoseconds, some in a zone other than UTC.
func FullAgreement(code, contractID string, created time.Time) service.Agreement {
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

// agreements is the record test description of agreements.
var agreements = record[service.Agreement]{
	kind: "agreement", keyName: "out_contract_code", idName: "contract id", keyPre: "OCC", idPre: "C",
	full: FullAgreement,
	zero: func(key string, created time.Time) service.Agreement {
		return service.Agreement{OutContractCode: key, CreateTime: created}
	},
	withNextCheck: func(a service.Agreement, next time.Time) service.Agreement { a.NextCheckTime = next; return a },
	keys:          func(a service.Agreement) (string, string) { return a.OutContractCode, a.ContractID },
	times: func(a service.Agreement) map[string]time.Time {
		return map[string]time.Time{"CreateTime": a.CreateTime, "UpdateTime": a.UpdateTime,
			"SignedTime": a.SignedTime, "TerminatedTime": a.TerminatedTime,
			"SessionExpireTime": a.SessionExpireTime, "NextCheckTime": a.NextCheckTime}
	},
	create: func(t *testing.T, tx service.Tx, a service.Agreement) error {
		return tx.CreateAgreement(t.Context(), a)
	},
	update: func(t *testing.T, tx service.Tx, a service.Agreement) error {
		return tx.UpdateAgreement(t.Context(), a)
	},
	byKey: func(t *testing.T, r reader, code string) (service.Agreement, error) {
		return r.AgreementByOutContractCode(t.Context(), code)
	},
	byID: func(t *testing.T, r reader, id string) (service.Agreement, error) {
		return r.AgreementByContractID(t.Context(), id)
	},
}

// createAgreements inserts as in one transaction and fails the test on
// error.
func createAgreements(t *testing.T, s service.Store, as ...service.Agreement) {
	t.Helper()
	agreements.createAll(t, s, as...)
}

// checkAgreement fails the test unless s reads want, by each of its keys,
// outside and inside a transaction, with its times in UTC.
func checkAgreement(t *testing.T, s service.Store, step string, want service.Agreement) {
	t.Helper()
	agreements.check(t, s, step, want)
}

func testAgreementRoundTrip(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	created := base.In(shanghai)
	a := FullAgreement("OCC1", "C1", created)
	createAgreements(t, s, a)
	checkAgreement(t, s, "create", a)

	// Change every field and clear the times that may be zero; the fields
	// fixed at creation keep their recorded values.
	b := FullAgreement("OCC1", "C2", created.Add(time.Second))
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
	c := FullAgreement("OCC1", "C2", created)
	inTx(t, s, func(tx service.Tx) error { return tx.UpdateAgreement(ctx, c) })
	checkAgreement(t, s, "update again", c)

	inTx(t, s, func(tx service.Tx) error { return tx.DeleteAgreement(ctx, "OCC1") })
	_, err = s.AgreementByOutContractCode(ctx, "OCC1")
	checkErr(t, "by out_contract_code after delete", err, service.ErrNotFound)
	_, err = s.AgreementByContractID(ctx, "C2")
	checkErr(t, "by contract id after delete", err, service.ErrNotFound)
	err = s.InTx(ctx, func(tx service.Tx) error { return tx.DeleteAgreement(ctx, "OCC1") })
	checkErr(t, "delete of a deleted agreement", err, service.ErrNotFound)
}
