package db

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// The write path as figures 1 and 2 of tests/bench drive it, without the
// HTTP, gRPC and crypto around it: 8 callers, so that batches form. Each
// reports the process's CPU and bytes written per transaction (WAL frames
// and checkpoints), the two things a change of the write path moves.
//
//	go test -run '^$' -bench Write -benchtime 5000x ./internal/db/

// benchCallers is the bench's concurrency.
const benchCallers = 8

// openCharge is open charge i as the callback figure seeds it: PROCESSING,
// its transaction id known, waiting for TRANSACTION.SUCCESS.
func openCharge(i int, created time.Time) service.Charge {
	return service.Charge{
		OutTradeNo: fmt.Sprintf("CBK%010d", i), TransactionID: fmt.Sprintf("4200%016d", i),
		ContractID: "C" + strconv.Itoa(i%1000), OutContractCode: "OCC" + strconv.Itoa(i%1000), OpenID: "o" + strconv.Itoa(i%1000),
		Merchant:      service.Merchant{SubMchID: "1900000109", SPAppID: "wx1234567890abcdef", SubAppID: "wxfedcba0987654321"},
		Amount:        service.Money{Total: 8800, Currency: "HKD"},
		PayerCurrency: "HKD", ExchangeRate: service.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: 100000000},
		Description: "FitClub-Central-Monthly", MerchantCategoryCode: "5999", BankType: "CFT",
		TradeState: "USERPAYING", TradeStateDesc: "用户支付中", State: service.ChargeProcessing,
		CreateTime: created, UpdateTime: created.Add(300 * time.Millisecond), NextCheckTime: created.Add(time.Hour),
	}
}

// callbackTx is the transaction of one TRANSACTION.SUCCESS, as
// service.HandleNotification and its outbox run it.
func callbackTx(ctx context.Context, tx service.Tx, i int, now time.Time) error {
	key := service.NotificationKey{SpMchID: "1900000100", SubMchID: "1900000109", ID: fmt.Sprintf("N%032d", i)}
	if seen, err := tx.NotificationRecorded(ctx, key); err != nil || seen {
		return err
	}
	no := fmt.Sprintf("CBK%010d", i)
	c, err := tx.ChargeByOutTradeNo(ctx, no)
	if err != nil {
		return err
	}
	prev, err := tx.ChargeByOutTradeNo(ctx, no) // the outbox's read of the row before
	if err != nil {
		return err
	}
	c.TradeState, c.TradeStateDesc, c.State = "SUCCESS", "支付成功", service.ChargeSucceeded
	c.PayerTotal, c.SuccessTime, c.UpdateTime = c.Amount.Total, now, now
	c.NextCheckTime, c.CheckAttempts = now.Add(24*time.Hour), 0
	if err := tx.UpdateCharge(ctx, c); err != nil {
		return err
	}
	if prev.State != c.State {
		cur, err := tx.ChargeByOutTradeNo(ctx, no)
		if err != nil {
			return err
		}
		if err := tx.AppendEvent(ctx, service.Event{Type: "charge.succeeded", CreateTime: now, SubMchID: cur.SubMchID, Charge: &cur}); err != nil {
			return err
		}
	}
	return tx.InsertNotification(ctx, service.NotificationRecord{
		ID: key.ID, SpMchID: key.SpMchID, SubMchID: key.SubMchID, EventType: "TRANSACTION.SUCCESS", Summary: "支付成功",
		CreateTime: now, ReceiveTime: now, Outcome: service.OutcomeApplied, OutTradeNo: no, TransactionID: c.TransactionID,
		ContractID: c.ContractID, Resource: []byte(`{"out_trade_no":"` + no + `","trade_state":"SUCCESS"}`),
	})
}

// createChargeTxs are the two transactions of one CreateCharge: the
// charge recorded PENDING, then WeChat's answer applied.
func createChargeTxs(ctx context.Context, db *DB, i int, now time.Time) error {
	c := openCharge(i, now)
	c.OutTradeNo, c.TransactionID = fmt.Sprintf("NEW%010d", i), ""
	c.State, c.TradeState, c.TradeStateDesc = service.ChargePending, "", ""
	err := db.InTx(ctx, func(tx service.Tx) error {
		if err := tx.CreateCharge(ctx, c); err != nil {
			return err
		}
		cur, err := tx.ChargeByOutTradeNo(ctx, c.OutTradeNo)
		if err != nil {
			return err
		}
		return tx.AppendEvent(ctx, service.Event{Type: "charge.created", CreateTime: now, SubMchID: cur.SubMchID, Charge: &cur})
	})
	if err != nil {
		return err
	}
	return db.InTx(ctx, func(tx service.Tx) error {
		c, err := tx.ChargeByOutTradeNo(ctx, fmt.Sprintf("NEW%010d", i))
		if err != nil {
			return err
		}
		prev, err := tx.ChargeByOutTradeNo(ctx, c.OutTradeNo)
		if err != nil {
			return err
		}
		c.TransactionID = fmt.Sprintf("4300%016d", i)
		c.TradeState, c.TradeStateDesc, c.State = "SUCCESS", "支付成功", service.ChargeSucceeded
		c.PayerTotal, c.SuccessTime, c.UpdateTime, c.LastSendTime = c.Amount.Total, now, now, now
		c.NextCheckTime = now.Add(24 * time.Hour)
		if err := tx.UpdateCharge(ctx, c); err != nil {
			return err
		}
		if prev.State != c.State {
			cur, err := tx.ChargeByOutTradeNo(ctx, c.OutTradeNo)
			if err != nil {
				return err
			}
			return tx.AppendEvent(ctx, service.Event{Type: "charge.succeeded", CreateTime: now, SubMchID: cur.SubMchID, Charge: &cur})
		}
		return nil
	})
}

func BenchmarkWriteCallback(b *testing.B) {
	db, ctx := openBenchDB(b)
	seedOpenCharges(b, db, b.N)
	now := time.Now()
	runWriteBench(b, func(i int) error {
		return db.InTx(ctx, func(tx service.Tx) error { return callbackTx(ctx, tx, i, now) })
	})
}

func BenchmarkWriteCreateCharge(b *testing.B) {
	db, ctx := openBenchDB(b)
	seedOpenCharges(b, db, 20000)
	now := time.Now()
	runWriteBench(b, func(i int) error { return createChargeTxs(ctx, db, i, now) })
}

func openBenchDB(b *testing.B) (*DB, context.Context) {
	db, err := Open(b.Context(), filepath.Join(b.TempDir(), "papayd.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db, b.Context()
}

// seedOpenCharges records max(n, 20000) open charges, as the bench does
// before figure 1.
func seedOpenCharges(b *testing.B, db *DB, n int) {
	n = max(n, 20000)
	created := time.Now().Add(-time.Hour)
	for from := 0; from < n; from += 5000 {
		err := db.InTx(b.Context(), func(tx service.Tx) error {
			for i := from; i < min(from+5000, n); i++ {
				if err := tx.CreateCharge(b.Context(), openCharge(i, created.Add(time.Duration(i)))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// runWriteBench runs op(0..b.N-1) on benchCallers goroutines and reports
// CPU and bytes written per op.
func runWriteBench(b *testing.B, op func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0, w0 := cpuTime(), writtenBytes()
	b.ResetTimer()
	for range benchCallers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				if err := op(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(writtenBytes()-w0)/float64(b.N), "wbytes/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writtenBytes is the process's wchar: bytes passed to write(2).
func writtenBytes() int64 {
	b, _ := os.ReadFile("/proc/self/io")
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
