package db

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fs      fstest.MapFS
		want    []int
		wantErr bool
	}{
		{"in order", fstest.MapFS{
			"migrations/0002_b.sql": file("B"), "migrations/0001_a.sql": file("A"), "migrations/README": file("x"),
		}, []int{1, 2}, false},
		{"gap", fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/0003_c.sql": file("C")}, nil, true},
		{"duplicate version", fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/0001_b.sql": file("B")}, nil, true},
		{"not starting at 1", fstest.MapFS{"migrations/0002_b.sql": file("B")}, nil, true},
		{"bad name", fstest.MapFS{"migrations/1_a.sql": file("A")}, nil, true},
		{"no number", fstest.MapFS{"migrations/init.sql": file("A")}, nil, true},
		{"none", fstest.MapFS{}, nil, true},
	}
	for _, tt := range tests {
		ms, err := loadMigrations(tt.fs)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error: %v", tt.name, err, tt.wantErr)
			continue
		}
		var got []int
		for _, m := range ms {
			got = append(got, m.version)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: versions (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestEmbeddedMigrationsLoad(t *testing.T) {
	t.Parallel()
	if vs := embeddedVersions(t); len(vs) == 0 || vs[0] != 1 {
		t.Errorf("embedded migrations %v, want 1..n", vs)
	}
}

// insertV1NotificationSQL is how papayd wrote a notification under schema
// version 1, before the trade columns.
const insertV1NotificationSQL = `INSERT INTO notifications
	(id, event_type, summary, create_time, receive_time, outcome, out_contract_code, contract_id, resource)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

// insertV1AgreementSQL is how papayd wrote an agreement under schema
// versions 1 and 2, before the reconciliation columns. It is frozen: a test
// that builds an old file must not pick up the columns of later versions.
const insertV1AgreementSQL = `INSERT INTO agreements (out_contract_code, contract_id, plan_id, sub_mchid,
	sp_appid, sub_appid, openid, user_display_name, channel, state, termination_mode, termination_note,
	signed_time, terminated_time, session_expire_time, user_client_ip, return_url, return_appid,
	session_id, sign_url, show_code_url, create_time, update_time) VALUES (
	:out_contract_code, :contract_id, :plan_id, :sub_mchid, :sp_appid, :sub_appid,
	:openid, :user_display_name, :channel, :state, :termination_mode, :termination_note,
	:signed_time, :terminated_time, :session_expire_time, :user_client_ip, :return_url, :return_appid,
	:session_id, :sign_url, :show_code_url, :create_time, :update_time)`

// insertV2ChargeSQL is how papayd wrote a charge under schema version 2,
// before the reconciliation columns. Frozen, like insertV1AgreementSQL.
const insertV2ChargeSQL = `INSERT INTO charges (out_trade_no, transaction_id, contract_id,
	out_contract_code, openid, sub_mchid, sp_appid, sub_appid, amount_total, amount_currency,
	payer_total, payer_currency, exchange_rate_type, exchange_rate, description, attach, goods_tag,
	merchant_category_code, scene_device_id, scene_device_ip, bank_type, trade_state, trade_state_desc,
	state, failure_code, failure_message, success_time, promotion_detail, create_time, update_time) VALUES (
	:out_trade_no, :transaction_id, :contract_id, :out_contract_code, :openid,
	:sub_mchid, :sp_appid, :sub_appid, :amount_total, :amount_currency, :payer_total, :payer_currency,
	:exchange_rate_type, :exchange_rate, :description, :attach, :goods_tag, :merchant_category_code,
	:scene_device_id, :scene_device_ip, :bank_type, :trade_state, :trade_state_desc, :state,
	:failure_code, :failure_message, :success_time, :promotion_detail, :create_time, :update_time)`

// beforeReconcile clears the fields schema versions 1 and 2 did not store.
func beforeReconcile(a service.Agreement) service.Agreement {
	a.NextCheckTime, a.CheckAttempts = time.Time{}, 0
	return a
}

// oldDB builds a database file at path the way papayd with only the first
// n migrations left it, and runs fill in one transaction on it.
func oldDB(t *testing.T, path string, n int, fill func(*sql.Tx) error) {
	t.Helper()
	ctx := t.Context()
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	old, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	old.SetMaxOpenConns(1)
	if err := applyMigrations(ctx, old, ms[:n]); err != nil {
		t.Fatalf("apply migrations 1..%d: %v", n, err)
	}
	sqlTx, err := old.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sqlTx.Rollback()
	if err := fill(sqlTx); err != nil {
		t.Fatalf("fill version %d file: %v", n, err)
	}
	if err := sqlTx.Commit(); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := old.QueryRowContext(ctx, schemaVersionSQL).Scan(&v); err != nil || v != n {
		t.Fatalf("old file at schema version %d (%v), want %d", v, err, n)
	}
}

// TestUpgradeFromVersion1 builds a database file the way papayd with only
// migration 0001 left it, with agreements and notifications, and opens it:
// every later migration applies, and nothing recorded is lost.
func TestUpgradeFromVersion1(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "papayd.db")
	created := time.Date(2026, 2, 1, 8, 0, 0, 5, time.UTC)
	agreements := []service.Agreement{fullAgreement("OCC1", "C1", created), fullAgreement("OCC2", "", created.Add(time.Second))}
	notes := []service.NotificationRecord{{
		ID: "N1", EventType: service.EventContractSigned, Summary: "signed",
		CreateTime: created, ReceiveTime: created.Add(time.Second),
		Outcome: service.OutcomeApplied, OutContractCode: "OCC1", ContractID: "C1", Resource: []byte(`{"a":1}`),
	}, {
		ID: "N2", EventType: "SOMETHING.NEW", Outcome: service.OutcomeUnhandled,
	}}
	for i := range agreements {
		agreements[i] = beforeReconcile(agreements[i])
	}
	oldDB(t, path, 1, func(sqlTx *sql.Tx) error {
		for _, a := range agreements {
			if _, err := sqlTx.ExecContext(ctx, insertV1AgreementSQL, agreementArgs(a)...); err != nil {
				return err
			}
		}
		for _, n := range notes {
			if _, err := sqlTx.ExecContext(ctx, insertV1NotificationSQL, n.ID, n.EventType, n.Summary,
				timeArg(n.CreateTime), timeArg(n.ReceiveTime), string(n.Outcome), n.OutContractCode, n.ContractID,
				n.Resource); err != nil {
				return err
			}
		}
		var charges int
		if err := sqlTx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'charges'`).Scan(&charges); err != nil || charges != 0 {
			return fmt.Errorf("version 1 file has a charges table (%d, %v)", charges, err)
		}
		return nil
	})

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open of a version 1 file: %v", err)
	}
	defer db.Close()
	if diff := cmp.Diff(embeddedVersions(t), appliedVersions(t, db)); diff != "" {
		t.Errorf("schema_migrations (-want +got):\n%s", diff)
	}
	for _, want := range agreements {
		want.NextCheckTime = want.CreateTime // both are SIGNED: open, due at once
		got, err := db.AgreementByOutContractCode(ctx, want.OutContractCode)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("agreement %s (-want +got):\n%s", want.OutContractCode, diff)
		}
	}
	for _, want := range notes { // the new columns read back empty
		if diff := cmp.Diff(want, readNotification(t, db, want.ID)); diff != "" {
			t.Errorf("notification %s (-want +got):\n%s", want.ID, diff)
		}
	}

	// The upgraded file has the schema of a new one, and works as one.
	fresh := openTestDB(t)
	if diff := cmp.Diff(schema(t, fresh), schema(t, db)); diff != "" {
		t.Errorf("schema of the upgraded file (-new file +upgraded):\n%s", diff)
	}
	c := fullCharge("T1", "X1", created)
	n := service.NotificationRecord{ID: "N3", EventType: service.EventTransactionSuccess, OutTradeNo: "T1", TransactionID: "X1"}
	inTx(t, db, func(tx service.Tx) error {
		if err := tx.CreateCharge(ctx, c); err != nil {
			return err
		}
		if err := tx.InsertNotification(ctx, n); err != nil {
			return err
		}
		return tx.InsertAnomaly(ctx, service.Anomaly{Kind: "K", OutTradeNo: "T1", NotificationID: "N3"})
	})
	if got, err := db.ChargeByTransactionID(ctx, "X1"); err != nil || got.OutTradeNo != "T1" {
		t.Errorf("ChargeByTransactionID after upgrade = %q, %v", got.OutTradeNo, err)
	}
	if diff := cmp.Diff(n, readNotification(t, db, "N3")); diff != "" {
		t.Errorf("notification after upgrade (-want +got):\n%s", diff)
	}
}

