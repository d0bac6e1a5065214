package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// Figure 2: CreateCharge. Both sides deduct against the same signed
// contracts of the same simulator, each with a fresh out_trade_no, 88.00
// HKD, the payer succeeding at once. papayd: gRPC CreateCharge -> papayd
// (PENDING record, signed call, audit record, answer record) -> simulator.
// Baseline: the wechatpay-go core.Client POSTing the same deduction body to
// the simulator directly. The TRANSACTION.SUCCESS the simulator sends after
// each deduction is dropped (fault injection) in both runs, so the figure
// compares the deduction path alone; figure 1 measures notifications.

// signAgreements creates n agreements the way a merchant does: presign
// through papayd, the user signs in the simulator, PAPAY.SIGN reaches
// papayd's /wechatpay/notify. It returns the contract ids once papayd
// records them SIGNED. Agreement k is presigned (and read back) through
// process f.pick(k).
func signAgreements(ctx context.Context, f fleet, sb *sandbox.Sandbox, prefix string, n, conc int) ([]string, error) {
	var clients []papayv1.AgreementServiceClient
	for _, p := range f {
		clients = append(clients, papayv1.NewAgreementServiceClient(p.conn))
	}
	ids := make([]string, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	for range conc {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= n {
					return
				}
				agreements := clients[k%len(clients)]
				pre, err := agreements.CreatePresignSession(ctx, &papayv1.CreatePresignSessionRequest{
					PlanId: planID, Openid: fmt.Sprintf("%s%022d", prefix, k), UserDisplayName: "Bench User"})
				if err != nil {
					fail(fmt.Errorf("presign %d: %w", k, err))
					return
				}
				c, err := sb.SignSession(pre.GetSessionId(), sandbox.User{})
				if err != nil {
					fail(fmt.Errorf("sign %d: %w", k, err))
					return
				}
				deadline := time.Now().Add(30 * time.Second)
				for {
					got, err := agreements.GetAgreement(ctx, &papayv1.GetAgreementRequest{ContractId: c.ContractID})
					if err == nil && got.GetAgreement().GetState() == papayv1.AgreementState_AGREEMENT_STATE_SIGNED {
						break
					}
					if time.Now().After(deadline) {
						fail(fmt.Errorf("agreement %s not SIGNED in papayd after 30 s (%v)", c.ContractID, err))
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
				ids[k] = c.ContractID
			}
		})
	}
	wg.Wait()
	return ids, firstErr
}

// dropSuccessNotifications makes the simulator drop every TRANSACTION.SUCCESS.
func dropSuccessNotifications(sb *sandbox.Sandbox) error {
	return sb.SetFaults(sandbox.Faults{Seed: 1, Rules: []sandbox.FaultRule{{
		Kind: sandbox.FaultDropNotification, EventType: sandbox.EventTransactionSuccess, Probability: 1}}})
}

// deductionBody is the body papayd sends for a deduction (same fields,
// same omissions).
type deductionBody struct {
	SPAppID              string `json:"sp_appid"`
	SubMchID             string `json:"sub_mchid"`
	SubAppID             string `json:"sub_appid,omitempty"`
	Description          string `json:"description"`
	NotifyURL            string `json:"notify_url"`
	OutTradeNo           string `json:"out_trade_no"`
	MerchantCategoryCode string `json:"merchant_category_code"`
	ContractID           string `json:"contract_id"`
	Amount               struct {
		Total    int64  `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
}

// chargeSeq numbers out_trade_no across warm-ups and runs: never reused.
var chargeSeq atomic.Int64

func nextOutTradeNo(prefix string) string {
	return fmt.Sprintf("%s%s%012d", prefix, time.Now().Format("060102"), chargeSeq.Add(1))
}

// rawDeduct returns the baseline call: a wechatpay-go core.Client with a
// pooled transport like papayd's (TLS to the simulator, trusting roots),
// verifying answers with the platform certificate.
func rawDeduct(ctx context.Context, creds *sandbox.Credentials, wxBase string, roots *x509.CertPool, notifyURL string, contracts []string, conc int) (call, error) {
	client, err := core.NewClient(ctx,
		option.WithMerchantCredential(creds.MchID, creds.MerchantSerial, creds.MerchantKey),
		option.WithWechatPayCertificate([]*x509.Certificate{creds.PlatformCert}),
		option.WithHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			MaxIdleConns: 64, MaxIdleConnsPerHost: max(32, conc), IdleConnTimeout: 90 * time.Second,
			TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}}}))
	if err != nil {
		return nil, err
	}
	url := wxBase + "/v3/global/papay/transactions"
	return func(ctx context.Context, i int) error {
		b := deductionBody{SPAppID: creds.SPAppID, SubMchID: creds.SubMchID, SubAppID: creds.SubAppID,
			Description: "FitClub-Central-Monthly", NotifyURL: notifyURL, OutTradeNo: nextOutTradeNo("RAW"),
			MerchantCategoryCode: "5999", ContractID: contracts[i%len(contracts)]}
		b.Amount.Total, b.Amount.Currency = seedAmount, "HKD"
		res, err := client.Post(ctx, url, b)
		if err != nil {
			return err
		}
		defer res.Response.Body.Close()
		raw, err := io.ReadAll(res.Response.Body)
		if err != nil {
			return err
		}
		var t sandbox.TransactionResource
		if err := json.Unmarshal(raw, &t); err != nil {
			return err
		}
		if t.TradeState != sandbox.TradeSuccess {
			return fmt.Errorf("%s: trade_state %s", b.OutTradeNo, t.TradeState)
		}
		return nil
	}, nil
}

// papaydCharge returns the call through papayd's gRPC API: it charges a
// new out_trade_no (prefix and a number) and returns it. Call i goes to
// process f.pick(i).
func papaydCharge(f fleet, contracts []string, prefix string) func(ctx context.Context, i int) (string, error) {
	var clients []papayv1.ChargeServiceClient
	for _, p := range f {
		clients = append(clients, papayv1.NewChargeServiceClient(p.conn))
	}
	return func(ctx context.Context, i int) (string, error) {
		no := nextOutTradeNo(prefix)
		resp, err := clients[i%len(clients)].CreateCharge(ctx, &papayv1.CreateChargeRequest{
			OutTradeNo: no, ContractId: contracts[i%len(contracts)],
			Amount: &papayv1.Amount{Total: seedAmount, Currency: "HKD"}, Description: "FitClub-Central-Monthly"})
		if err != nil {
			return no, err
		}
		if s := resp.GetCharge().GetState(); s != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED {
			return no, fmt.Errorf("%s: %v", no, s)
		}
		return no, nil
	}
}
