package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// Figure 2's floor: a CreateCharge cannot cost papayd less CPU than the
// RSA work WeChat Pay's protocol asks of it, one RSA-2048 PKCS#1 v1.5
// SHA-256 signature (the request's Authorization) and one verification
// (the answer's Wechatpay-Signature). The bench does exactly that work in
// its own process, with the merchant key papayd signs with, on the string
// a deduction request's signature covers, on one goroutine per core, and
// divides its process CPU time by the operations.

const floorName = "RSA-2048 sign + verify (floor)"

// floorDuration is how long each of the two floor measurements runs.
const floorDuration = 2 * time.Second

// deductionMessage is what the merchant's signature of a deduction covers:
// method, path, timestamp, nonce and body, each ended by a newline.
func deductionMessage(creds *sandbox.Credentials, contract string) ([]byte, error) {
	b := deductionBody{SPAppID: creds.SPAppID, SubMchID: creds.SubMchID, SubAppID: creds.SubAppID,
		Description: "FitClub-Central-Monthly", NotifyURL: "http://127.0.0.1:8080/wechatpay/notify",
		OutTradeNo: nextOutTradeNo("FLR"), MerchantCategoryCode: "5999", ContractID: contract}
	b.Amount.Total, b.Amount.Currency = seedAmount, "HKD"
	body, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "POST\n/v3/global/papay/transactions\n%d\n%s\n%s\n",
		time.Now().Unix(), "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", body), nil
}

// signVerifyFloor measures the floor once: the bench process's CPU per
// signature and verification of msg with key.
func signVerifyFloor(ctx context.Context, key *rsa.PrivateKey, msg []byte, d time.Duration) result {
	return measure(nil, nil, nil, func() result {
		return runLoad(ctx, floorName, runtime.NumCPU(), 1<<30, d, func(context.Context, int) error {
			h := sha256.Sum256(msg)
			sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
			if err != nil {
				return err
			}
			h = sha256.Sum256(msg)
			return rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, h[:], sig)
		})
	})
}

// mergeResults takes two measurements of one load as one: a baseline (the
// floor, the SDK parse) measured before and after papayd's load, or the
// rounds of a read. Counts, times and CPU add up, the peak RSS is the
// higher, and the profile is a's.
func mergeResults(a, b result) result {
	m := result{Name: a.Name, N: a.N + b.N, Errors: a.Errors + b.Errors, FirstErr: a.FirstErr,
		Elapsed: a.Elapsed + b.Elapsed, CPU: a.CPU + b.CPU, BenchCPU: a.BenchCPU + b.BenchCPU, PGCPU: a.PGCPU + b.PGCPU,
		PeakRSSKiB: max(a.PeakRSSKiB, b.PeakRSSKiB), Profile: a.Profile,
		CacheHits: a.CacheHits + b.CacheHits, CacheMisses: a.CacheMisses + b.CacheMisses}
	if m.FirstErr == "" {
		m.FirstErr = b.FirstErr
	}
	m.lat = append(append(m.lat, a.lat...), b.lat...)
	slices.Sort(m.lat)
	return m
}