// schema lists the tables and indexes of db with their SQL.
func schema(t *testing.T, db *DB) []string {
	t.Helper()
	rows, err := db.read.QueryContext(t.Context(),
		`SELECT type || ' ' || name || ': ' || COALESCE(sql, '') FROM sqlite_schema ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var s []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		s = append(s, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestUpgradeFromVersion2 builds a database file the way papayd with
// migrations 0001 and 0002 left it, with agreements and charges in every
// state, and opens it: the open ones become due at their create time, so
// the reconciler looks at each once; the final ones are never due.
func TestUpgradeFromVersion2(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "papayd.db")
	base := time.Date(2026, 2, 1, 8, 0, 0, 5, time.UTC)

	// Created newest first, so the due order (by create time) is not the
	// insertion order.
	var agreements []service.Agreement
	for i, st := range []service.AgreementState{service.AgreementPending, service.AgreementSigned,
		service.AgreementTerminated, service.AgreementExpired, service.AgreementSigned} {
		a := fullAgreement(fmt.Sprintf("OCC%d", i), fmt.Sprintf("C%d", i), base.Add(-time.Duration(i)*time.Minute))
		a.State = st
		agreements = append(agreements, beforeReconcile(a))
	}
	var charges []service.Charge
	for i, st := range []service.ChargeState{service.ChargePending, service.ChargeProcessing,
		service.ChargeSucceeded, service.ChargeFailed, service.ChargeClosed, service.ChargePending} {
		c := fullCharge(fmt.Sprintf("T%d", i), fmt.Sprintf("X%d", i), base.Add(-time.Duration(i)*time.Minute))
		c.State, c.NextCheckTime, c.CheckAttempts = st, time.Time{}, 0
		// Columns of 0004: a charge of papayd before it has no notify_url
		// and counts as sent when it was created.
		c.NotifyURL, c.LastSendTime = "", c.CreateTime
		// Column of 0011: nothing refunded.
		c.RefundedTotal = 0
		charges = append(charges, c)
	}
	oldDB(t, path, 2, func(sqlTx *sql.Tx) error {
		for _, a := range agreements {
			if _, err := sqlTx.ExecContext(ctx, insertV1AgreementSQL, agreementArgs(a)...); err != nil {
				return err
			}
		}
		for _, c := range charges {
			if _, err := sqlTx.ExecContext(ctx, insertV2ChargeSQL, chargeArgs(c)...); err != nil {
				return err
			}
		}
		return nil
	})

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open of a version 2 file: %v", err)
	}
	defer db.Close()
	if diff := cmp.Diff(embeddedVersions(t), appliedVersions(t, db)); diff != "" {
		t.Errorf("schema_migrations (-want +got):\n%s", diff)
	}

	var wantDueA []string
	for _, want := range agreements {
		if want.State == service.AgreementPending || want.State == service.AgreementSigned {
			want.NextCheckTime = want.CreateTime
			wantDueA = append([]string{want.OutContractCode}, wantDueA...) // older ones were created later
		}
		got, err := db.AgreementByOutContractCode(ctx, want.OutContractCode)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("agreement %s (%s) (-want +got):\n%s", want.OutContractCode, want.State, diff)
		}
	}
	var wantDueC []string
	for _, want := range charges {
		if !want.State.Final() {
			want.NextCheckTime = want.CreateTime
			wantDueC = append([]string{want.OutTradeNo}, wantDueC...)
		}
		got, err := db.ChargeByOutTradeNo(ctx, want.OutTradeNo)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("charge %s (%s) (-want +got):\n%s", want.OutTradeNo, want.State, diff)
		}
	}
	// The final rows hold NULL, not 0 (which would be a time in 1970).
	var n int
	err = db.read.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM agreements WHERE state IN ('TERMINATED', 'EXPIRED') AND next_check_time IS NULL) +
		(SELECT count(*) FROM charges WHERE state IN ('SUCCEEDED', 'FAILED', 'CLOSED') AND next_check_time IS NULL)`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2+3 {
		t.Errorf("%d final rows have a NULL next_check_time, want 5", n)
	}

	// Everything open is due at once, oldest first.
	now := base.Add(time.Nanosecond)
	if diff := cmp.Diff(wantDueA, dueAgreementCodes(t, db, now, 100)); diff != "" {
		t.Errorf("due agreements after upgrade (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantDueC, dueChargeNos(t, db, now, 100)); diff != "" {
		t.Errorf("due charges after upgrade (-want +got):\n%s", diff)
	}

	// The upgraded file has the schema of a new one, and works as one.
	fresh := openTestDB(t)
	if diff := cmp.Diff(schema(t, fresh), schema(t, db)); diff != "" {
		t.Errorf("schema of the upgraded file (-new file +upgraded):\n%s", diff)
	}
	inTx(t, db, func(tx service.Tx) error {
		_, err := tx.CreateIntent(ctx, service.Intent{Kind: service.IntentClose, Key: "T0", CreateTime: base})
		return err
	})
	if ins, err := db.OpenIntents(ctx); err != nil || len(ins) != 1 {
		t.Errorf("OpenIntents after upgrade = %v, %v; want one", ins, err)
	}
}

// TestUpgradeScopesNotifications opens a file as migration 0004 left it:
// its notifications take their merchants from their stored resources, so a
// redelivery after the upgrade is still a duplicate.
func TestUpgradeScopesNotifications(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "papayd.db")
	const insertV4 = `INSERT INTO notifications (id, event_type, summary, outcome, out_contract_code, contract_id, resource)
VALUES (?, 'PAPAY.SIGN', '', 'APPLIED', '', '', ?)`
	rows := []struct{ id, resource, sp, sub string }{
		{"N1", `{"sp_mchid":"1900000100","sub_mchid":"1900000109","contract_id":"C1"}`, "1900000100", "1900000109"},
		{"N2", `{"mchid":"1900000200","contract_id":"C2"}`, "1900000200", ""},
		{"N3", `not json`, "", ""},
	}
	oldDB(t, path, 4, func(sqlTx *sql.Tx) error {
		for _, r := range rows {
			if _, err := sqlTx.ExecContext(ctx, insertV4, r.id, []byte(r.resource)); err != nil {
				return err
			}
		}
		return nil
	})
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open of a version 4 file: %v", err)
	}
	defer db.Close()
	for _, r := range rows {
		key := service.NotificationKey{SpMchID: r.sp, SubMchID: r.sub, ID: r.id}
		var seen bool
		inTx(t, db, func(tx service.Tx) (err error) {
			seen, err = tx.NotificationRecorded(ctx, key)
			return err
		})
		if !seen {
			t.Errorf("%+v is not recorded after the upgrade", key)
		}
		var resource []byte
		if err := db.read.QueryRowContext(ctx, `SELECT resource FROM notifications WHERE id = ?`, r.id).Scan(&resource); err != nil || string(resource) != r.resource {
			t.Errorf("%s: resource %q (%v)", r.id, resource, err)
		}
	}
}

