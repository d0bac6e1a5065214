package postgres

import (
	"encoding/base64"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/papayd/papayd/internal/service"
)

// fullCharge returns a charge with every field set, promotion and goods
// detail included; its times carry nanoseconds and a non-UTC zone.
func fullCharge(outTradeNo, transactionID string, created time.Time) service.Charge {
	return service.Charge{
		OutTradeNo:      outTradeNo,
		TransactionID:   transactionID,
		ContractID:      "C1",
		OutContractCode: "OCC1",
		OpenID:          "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
		Merchant:        service.Merchant{SubMchID: "1900000109", SPAppID: "wx1234567890abcdef", SubAppID: "wxfedcba0987654321"},
		// Beyond 2^53, so a float anywhere on the way would lose it.
		Amount:               service.Money{Total: 1<<53 + 1, Currency: "HKD"},
		PayerTotal:           1<<62 + 3,
		PayerCurrency:        "CNY",
		ExchangeRate:         service.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: 91234567},
		Description:          "monthly plan",
		Attach:               `{"order":"42"}`,
		GoodsTag:             "WXG",
		MerchantCategoryCode: "5812",
		SceneInfo:            service.SceneInfo{DeviceID: "POS-7", DeviceIP: "2001:db8::1"},
		BankType:             "CMB_CREDIT",
		TradeState:           service.TradePayError,
		TradeStateDesc:       "insufficient balance",
		State:                service.ChargeFailed,
		FailureCode:          "NOTENOUGH",
		FailureMessage:       "balance too low",
		SuccessTime:          created.Add(time.Minute + 7).In(shanghai),
		PromotionDetail: []service.PromotionDetail{{
			PromotionID: "109519", Name: "spring", Scope: "SINGLE", Type: "DISCOUNT",
			Amount: 5, Currency: "HKD", ActivityID: "931386",
			WxpayContributeAmount: 1, MerchantContributeAmount: 3, OtherContributeAmount: 1,
			GoodsDetail: []service.GoodsDetail{
				{GoodsID: "g1", GoodsRemark: "first", DiscountAmount: 2, Quantity: 1, Price: 100},
				{GoodsID: "g2", GoodsRemark: "second", DiscountAmount: 3, Quantity: 4, Price: 1<<53 + 1},
			},
		}, {
			PromotionID: "2", Name: "no goods", Scope: "GLOBAL", Type: "COUPON",
			Amount: 1, Currency: "HKD", ActivityID: "3",
			WxpayContributeAmount: 1, MerchantContributeAmount: 0, OtherContributeAmount: 0,
		}},
		NotifyURL:    "https://papayd.example/wechatpay/notify",
		CreateTime:   created,
		UpdateTime:   created.Add(2*time.Hour + 1).In(shanghai),
		LastSendTime: created.Add(time.Minute + 3).In(shanghai),

		NextCheckTime: created.Add(5*time.Minute + 13).In(shanghai),
		CheckAttempts: 3,
		RefundedTotal: 1<<53 - 1,
	}
}

// TestFullChargeSetsEveryField keeps the round trip tests honest: a field
// added to service.Charge (or its promotion and goods detail) that the
// fixture leaves zero would not be checked to be stored.
func TestFullChargeSetsEveryField(t *testing.T) {
	t.Parallel()
	checkEveryFieldSet(t, "Charge", fullCharge("T1", "X1", time.Now()))
}

// checkEveryFieldSet fails the test for every field of v, nested structs
// and the first element of slices included, that is zero.
func checkEveryFieldSet(t *testing.T, name string, v any) {
	t.Helper()
	var check func(path string, v reflect.Value)
	check = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			if v.Type() == reflect.TypeFor[time.Time]() {
				break
			}
			for i := range v.NumField() {
				check(path+"."+v.Type().Field(i).Name, v.Field(i))
			}
			return
		case reflect.Slice:
			if v.Len() > 0 {
				check(path+"[0]", v.Index(0))
			}
		}
		if v.IsZero() {
			t.Errorf("the fixture leaves %s zero", path)
		}
	}
	check(name, reflect.ValueOf(v))
}

