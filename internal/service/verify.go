package service

import (
	"context"
	"errors"
	"fmt"
)

// VerifyReport is what Verify found.
type VerifyReport struct {
	Records    int             // records compared
	Mismatches []VerifyFinding // WeChat disagrees with the record
	Unverified []VerifyFinding // the query failed: not compared
}

// VerifyFinding is one record Verify reports.
type VerifyFinding struct {
	Kind   string // "charge", "agreement" or "refund"
	Key    string // out_trade_no, out_contract_code or out_refund_no
	Detail string
}

func (f VerifyFinding) String() string { return f.Kind + " " + f.Key + ": " + f.Detail }

// Records is what Verify reads: the store, or a read-only view of it.
type Records interface {
	AgreementReader
	ChargeReader
	RefundReader
}

// Verify compares every charge, agreement and refund in records with
// WeChat, one query each, and changes nothing. wait is called before every query (a
// rate limiter); its error stops Verify. A record that is still open
// (PENDING, PROCESSING, CLOSING charges; PENDING agreements) disagrees only
// when WeChat has already settled what papayd does not know yet: money
// taken, or a contract signed or ended, or a refund settled. A refund
// never sent is not asked about.
func Verify(ctx context.Context, records Records, wc WeChat, wait func(context.Context) error) (VerifyReport, error) {
	var r VerifyReport
	// check waits its turn, then compares one record by compare, which
	// queries WeChat and says how it disagrees ("": it does not).
	check := func(kind, key string, compare func() (disagreement string, queryErr error)) error {
		if err := wait(ctx); err != nil {
			return err
		}
		r.Records++
		d, err := compare()
		if _, ok := queried(err); !ok {
			r.Unverified = append(r.Unverified, VerifyFinding{kind, key, err.Error()})
		} else if d != "" {
			r.Mismatches = append(r.Mismatches, VerifyFinding{kind, key, d})
		}
		return nil
	}
	err := eachPage(func(token string) ([]Charge, string, error) {
		return records.ListCharges(ctx, ChargeFilter{PageSize: MaxPageSize, PageToken: token})
	}, func(c Charge) error {
		return check("charge", c.OutTradeNo, func() (string, error) {
			rt, err := wc.QueryTransaction(ctx, TransactionQuery{SubMchID: c.SubMchID, TransactionID: c.TransactionID, OutTradeNo: c.OutTradeNo})
			found, _ := queried(err)
			return chargeDisagreement(c, found, rt), err
		})
	})
	if err == nil {
		err = eachPage(func(token string) ([]Agreement, string, error) {
			return records.ListAgreements(ctx, AgreementFilter{PageSize: MaxPageSize, PageToken: token})
		}, func(a Agreement) error {
			return check("agreement", a.OutContractCode, func() (string, error) {
				q := ContractQuery{Merchant: a.Merchant, ContractID: a.ContractID}
				if q.ContractID == "" {
					q.OutContractCode, q.PlanID = a.OutContractCode, a.PlanID
				}
				rc, err := wc.QueryContract(ctx, q)
				found, _ := queried(err)
				return agreementDisagreement(a, found, rc), err
			})
		})
	}
	if err == nil {
		err = eachPage(func(token string) ([]Refund, string, error) {
			return records.ListRefunds(ctx, RefundFilter{PageSize: MaxPageSize, PageToken: token})
		}, func(rf Refund) error {
			if rf.Attempts == 0 && rf.RefundID == "" {
				return nil // never sent: WeChat cannot know it
			}
			return check("refund", rf.OutRefundNo, func() (string, error) {
				rr, err := wc.QueryRefund(ctx, RefundQuery{SubMchID: rf.SubMchID, RefundID: rf.RefundID, OutRefundNo: rf.OutRefundNo})
				found, _ := queried(err)
				return refundDisagreement(rf, found, rr), err
			})
		})
	}
	if err != nil {
		return r, fmt.Errorf("verify: %w", err)
	}
	return r, nil
}

// eachPage calls fn for every item of the pages list returns, from the
// first page ("" token) to the last.
func eachPage[T any](list func(token string) ([]T, string, error), fn func(T) error) error {
	for token := ""; ; {
		items, next, err := list(token)
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := fn(it); err != nil {
				return err
			}
		}
		if token = next; token == "" {
			return nil
		}
	}
}

// queried sorts a query's error: found when WeChat answered the object,
// ok false when the query failed (anything but an answer or "not found").
func queried(err error) (found, ok bool) {
	if err == nil {
		return true, true
	}
	var re *RemoteError
	if errors.As(err, &re) && re.NotFound() {
		return false, true
	}
	return false, false
}

// chargeDisagreement says how WeChat's order (found, rt) disagrees with c,
// or "".
func chargeDisagreement(c Charge, found bool, rt RemoteTransaction) string {
	if found {
		if m := c.mismatch(rt); m != "" {
			return m
		}
	}
	remote, known := stateOf(rt.TradeState)
	paid := found && remote == ChargeSucceeded
	switch {
	case paid && c.State != ChargeSucceeded:
		return fmt.Sprintf("recorded %s; WeChat says %s", c.State, rt.TradeState)
	case c.State == ChargeSucceeded && !found:
		return "recorded SUCCEEDED; WeChat does not know the order"
	case c.State == ChargeSucceeded && !paid:
		return "recorded SUCCEEDED; WeChat says " + rt.TradeState
	case c.State.Final() && found && known && remote == ChargeProcessing:
		return fmt.Sprintf("recorded %s; the order is open at WeChat (%s)", c.State, rt.TradeState)
	}
	return ""
}

// agreementDisagreement says how WeChat's contract (found, rc) disagrees
// with a, or "".
func agreementDisagreement(a Agreement, found bool, rc RemoteContract) string {
	switch {
	case !found && (a.State == AgreementSigned || a.State == AgreementTerminated):
		return fmt.Sprintf("recorded %s; WeChat does not know the contract", a.State)
	case !found:
		return ""
	case rc.State == string(AgreementSigned) && a.State != AgreementSigned,
		rc.State == string(AgreementTerminated) && a.State != AgreementTerminated:
		return fmt.Sprintf("recorded %s; WeChat says %s", a.State, rc.State)
	case a.ContractID != "" && rc.ContractID != "" && a.ContractID != rc.ContractID:
		return fmt.Sprintf("contract %s, recorded %s", rc.ContractID, a.ContractID)
	}
	return ""
}

// refundDisagreement says how WeChat's refund (found, rr) disagrees with
// rf, or "". An open refund (PENDING, PROCESSING, ABNORMAL) disagrees only
// when WeChat has settled it (SUCCESS or CLOSED); a FAILED one when WeChat
// holds it after all.
func refundDisagreement(rf Refund, found bool, rr RemoteRefund) string {
	if !found {
		if rf.RefundID != "" || rf.State == RefundSucceeded || rf.State == RefundClosed || rf.State == RefundAbnormal {
			return fmt.Sprintf("recorded %s; WeChat does not know the refund", rf.State)
		}
		return ""
	}
	if m := rf.mismatch(rr); m != "" {
		return m
	}
	remote, known := refundStateOf(rr.Status)
	switch {
	case !known:
		return ""
	case rf.State == RefundFailed:
		return "recorded FAILED; WeChat says " + rr.Status
	case rf.State.Final() && remote != rf.State:
		return fmt.Sprintf("recorded %s; WeChat says %s", rf.State, rr.Status)
	case !rf.State.Final() && remote.Final():
		return fmt.Sprintf("recorded %s; WeChat says %s", rf.State, rr.Status)
	}
	return ""
}