// insertV10NotificationSQL is how papayd wrote a notification under schema
// version 10, before out_refund_no. Frozen, like insertV2ChargeSQL.
const insertV10NotificationSQL = `INSERT INTO notifications
	(id, sp_mchid, sub_mchid, event_type, summary, create_time, receive_time, outcome, out_contract_code,
	contract_id, out_trade_no, transaction_id, resource)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// TestUpgradeFromVersion10 builds a database file the way papayd before
// refunds (migrations 0001 to 0010) left it, with a charge and a
// notification, and opens it: the charge has nothing refunded, the
// notification no refund, and the file works as a new one.
func TestUpgradeFromVersion10(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "papayd.db")
	created := time.Date(2026, 2, 1, 8, 0, 0, 5, time.UTC)
	c := fullCharge("T1", "X1", created)
	// Columns of 0003 and 0004 the frozen insert does not write.
	c.NextCheckTime, c.CheckAttempts, c.NotifyURL, c.LastSendTime = time.Time{}, 0, "", time.Time{}
	c.RefundedTotal = 0
	n := service.NotificationRecord{ID: "N1", SpMchID: "SP", SubMchID: "SUB", EventType: service.EventTransactionSuccess,
		Summary: "paid", CreateTime: created, ReceiveTime: created.Add(time.Second), Outcome: service.OutcomeApplied,
		OutTradeNo: "T1", TransactionID: "X1", Resource: []byte(`{"transaction_id":"X1"}`)}
	oldDB(t, path, 10, func(sqlTx *sql.Tx) error {
		if _, err := sqlTx.ExecContext(ctx, insertV2ChargeSQL, chargeArgs(c)...); err != nil {
			return err
		}
		_, err := sqlTx.ExecContext(ctx, insertV10NotificationSQL, n.ID, n.SpMchID, n.SubMchID, n.EventType, n.Summary,
			timeArg(n.CreateTime), timeArg(n.ReceiveTime), string(n.Outcome), n.OutContractCode, n.ContractID,
			n.OutTradeNo, n.TransactionID, n.Resource)
		return err
	})

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open of a version 10 file: %v", err)
	}
	defer db.Close()
	if diff := cmp.Diff(embeddedVersions(t), appliedVersions(t, db)); diff != "" {
		t.Errorf("schema_migrations (-want +got):\n%s", diff)
	}
	got, err := db.ChargeByOutTradeNo(ctx, "T1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("charge (-want +got):\n%s", diff)
	}
	// readNotification does not read the key; NotificationRecorded finds
	// the notification by it.
	want := n
	want.SpMchID, want.SubMchID = "", ""
	if diff := cmp.Diff(want, readNotification(t, db, "N1")); diff != "" {
		t.Errorf("notification (-want +got):\n%s", diff)
	}
	inTx(t, db, func(tx service.Tx) error {
		seen, err := tx.NotificationRecorded(ctx, service.NotificationKey{SpMchID: "SP", SubMchID: "SUB", ID: "N1"})
		if err != nil || !seen {
			t.Errorf("notification N1 by its key after upgrade: %v, %v", seen, err)
		}
		return nil
	})
	if fresh := openTestDB(t); !cmp.Equal(schema(t, fresh), schema(t, db)) {
		t.Errorf("schema of the upgraded file (-new file +upgraded):\n%s", cmp.Diff(schema(t, fresh), schema(t, db)))
	}

	// The old charge is refunded as a new one would be.
	r := fullRefund("R1", "W1", created.Add(time.Hour))
	c.RefundedTotal = 250
	inTx(t, db, func(tx service.Tx) error {
		if err := tx.CreateRefund(ctx, r); err != nil {
			return err
		}
		return tx.UpdateCharge(ctx, c)
	})
	if got, err := db.RefundsOfCharge(ctx, "T1"); err != nil || len(got) != 1 || got[0].OutRefundNo != "R1" {
		t.Errorf("refunds of T1 after upgrade: %v, %v", refundNos(got), err)
	}
	if got, err := db.ChargeByOutTradeNo(ctx, "T1"); err != nil || got.RefundedTotal != 250 {
		t.Errorf("refunded_total after upgrade: %d, %v; want 250", got.RefundedTotal, err)
	}
}
