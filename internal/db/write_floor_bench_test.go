package db

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// BenchmarkWriteCallbackSQL is the storage engine's part of
// BenchmarkWriteCallback alone: the statements one TRANSACTION.SUCCESS
// makes (the duplicate check, the charge's read, UpdateCharge's update of
// the columns that change, the charge.succeeded event with its resource encoded once
// beforehand, the notification's record), prepared once and run on the
// writer's connection from one goroutine, four transactions (savepoints)
// to a commit as group commit makes them under figure 1's load (3.2 in
// docs/PERFORMANCE.md), and eight (its 8 callers' most), with
// papayd's pragmas (WAL, synchronous=FULL, fdatasync). No database/sql
// transaction, no writer goroutine, no record decoding, no JSON: what
// SQLite (modernc.org/sqlite) and the kernel cost for these writes,
// below which no change of papayd's own code can take a callback.
//
//	go test -run '^$' -bench WriteCallbackSQL -benchtime 20000x ./internal/db/
func BenchmarkWriteCallbackSQL(b *testing.B) {
	for _, perCommit := range []int{4, 8} {
		b.Run(fmt.Sprintf("%d-per-commit", perCommit), func(b *testing.B) { writeCallbackSQL(b, perCommit) })
	}
}

func writeCallbackSQL(b *testing.B, perCommit int) {
	db, ctx := openBenchDB(b)
	seedOpenCharges(b, db, b.N)
	conn, err := db.write.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	prep := func(q string) *sql.Stmt {
		s, err := conn.PrepareContext(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	now := time.Now()
	// The update papayd makes: the columns callbackTx changes, in
	// UpdateCharge's text, their values the same for every open charge.
	c := openCharge(0, now)
	next := c
	next.TradeState, next.TradeStateDesc, next.State = "SUCCESS", "支付成功", service.ChargeSucceeded
	next.PayerTotal, next.SuccessTime, next.UpdateTime = c.Amount.Total, now, now
	next.NextCheckTime = now.Add(24 * time.Hour)
	set, changed, err := changes(chargeLife, &c, &next)
	if err != nil {
		b.Fatal(err)
	}
	seen, read := prep(notificationRecordedSQL), prep(chargeByOutTradeNoSQL)
	update := prep(updateChangedQuery("charges", "out_trade_no", chargeLife, set))
	event, notification := prep(insertEventSQL), prep(insertNotificationSQL)
	exec := func(q string) {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	resource, err := json.Marshal(next) // about a charge event's resource
	if err != nil {
		b.Fatal(err)
	}
	row := make([]any, 1+(strings.Count(chargeColumns, ",")+1)) // id, then chargeColumns
	for i := range row {
		row[i] = new(sql.RawBytes)
	}
	cpu0, w0 := cpuTime(), writtenBytes()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%perCommit == 0 {
			exec("BEGIN IMMEDIATE")
		}
		exec("SAVEPOINT tx")
		id, no := fmt.Sprintf("N%032d", i), fmt.Sprintf("CBK%010d", i)
		var dup bool
		if err := seen.QueryRowContext(ctx, "1900000100", "1900000109", id).Scan(&dup); err != nil || dup {
			b.Fatal(err, dup)
		}
		rows, err := read.QueryContext(ctx, no)
		if err != nil || !rows.Next() {
			b.Fatal(err)
		}
		if err := rows.Scan(row...); err != nil {
			b.Fatal(err)
		}
		rowID := string(*row[0].(*sql.RawBytes))
		rows.Close()
		if _, err := update.ExecContext(ctx, append(changed[:len(changed):len(changed)], rowID, no)...); err != nil {
			b.Fatal(err)
		}
		if _, err := event.ExecContext(ctx, fmt.Sprintf("ev_%d", i), "charge.succeeded", timeArg(now), c.SubMchID, string(resource)); err != nil {
			b.Fatal(err)
		}
		if _, err := notification.ExecContext(ctx, id, "1900000100", "1900000109", "TRANSACTION.SUCCESS", "支付成功",
			timeArg(now), timeArg(now), string(service.OutcomeApplied), "", c.ContractID, no, c.TransactionID, "",
			[]byte(`{"out_trade_no":"`+no+`","trade_state":"SUCCESS"}`)); err != nil {
			b.Fatal(err)
		}
		exec("RELEASE tx")
		if i%perCommit == perCommit-1 || i == b.N-1 {
			exec("COMMIT")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(writtenBytes()-w0)/float64(b.N), "wbytes/op")
}
