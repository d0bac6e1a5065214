package db

import (
	"database/sql"
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

// TestUpgradeFromVersion1 builds a database file the way papayd with only
// migration 0001 left it, with agreements and notifications, and opens it:
// every later migration applies, and nothing recorded is lost.
func TestUpgradeFromVersion1(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "papayd.db")
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}

	created := time.Date(2026, 2, 1, 8, 0, 0, 5, time.UTC)
	agreements := []service.Agreement{fullAgreement("OCC1", "C1", created), fullAgreement("OCC2", "", created.Add(time.Second))}
	notes := []service.NotificationRecord{{
		ID: "N1", EventType: service.EventContractSigned, Summary: "signed",
		CreateTime: created, ReceiveTime: created.Add(time.Second),
		Outcome: service.OutcomeApplied, OutContractCode: "OCC1", ContractID: "C1", Resource: []byte(`{"a":1}`),
	}, {
		ID: "N2", EventType: "SOMETHING.NEW", Outcome: service.OutcomeUnhandled,
	}}
	func() {
		v1, err := sql.Open("sqlite", dsn(path))
		if err != nil {
			t.Fatal(err)
		}
		defer v1.Close()
		v1.SetMaxOpenConns(1)
		if err := applyMigrations(ctx, v1, ms[:1]); err != nil {
			t.Fatalf("apply 0001: %v", err)
		}
		sqlTx, err := v1.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer sqlTx.Rollback()
		old := &tx{reader{q: sqlTx}} // the agreements table is unchanged since 0001
		for _, a := range agreements {
			if err := old.CreateAgreement(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range notes {
			if _, err := sqlTx.ExecContext(ctx, insertV1NotificationSQL, n.ID, n.EventType, n.Summary,
				timeArg(n.CreateTime), timeArg(n.ReceiveTime), string(n.Outcome), n.OutContractCode, n.ContractID,
				n.Resource); err != nil {
				t.Fatal(err)
			}
		}
		if err := sqlTx.Commit(); err != nil {
			t.Fatal(err)
		}
		var charges int
		if err := v1.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'charges'`).Scan(&charges); err != nil || charges != 0 {
			t.Fatalf("version 1 file has a charges table (%d, %v)", charges, err)
		}
	}()

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open of a version 1 file: %v", err)
	}
	defer db.Close()
	if diff := cmp.Diff(embeddedVersions(t), appliedVersions(t, db)); diff != "" {
		t.Errorf("schema_migrations (-want +got):\n%s", diff)
	}
	for _, want := range agreements {
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
