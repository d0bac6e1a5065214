package db

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// createCharges inserts cs in one transaction and fails the test on error.
func createCharges(t *testing.T, db *DB, cs ...service.Charge) {
	t.Helper()
	inTx(t, db, func(tx service.Tx) error {
		for _, c := range cs {
			if err := tx.CreateCharge(t.Context(), c); err != nil {
				return err
			}
		}
		return nil
	})
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
	err = db.read.QueryRowContext(ctx, `SELECT (success_time IS NULL) + (update_time IS NULL) +
		(promotion_detail IS NULL) + (next_check_time IS NULL) FROM charges WHERE out_trade_no = 'T0'`).Scan(&nulls)
	if err != nil {
		t.Fatal(err)
	}
	if nulls != 4 {
		t.Errorf("%d of success_time, update_time, promotion_detail, next_check_time are NULL, want 4", nulls)
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

// openChargesSQL is the query a reconciler runs to read open charges,
// oldest first, created before a cutoff, a batch at a time. Its WHERE
// repeats the condition of the partial index charges_open, so the index
// applies; INDEXED BY makes SQLite use it (without statistics it prefers
// charges_state and a sort) and fail the query if it could not.
const openChargesSQL = `SELECT id, ` + chargeColumns + `
FROM charges INDEXED BY charges_open WHERE state IN ('PENDING', 'PROCESSING', 'CLOSING') AND (create_time, id) > (:after_time, :after_id)
	AND create_time < :before
ORDER BY create_time, id LIMIT :limit`

func TestOpenChargesScan(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	seedCharges(t, db)
	rows, err := db.read.QueryContext(t.Context(), openChargesSQL,
		sql.Named("after_time", chargeBase.UnixNano()), sql.Named("after_id", 1),
		sql.Named("before", chargeBase.Add(time.Hour).UnixNano()), sql.Named("limit", 10))
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

// TestChargeQueryPlans pins that the lookups, the pages and the open
// charge scan are served by indexes, without a table scan or a sort.
func TestChargeQueryPlans(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	// The upper bound of a time range is folded into the cursor (see
	// ListCharges), so only the lower bound is a separate condition.
	const rng = listChargesFromSQL
	tests := []struct {
		name, query, index string
	}{
		{"by out_trade_no", chargeByOutTradeNoSQL, "sqlite_autoindex_charges_1"},
		{"by transaction id", chargeByTransactionIDSQL, "charges_transaction_id"},
		{"update", updateChargeSQL, "sqlite_autoindex_charges_1"},
		{"page", listChargesSQL + listOrderSQL, "charges_page"},
		{"page by contract id", listChargesSQL + listChargesByContractIDSQL + listOrderSQL, "charges_contract_id"},
		{"page by out_contract_code", listChargesSQL + listChargesByOutContractCodeSQL + listOrderSQL, "charges_out_contract_code"},
		{"page by openid", listChargesSQL + listChargesByOpenIDSQL + listOrderSQL, "charges_openid"},
		{"page by state", listChargesSQL + listChargesByStateSQL + listOrderSQL, "charges_state"},
		{"page by sub_mchid", listChargesSQL + listChargesBySubMchIDSQL + listOrderSQL, "charges_sub_mchid"},
		{"page from", listChargesSQL + listChargesFromSQL + listOrderSQL, "charges_page"},
		{"page in range", listChargesSQL + rng + listOrderSQL, "charges_page"},
		{"page by contract id in range", listChargesSQL + listChargesByContractIDSQL + rng + listOrderSQL, "charges_contract_id"},
		{"page by out_contract_code in range", listChargesSQL + listChargesByOutContractCodeSQL + rng + listOrderSQL, "charges_out_contract_code"},
		{"page by openid in range", listChargesSQL + listChargesByOpenIDSQL + rng + listOrderSQL, "charges_openid"},
		{"page by state in range", listChargesSQL + listChargesByStateSQL + rng + listOrderSQL, "charges_state"},
		{"page by sub_mchid in range", listChargesSQL + listChargesBySubMchIDSQL + rng + listOrderSQL, "charges_sub_mchid"},
		{"open charges", openChargesSQL, "charges_open"},
		{"anomalies by out_trade_no", `SELECT * FROM anomalies WHERE out_trade_no = ?`, "anomalies_out_trade_no"},
	}
	for _, tt := range tests {
		checkPlan(t, db, tt.name, tt.query, tt.index)
	}
}

// A transaction's reads of a charge it read or wrote are answered from
// memory: after an update, the answer is the row as stored, to the
// nanosecond, zone and promotion, as a read of the database returns it.
func TestChargeReadAfterUpdate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	cst := time.FixedZone("CST", 8*3600)
	created := service.Charge{OutTradeNo: "M1", ContractID: "C1", Amount: service.Money{Total: 100, Currency: "CNY"},
		State: service.ChargeProcessing, CreateTime: time.Date(2026, 1, 2, 3, 4, 5, 6, cst), NextCheckTime: time.Now()}
	createCharges(t, db, created)
	updates := []func(c *service.Charge){
		func(c *service.Charge) {
			c.State, c.TransactionID, c.TradeState, c.SuccessTime = service.ChargeSucceeded, "W1", "SUCCESS", time.Now()
			c.UpdateTime, c.NextCheckTime, c.CheckAttempts = time.Now().In(cst), time.Time{}, 0
			c.PromotionDetail = []service.PromotionDetail{{PromotionID: "P1", Amount: 5, Currency: "CNY",
				GoodsDetail: []service.GoodsDetail{{GoodsID: "G1", Quantity: 2, Price: 3}}}}
			c.ExchangeRate = service.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: 100000000}
		},
		func(c *service.Charge) {
			c.RefundedTotal, c.PromotionDetail, c.LastSendTime = 40, nil, time.Unix(0, 1)
			c.Description = "not written: fixed at creation"
		},
	}
	for i, update := range updates {
		inTx(t, db, func(stx service.Tx) error {
			tx := stx.(*tx)
			c, err := tx.ChargeByOutTradeNo(ctx, "M1")
			if err != nil {
				return err
			}
			update(&c)
			if err := tx.UpdateCharge(ctx, c); err != nil {
				return err
			}
			got, err := tx.ChargeByOutTradeNo(ctx, "M1")
			if err != nil {
				return err
			}
			if !tx.charge.ok {
				t.Errorf("update %d: the charge is not kept after its update", i)
			}
			stored, err := tx.reader.ChargeByOutTradeNo(ctx, "M1")
			if err != nil {
				return err
			}
			// cmp compares times as instants; their JSON (an event's
			// snapshot) shows the zone too.
			sameAsStored(t, fmt.Sprintf("update %d: read after the update", i), stored, got)
			got.PromotionDetail = append(got.PromotionDetail, service.PromotionDetail{PromotionID: "changed by the caller"})
			again, err := tx.ChargeByOutTradeNo(ctx, "M1")
			if err != nil {
				return err
			}
			if diff := cmp.Diff(stored, again); diff != "" {
				t.Errorf("update %d: a caller's change leaked into the next read (-stored +got):\n%s", i, diff)
			}
			return nil
		})
	}
}

// sameAsStored reports where got, a record a transaction read, differs
// from stored, the row as stored: field by field, and as JSON (which
// tells a nil slice from an empty one).
func sameAsStored(t *testing.T, what string, stored, got any) {
	t.Helper()
	if diff := cmp.Diff(stored, got); diff != "" {
		t.Errorf("%s (-stored +got):\n%s", what, diff)
	}
	if s, g := mustJSON(t, stored), mustJSON(t, got); s != g {
		t.Errorf("%s:\n%s, stored\n%s", what, g, s)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
