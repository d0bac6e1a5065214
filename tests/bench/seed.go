package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the read-only checks and the checkpoint

	"github.com/papayd/papayd/internal/service"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// Seeded records are derived from their index, so the loads can name any
// of them without keeping lists: key(i) is the same in the seeder and in
// the readers. Values have the shapes and lengths WeChat and papayd give
// them (28-character openids and contract ids, 28-digit transaction ids,
// papayd's 28-character out_contract_code).

// seedBase is the create time of record 0; record i is i*seedStep later.
var seedBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const seedStep = 250 * time.Millisecond

const (
	planID     = 4001
	seedAmount = 8800
)

// chinaTime is the +08:00 zone WeChat Pay writes times in.
var chinaTime = time.FixedZone("CST", 8*60*60)

func seedTime(i int) time.Time { return seedBase.Add(time.Duration(i) * seedStep) }

func digest(kind string, i int) [32]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(append([]byte(kind), b[:]...))
}

// Keys of seeded agreement i.
func seedContractID(i int) string {
	return "Wx" + seedTime(i).In(chinaTime).Format("20060102150405") + fmt.Sprintf("%012d", i)
}

func seedOutContractCode(i int) string {
	d := digest("occ", i)
	return "PA" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(d[:16])[:26]
}

func seedOpenID(i int) string {
	d := digest("openid", i)
	return "o" + base64.RawURLEncoding.EncodeToString(d[:])[:27]
}

// The two sets of seeded charges: settled ones that the reads and the
// scale figures read, and open ones that the callback figure settles.
const (
	settledCharges = "ORD"
	openCharges    = "CBK"
)

// Keys of seeded charge i of a set (against agreement i mod agreements).
func seedOutTradeNo(set string, i int) string {
	return set + seedTime(i).In(chinaTime).Format("20060102") + fmt.Sprintf("%010d", i)
}

func seedTransactionID(set string, i int) string {
	d := digest(set+"txn", i)
	tag := 1
	if set == openCharges {
		tag = 2
	}
	return fmt.Sprintf("42000%05d", binary.BigEndian.Uint32(d[:4])%100000) +
		seedTime(i).In(chinaTime).Format("20060102") + fmt.Sprintf("%d%09d", tag, i)
}

// seedAgreement is agreement i, SIGNED through the mini program.
func seedAgreement(creds *sandbox.Credentials, i int) service.Agreement {
	t := seedTime(i)
	return service.Agreement{
		OutContractCode: seedOutContractCode(i), ContractID: seedContractID(i), PlanID: planID,
		Merchant: service.Merchant{SubMchID: creds.SubMchID, SPAppID: creds.SPAppID, SubAppID: creds.SubAppID},
		OpenID:   seedOpenID(i), UserDisplayName: "Chan Tai Man", Channel: service.ChannelMiniProgram,
		State: service.AgreementSigned, SignedTime: t.Add(40 * time.Second),
		SessionExpireTime: t.Add(time.Hour),
		Session:           service.PresignResult{SessionID: t.In(chinaTime).Format("20060102") + fmt.Sprintf("%010d", i)},
		CreateTime:        t, UpdateTime: t.Add(40 * time.Second),
		NextCheckTime: time.Now().Add(24 * time.Hour), // the SIGNED re-check
	}
}

// seedCharge is charge i of set against agreement ai: SUCCEEDED, or, in
// the open set, PROCESSING (USERPAYING, waiting for TRANSACTION.SUCCESS).
func seedCharge(creds *sandbox.Credentials, set string, i, ai int) service.Charge {
	t := seedTime(i)
	c := service.Charge{
		OutTradeNo: seedOutTradeNo(set, i), TransactionID: seedTransactionID(set, i),
		ContractID: seedContractID(ai), OutContractCode: seedOutContractCode(ai), OpenID: seedOpenID(ai),
		Merchant:      service.Merchant{SubMchID: creds.SubMchID, SPAppID: creds.SPAppID, SubAppID: creds.SubAppID},
		Amount:        service.Money{Total: seedAmount, Currency: "HKD"},
		PayerCurrency: "HKD", ExchangeRate: service.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: 100000000},
		Description: "FitClub-Central-Monthly", MerchantCategoryCode: "5999", BankType: "CFT",
		CreateTime: t, UpdateTime: t.Add(300 * time.Millisecond),
	}
	if set == openCharges {
		c.TradeState, c.TradeStateDesc, c.State = "USERPAYING", "用户支付中", service.ChargeProcessing
		c.NextCheckTime = time.Now().Add(time.Hour) // not due while the bench runs
		return c
	}
	c.TradeState, c.TradeStateDesc, c.State = "SUCCESS", "支付成功", service.ChargeSucceeded
	c.PayerTotal, c.SuccessTime = seedAmount, t.Add(300*time.Millisecond)
	return c
}

// seedBatch is how many rows one transaction inserts: few commits (each
// an fsync, and for SQLite a WAL checkpoint) for 10^7 rows, while the
// rows of one transaction stay a few tens of MiB of WAL.
const seedBatch = 100000

// seedRows inserts rows [from, to) with insert, seedBatch per transaction,
// workers transactions at once.
func seedRows(ctx context.Context, store seeder, workers, from, to int, insert func(tx service.Tx, i int) error) error {
	var next atomic.Int64
	next.Store(int64(from))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				lo := int(next.Add(seedBatch) - seedBatch)
				if lo >= to || ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				hi := min(lo+seedBatch, to)
				if err := store.InTx(ctx, func(tx service.Tx) error {
					for i := lo; i < hi; i++ {
						if err := insert(tx, i); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// seedAgreements inserts agreements [from, to).
func seedAgreements(ctx context.Context, store seeder, workers int, creds *sandbox.Credentials, from, to int) error {
	return seedRows(ctx, store, workers, from, to, func(tx service.Tx, i int) error {
		return tx.CreateAgreement(ctx, seedAgreement(creds, i))
	})
}

// seedCharges inserts charges [from, to) of set, spread over agreements
// [0, agreements).
func seedCharges(ctx context.Context, store seeder, workers int, creds *sandbox.Credentials, set string, from, to, agreements int) error {
	return seedRows(ctx, store, workers, from, to, func(tx service.Tx, i int) error {
		return tx.CreateCharge(ctx, seedCharge(creds, set, i, i%agreements))
	})
}

// checkpoint folds the WAL of the (closed) database at path into the file
// and returns the bytes of the file and its WAL together.
func checkpoint(path string) (int64, error) {
	conn, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return 0, err
	}
	if _, err := conn.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		conn.Close()
		return 0, err
	}
	if err := conn.Close(); err != nil {
		return 0, err
	}
	var total int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			total += fi.Size()
		}
	}
	return total, nil
}

// openReadOnly opens papayd's database read-only (papayd may be running:
// WAL lets a reader in beside it).
func openReadOnly(path string) (*sql.DB, error) {
	return sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)&_pragma=query_only(1)")
}