// createCharges inserts cs in one transaction and fails the test on error.
func createCharges(t *testing.T, db *DB, cs ...service.Charge) {
	t.Helper()
	inTx(t, db, func(tx Tx) error {
		for _, c := range cs {
			if err := tx.CreateCharge(t.Context(), c); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestChargeRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	created := time.Date(2026, 3, 1, 10, 0, 0, 123456789, shanghai)

	c := fullCharge("T1", "X1", created)
	createCharges(t, db, c)
	check := func(step string, want service.Charge) {
		t.Helper()
		byNo, err := db.ChargeByOutTradeNo(ctx, want.OutTradeNo)
		if err != nil {
			t.Fatalf("%s: ChargeByOutTradeNo: %v", step, err)
		}
		if diff := cmp.Diff(want, byNo); diff != "" {
			t.Errorf("%s: by out_trade_no (-want +got):\n%s", step, diff)
		}
		for name, tm := range map[string]time.Time{
			"CreateTime": byNo.CreateTime, "SuccessTime": byNo.SuccessTime, "NextCheckTime": byNo.NextCheckTime,
		} {
			if !tm.IsZero() && tm.Location() != time.UTC {
				t.Errorf("%s: %s in %v, want UTC", step, name, tm.Location())
			}
		}
		inTx(t, db, func(tx Tx) error {
			got, err := tx.ChargeByOutTradeNo(ctx, want.OutTradeNo)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: by out_trade_no in tx (-want +got):\n%s", step, diff)
			}
			return nil
		})
		if want.TransactionID == "" {
			return
		}
		byID, err := db.ChargeByTransactionID(ctx, want.TransactionID)
		if err != nil {
			t.Fatalf("%s: ChargeByTransactionID: %v", step, err)
		}
		if diff := cmp.Diff(want, byID); diff != "" {
			t.Errorf("%s: by transaction id (-want +got):\n%s", step, diff)
		}
	}
	check("create", c)

	// Change every field; clear the times that can be zero and the
	// promotion detail (an empty slice reads back as nil). The fields fixed
	// at creation keep their recorded values.
	u := fullCharge("T1", "X2", created.Add(time.Second))
	u.ContractID, u.OutContractCode, u.OpenID = "C2", "OCC2", "o2"
	u.Merchant = service.Merchant{SubMchID: "m2", SPAppID: "sp2", SubAppID: "sub2"}
	u.Amount, u.PayerTotal, u.PayerCurrency = service.Money{Total: 100, Currency: "USD"}, -1, "USD"
	u.ExchangeRate = service.ExchangeRate{}
	u.Description, u.Attach, u.GoodsTag, u.MerchantCategoryCode = "d2", "", "", "0000"
	u.SceneInfo, u.BankType = service.SceneInfo{}, "OTHERS"
	u.TradeState, u.TradeStateDesc, u.State = service.TradeSuccess, "paid", service.ChargeSucceeded
	u.FailureCode, u.FailureMessage = "", ""
	u.SuccessTime, u.UpdateTime, u.NextCheckTime, u.CheckAttempts = time.Time{}, time.Time{}, time.Time{}, 4
	u.RefundedTotal = 7
	u.PromotionDetail = []service.PromotionDetail{}
	inTx(t, db, func(tx Tx) error { return tx.UpdateCharge(ctx, u) })
	u.PromotionDetail = nil
	u.ContractID, u.OutContractCode, u.OpenID, u.Merchant = c.ContractID, c.OutContractCode, c.OpenID, c.Merchant
	u.Amount, u.Description, u.Attach, u.GoodsTag = c.Amount, c.Description, c.Attach, c.GoodsTag
	u.MerchantCategoryCode, u.SceneInfo, u.CreateTime = c.MerchantCategoryCode, c.SceneInfo, c.CreateTime
	check("update", u)
	if _, err := db.ChargeByTransactionID(ctx, "X1"); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("old transaction id after update: err = %v, want ErrNotFound", err)
	}

	// A promotion without goods detail, and back to all fields.
	v := fullCharge("T1", "X2", created)
	v.PromotionDetail = v.PromotionDetail[1:]
	inTx(t, db, func(tx Tx) error { return tx.UpdateCharge(ctx, v) })
	check("update again", v)
}

func TestChargeZeroValues(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	c := service.Charge{OutTradeNo: "T0", CreateTime: time.Unix(0, 1).UTC()}
	createCharges(t, db, c)
	got, err := db.ChargeByOutTradeNo(ctx, "T0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// The zero time and no promotion are NULL in the file, not 0 or "null".
	var nulls int
	err = db.pool.QueryRow(ctx, `SELECT (success_time IS NULL)::int + (update_time IS NULL)::int +
		(promotion_detail IS NULL)::int + (next_check_time IS NULL)::int FROM charges WHERE out_trade_no = 'T0'`).Scan(&nulls)
	if err != nil {
		t.Fatal(err)
	}
	if nulls != 4 {
		t.Errorf("%d of success_time, update_time, promotion_detail, next_check_time are NULL, want 4", nulls)
	}
}

func TestChargeNeedsCreateTime(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	err := db.InTx(ctx, func(tx Tx) error { return tx.CreateCharge(ctx, service.Charge{OutTradeNo: "T0"}) })
	if err == nil {
		t.Error("CreateCharge without a create time succeeded, want an error")
	}
}

func TestChargeConflicts(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		existing []service.Charge
		op       func(Tx) error
		want     error
	}{{
		name:     "duplicate out_trade_no",
		existing: []service.Charge{fullCharge("T1", "X1", created)},
		op: func(tx Tx) error {
			return tx.CreateCharge(t.Context(), fullCharge("T1", "X2", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "duplicate out_trade_no, both without transaction id",
		existing: []service.Charge{fullCharge("T1", "", created)},
		op: func(tx Tx) error {
			return tx.CreateCharge(t.Context(), fullCharge("T1", "", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "duplicate transaction id",
		existing: []service.Charge{fullCharge("T1", "X1", created)},
		op: func(tx Tx) error {
			return tx.CreateCharge(t.Context(), fullCharge("T2", "X1", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "two empty transaction ids",
		existing: []service.Charge{fullCharge("T1", "", created)},
		op: func(tx Tx) error {
			return tx.CreateCharge(t.Context(), fullCharge("T2", "", created))
		},
	}, {
		name:     "update to another charge's transaction id",
		existing: []service.Charge{fullCharge("T1", "X1", created), fullCharge("T2", "", created)},
		op: func(tx Tx) error {
			return tx.UpdateCharge(t.Context(), fullCharge("T2", "X1", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "update keeping its own transaction id",
		existing: []service.Charge{fullCharge("T1", "X1", created)},
		op: func(tx Tx) error {
			return tx.UpdateCharge(t.Context(), fullCharge("T1", "X1", created.Add(time.Hour)))
		},
	}, {
		name:     "update missing",
		existing: []service.Charge{fullCharge("T1", "X1", created)},
		op: func(tx Tx) error {
			return tx.UpdateCharge(t.Context(), fullCharge("T2", "X2", created))
		},
		want: service.ErrNotFound,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := openTestDB(t)
			createCharges(t, db, tt.existing...)
			err := db.InTx(t.Context(), tt.op)
			if !errors.Is(err, tt.want) { // errors.Is(nil, nil) is true
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			// A failed write changed nothing.
			for _, want := range tt.existing {
				got, err := db.ChargeByOutTradeNo(t.Context(), want.OutTradeNo)
				if err != nil {
					t.Fatal(err)
				}
				if tt.want != nil {
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("%s after a refused write (-want +got):\n%s", want.OutTradeNo, diff)
					}
				}
			}
		})
	}
}

func TestChargeNotFound(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	// A charge without a transaction id: the empty id must not find it.
	createCharges(t, db, fullCharge("T1", "", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)))
	tests := []struct {
		name string
		get  func(service.ChargeReader) error
	}{
		{"unknown out_trade_no", func(r service.ChargeReader) error {
			_, err := r.ChargeByOutTradeNo(ctx, "nope")
			return err
		}},
		{"empty out_trade_no", func(r service.ChargeReader) error {
			_, err := r.ChargeByOutTradeNo(ctx, "")
			return err
		}},
		{"unknown transaction id", func(r service.ChargeReader) error {
			_, err := r.ChargeByTransactionID(ctx, "nope")
			return err
		}},
		{"empty transaction id", func(r service.ChargeReader) error {
			_, err := r.ChargeByTransactionID(ctx, "")
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

// chargeBase is the create time of charge A of seedCharges.
var chargeBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// seedCharges creates charges A..H. B, C and D share one create_time, so
// only the tiebreaker orders them; the newest first order is H G F E D C B
// A. Contract ids and out_contract_codes vary independently, so each
// filter is checked on its own column.
func seedCharges(t *testing.T, db *DB) {
	t.Helper()
	rows := []struct {
		no, contract, occ, openid string
		state                     service.ChargeState
		mch                       string
		at                        time.Duration
	}{
		{"A", "c1", "k1", "o1", service.ChargePending, "m1", 0},
		{"B", "c1", "k2", "o1", service.ChargeSucceeded, "m1", time.Second},
		{"C", "c2", "k2", "o2", service.ChargeSucceeded, "m1", time.Second},
		{"D", "c2", "k1", "o2", service.ChargeFailed, "m2", time.Second},
		{"E", "c1", "k1", "o1", service.ChargeProcessing, "m2", 2 * time.Second},
		{"F", "c3", "k3", "o3", service.ChargeClosed, "m1", 3 * time.Second},
		{"G", "c1", "k2", "o1", service.ChargeSucceeded, "m1", 3*time.Second + time.Microsecond},
		{"H", "c2", "k1", "o2", service.ChargePending, "m2", 3*time.Second + time.Microsecond + 1},
	}
	var cs []service.Charge
	for _, r := range rows {
		c := fullCharge(r.no, "X"+r.no, chargeBase.Add(r.at))
		c.ContractID, c.OutContractCode, c.OpenID, c.State, c.SubMchID = r.contract, r.occ, r.openid, r.state, r.mch
		cs = append(cs, c)
	}
	createCharges(t, db, cs...)
}

// listAllCharges pages through f with page size n and returns the
// out_trade_nos in order.
func listAllCharges(t *testing.T, r service.ChargeReader, f service.ChargeFilter, n int) (nos []string, pages int) {
	t.Helper()
	f.PageSize = n
	for {
		cs, next, err := r.ListCharges(t.Context(), f)
		if err != nil {
			t.Fatalf("ListCharges(%+v): %v", f, err)
		}
		if len(cs) > n {
			t.Fatalf("page of %d, want at most %d", len(cs), n)
		}
		pages++
		for _, c := range cs {
			nos = append(nos, c.OutTradeNo)
		}
		if next == "" {
			return nos, pages
		}
		f.PageToken = next
	}
}

func TestListChargesFilters(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	seedCharges(t, db)
	at := func(d time.Duration) time.Time { return chargeBase.Add(d) }
	tests := []struct {
		name string
		f    service.ChargeFilter
		want []string
	}{
		{"all", service.ChargeFilter{}, []string{"H", "G", "F", "E", "D", "C", "B", "A"}},
		{"contract id", service.ChargeFilter{ContractID: "c1"}, []string{"G", "E", "B", "A"}},
		{"out_contract_code", service.ChargeFilter{OutContractCode: "k1"}, []string{"H", "E", "D", "A"}},
		{"openid", service.ChargeFilter{OpenID: "o2"}, []string{"H", "D", "C"}},
		{"state", service.ChargeFilter{State: service.ChargeSucceeded}, []string{"G", "C", "B"}},
		{"sub_mchid", service.ChargeFilter{SubMchID: "m2"}, []string{"H", "E", "D"}},

		// [from, to): from is inclusive, to exclusive, to the nanosecond.
		{"from, inclusive", service.ChargeFilter{CreatedFrom: at(time.Second)}, []string{"H", "G", "F", "E", "D", "C", "B"}},
		{"from, 1ns after", service.ChargeFilter{CreatedFrom: at(time.Second + 1)}, []string{"H", "G", "F", "E"}},
		{"from, another zone", service.ChargeFilter{CreatedFrom: at(3*time.Second + time.Microsecond).In(shanghai)}, []string{"H", "G"}},
		{"to, exclusive", service.ChargeFilter{CreatedTo: at(time.Second)}, []string{"A"}},
		{"to, 1ns after", service.ChargeFilter{CreatedTo: at(time.Second + 1)}, []string{"D", "C", "B", "A"}},
		{"to, excludes G", service.ChargeFilter{CreatedTo: at(3*time.Second + time.Microsecond)}, []string{"F", "E", "D", "C", "B", "A"}},
		{"from and to", service.ChargeFilter{CreatedFrom: at(time.Second), CreatedTo: at(3 * time.Second)}, []string{"E", "D", "C", "B"}},
		{"from equals to", service.ChargeFilter{CreatedFrom: at(time.Second), CreatedTo: at(time.Second)}, nil},
		{"from after to", service.ChargeFilter{CreatedFrom: at(2 * time.Second), CreatedTo: at(time.Second)}, nil},
		{"from before 1677", service.ChargeFilter{CreatedFrom: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{"H", "G", "F", "E", "D", "C", "B", "A"}},
		{"to after 2262", service.ChargeFilter{CreatedTo: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{"H", "G", "F", "E", "D", "C", "B", "A"}},
		{"from after 2262", service.ChargeFilter{CreatedFrom: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}, nil},
		{"to before 1677", service.ChargeFilter{CreatedTo: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)}, nil},

		{"openid and out_contract_code", service.ChargeFilter{OpenID: "o1", OutContractCode: "k2"}, []string{"G", "B"}},
		{"all filters", service.ChargeFilter{
			ContractID: "c1", OutContractCode: "k2", OpenID: "o1", State: service.ChargeSucceeded, SubMchID: "m1",
			CreatedFrom: at(time.Second), CreatedTo: at(4 * time.Second),
		}, []string{"G", "B"}},
		{"none match", service.ChargeFilter{ContractID: "nope"}, nil},
	}
	for _, tt := range tests {
		for _, n := range []int{1, 2, 3, 500} {
			got, pages := listAllCharges(t, db, tt.f, n)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s, page size %d (-want +got):\n%s", tt.name, n, diff)
			}
			if want := max(1, (len(tt.want)+n-1)/n); pages != want {
				t.Errorf("%s, page size %d: %d pages, want %d", tt.name, n, pages, want)
			}
		}
	}
}

func TestListChargesReturnsFullRows(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	c := fullCharge("T1", "X1", chargeBase)
	createCharges(t, db, c)
	got, next, err := db.ListCharges(t.Context(), service.ChargeFilter{PageSize: 10})
	if err != nil || next != "" {
		t.Fatalf("ListCharges: next %q, err %v", next, err)
	}
	if diff := cmp.Diff([]service.Charge{c}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestListChargesInTx(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	seedCharges(t, db)
	inTx(t, db, func(tx Tx) error {
		got, _ := listAllCharges(t, tx, service.ChargeFilter{State: service.ChargePending}, 1)
		if diff := cmp.Diff([]string{"H", "A"}, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		return nil
	})
}

func TestListChargesBadToken(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	seedCharges(t, db)
	seedList(t, db)
	from := chargeBase.Add(time.Second)
	signed := service.ChargeFilter{PageSize: 2, State: service.ChargeSucceeded, CreatedFrom: from}
	_, next, err := db.ListCharges(ctx, signed)
	if err != nil || next == "" {
		t.Fatalf("first page: next %q, err %v", next, err)
	}
	_, agreementToken, err := db.ListAgreements(ctx, service.AgreementFilter{PageSize: 1})
	if err != nil || agreementToken == "" {
		t.Fatalf("agreements: next %q, err %v", agreementToken, err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(next)
	badVersion := append([]byte{9}, raw[1:]...)
	with := func(edit func(*service.ChargeFilter)) service.ChargeFilter {
		f := signed
		edit(&f)
		return f
	}
	tests := []struct {
		name  string
		token string
		f     service.ChargeFilter
	}{
		{"not base64", "!!!", signed},
		{"too short", next[:10], signed},
		{"too long", next + "AAAA", signed},
		{"unknown version", base64.RawURLEncoding.EncodeToString(badVersion), signed},
		{"other state", next, with(func(f *service.ChargeFilter) { f.State = service.ChargePending })},
		{"state moved to another field", next, with(func(f *service.ChargeFilter) { f.State, f.OpenID = "", string(f.State) })},
		{"from 1ns later", next, with(func(f *service.ChargeFilter) { f.CreatedFrom = from.Add(1) })},
		{"from dropped", next, with(func(f *service.ChargeFilter) { f.CreatedFrom = time.Time{} })},
		{"to added", next, with(func(f *service.ChargeFilter) { f.CreatedTo = from.Add(time.Hour) })},
		{"filter dropped", next, service.ChargeFilter{PageSize: 2}},
		{"a ListAgreements token", agreementToken, service.ChargeFilter{PageSize: 2}},
	}
	for _, tt := range tests {
		tt.f.PageToken = tt.token
		_, _, err := db.ListCharges(ctx, tt.f)
		if !errors.Is(err, service.ErrInvalidPageToken) {
			t.Errorf("%s: err = %v, want ErrInvalidPageToken", tt.name, err)
		}
	}

	// The same instant in another zone is the same filter.
	f := signed
	f.CreatedFrom, f.PageToken = from.In(shanghai), next
	if _, _, err := db.ListCharges(ctx, f); err != nil {
		t.Errorf("token with CreatedFrom in another zone: %v", err)
	}
}

func TestListChargesPageSize(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	for _, n := range []int{0, -1} {
		if _, _, err := db.ListCharges(t.Context(), service.ChargeFilter{PageSize: n}); err == nil {
			t.Errorf("page size %d: no error", n)
		}
	}
}

// openChargesSQL is the query a reconciler runs to read open charges,
// oldest first, created before a cutoff, a batch at a time. Its WHERE
// repeats the condition of the partial index charges_open, so the index
// applies.
const openChargesSQL = `SELECT id, ` + chargeColumns + `
FROM charges WHERE state IN ('PENDING', 'PROCESSING', 'CLOSING') AND (create_time, id) > (@after_time, @after_id)
	AND create_time < @before
ORDER BY create_time, id LIMIT @limit`

func TestOpenChargesScan(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	seedCharges(t, db)
	var first int64
	if err := db.pool.QueryRow(t.Context(), `SELECT id FROM charges WHERE out_trade_no = 'A'`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	rows, err := db.pool.Query(t.Context(), openChargesSQL, pgx.NamedArgs{
		"after_time": chargeBase.UnixNano(), "after_id": first,
		"before": chargeBase.Add(time.Hour).UnixNano(), "limit": 10})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		c, _, err := scanCharge(rows)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c.OutTradeNo)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// A is the cursor; E and H are the other open ones.
	if diff := cmp.Diff([]string{"E", "H"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
