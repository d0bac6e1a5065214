package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/papayd/papayd/internal/pagetoken"
	"github.com/papayd/papayd/internal/service"
)

// refundColumns are the columns of service.Refund, in the order scanRefund
// reads them after the id.
const refundColumns = `out_refund_no, refund_id, out_trade_no, transaction_id,
	sub_mchid, sp_appid, sub_appid, reason, amount_refund, amount_currency, charge_total, notify_url,
	payer_refund, payer_currency, exchange_rate_type, exchange_rate, status, channel, recv_account,
	fund_source, state, failure_code, failure_message, last_error, success_time, create_time,
	update_time, attempts, last_send_time, next_check_time, check_attempts`

// scanRefund reads a row of `id, ` + refundColumns.
func scanRefund(row rowScanner) (r service.Refund, id int64, err error) {
	err = row.Scan(&id,
		&r.OutRefundNo, &r.RefundID, &r.OutTradeNo, &r.TransactionID,
		&r.SubMchID, &r.SPAppID, &r.SubAppID, &r.Reason, &r.Amount.Total, &r.Amount.Currency, &r.ChargeTotal, &r.NotifyURL,
		&r.PayerRefund, &r.PayerCurrency, &r.ExchangeRate.Type, &r.ExchangeRate.Rate, &r.Status, &r.Channel, &r.RecvAccount,
		&r.FundSource, &r.State, &r.FailureCode, &r.FailureMessage, &r.LastError, timeDest{&r.SuccessTime}, timeDest{&r.CreateTime},
		timeDest{&r.UpdateTime}, &r.Attempts, timeDest{&r.LastSendTime}, timeDest{&r.NextCheckTime}, &r.Checks)
	return r, id, err
}

// refundPageRow reads a row of a page of refunds and its cursor.
func refundPageRow(row rowScanner) (service.Refund, cursor, error) {
	r, id, err := scanRefund(row)
	return r, cursor{CreateTime: r.CreateTime.UnixNano(), ID: id}, err
}

// refundArgs binds r to the named parameters of the insert and update.
func refundArgs(r service.Refund) []any {
	return []any{
		sql.Named("out_refund_no", r.OutRefundNo), sql.Named("refund_id", r.RefundID),
		sql.Named("out_trade_no", r.OutTradeNo), sql.Named("transaction_id", r.TransactionID),
		sql.Named("sub_mchid", r.SubMchID), sql.Named("sp_appid", r.SPAppID), sql.Named("sub_appid", r.SubAppID),
		sql.Named("reason", r.Reason),
		sql.Named("amount_refund", r.Amount.Total), sql.Named("amount_currency", r.Amount.Currency),
		sql.Named("charge_total", r.ChargeTotal), sql.Named("notify_url", r.NotifyURL),
		sql.Named("payer_refund", r.PayerRefund), sql.Named("payer_currency", r.PayerCurrency),
		sql.Named("exchange_rate_type", r.ExchangeRate.Type), sql.Named("exchange_rate", r.ExchangeRate.Rate),
		sql.Named("status", r.Status), sql.Named("channel", r.Channel),
		sql.Named("recv_account", r.RecvAccount), sql.Named("fund_source", r.FundSource),
		sql.Named("state", string(r.State)),
		sql.Named("failure_code", r.FailureCode), sql.Named("failure_message", r.FailureMessage),
		sql.Named("last_error", r.LastError), sql.Named("success_time", timeArg(r.SuccessTime)),
		sql.Named("create_time", timeArg(r.CreateTime)), sql.Named("update_time", timeArg(r.UpdateTime)),
		sql.Named("attempts", r.Attempts), sql.Named("last_send_time", timeArg(r.LastSendTime)),
		sql.Named("next_check_time", timeArg(r.NextCheckTime)), sql.Named("check_attempts", r.Checks),
	}
}

const refundByOutRefundNoSQL = `SELECT id, ` + refundColumns + `
FROM refunds WHERE out_refund_no = ?`

// RefundByOutRefundNo returns the refund with the merchant's
// out_refund_no, or service.ErrNotFound.
func (r reader) RefundByOutRefundNo(ctx context.Context, outRefundNo string) (service.Refund, error) {
	rf, _, err := r.refundByOutRefundNo(ctx, outRefundNo)
	return rf, err
}

// refundByOutRefundNo is RefundByOutRefundNo with the row's id.
func (r reader) refundByOutRefundNo(ctx context.Context, outRefundNo string) (service.Refund, int64, error) {
	rf, id, err := scanRefund(r.q.QueryRowContext(ctx, refundByOutRefundNoSQL, outRefundNo))
	if errors.Is(err, sql.ErrNoRows) {
		err = service.ErrNotFound
	}
	if err != nil {
		return service.Refund{}, 0, fmt.Errorf("refund %s: %w", outRefundNo, err)
	}
	return rf, id, nil
}

// The second term repeats the partial unique index's condition, so SQLite
// uses that index; it also makes the empty refund id match nothing.
const refundByRefundIDSQL = `SELECT id, ` + refundColumns + `
FROM refunds WHERE refund_id = ? AND refund_id <> ''`

// RefundByRefundID returns the refund with WeChat's refund id, or
// service.ErrNotFound (always for the empty id).
func (r reader) RefundByRefundID(ctx context.Context, refundID string) (service.Refund, error) {
	rf, _, err := scanRefund(r.q.QueryRowContext(ctx, refundByRefundIDSQL, refundID))
	if errors.Is(err, sql.ErrNoRows) {
		err = service.ErrNotFound
	}
	if err != nil {
		return service.Refund{}, fmt.Errorf("refund with refund id %s: %w", refundID, err)
	}
	return rf, nil
}

// refundsOfChargeSQL reads the refunds_out_trade_no index backwards.
const refundsOfChargeSQL = `SELECT id, ` + refundColumns + `
FROM refunds WHERE out_trade_no = ? ORDER BY create_time, id`

// RefundsOfCharge returns every refund of the charge outTradeNo, oldest
// first (ties in insertion order); none for an unknown charge. WeChat
// allows at most service.MaxRefundsPerCharge per charge, so the list is
// short.
func (r reader) RefundsOfCharge(ctx context.Context, outTradeNo string) ([]service.Refund, error) {
	rows, err := r.q.QueryContext(ctx, refundsOfChargeSQL, outTradeNo)
	if err != nil {
		return nil, fmt.Errorf("refunds of charge %s: %w", outTradeNo, err)
	}
	defer rows.Close()
	var out []service.Refund
	for rows.Next() {
		rf, _, err := scanRefund(rows)
		if err != nil {
			return nil, fmt.Errorf("refunds of charge %s: %w", outTradeNo, err)
		}
		out = append(out, rf)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("refunds of charge %s: %w", outTradeNo, err)
	}
	return out, nil
}

const createRefundSQL = `INSERT INTO refunds (` + refundColumns + `) VALUES (
	:out_refund_no, :refund_id, :out_trade_no, :transaction_id,
	:sub_mchid, :sp_appid, :sub_appid, :reason, :amount_refund, :amount_currency, :charge_total, :notify_url,
	:payer_refund, :payer_currency, :exchange_rate_type, :exchange_rate, :status, :channel, :recv_account,
	:fund_source, :state, :failure_code, :failure_message, :last_error, :success_time, :create_time,
	:update_time, :attempts, :last_send_time, :next_check_time, :check_attempts)`

// CreateRefund inserts r. It returns service.ErrConflict when its
// out_refund_no, or its non-empty refund id, is already recorded.
// r.CreateTime must not be zero: it orders the pages of ListRefunds.
func (t *tx) CreateRefund(ctx context.Context, r service.Refund) error {
	t.refund.forget()
	res, err := t.q.ExecContext(ctx, createRefundSQL, refundArgs(r)...)
	if err != nil {
		return fmt.Errorf("insert refund %s: %w", r.OutRefundNo, conflictOr(err))
	}
	// Every column was given: the row is r as stored (see CreateCharge).
	if id, err := res.LastInsertId(); err == nil {
		if stored, err := storedRefund(r); err == nil {
			t.refund.keep(stored, id)
		}
	}
	return nil
}

// refundLife are the columns a refund's life changes (WeChat's answer,
// state, failure, schedule), each with its stored value in a refund:
// UpdateRefund writes them. The fields fixed when the refund is created
// (its charge, merchant, reason, amount, charge total, notify URL and
// create_time) are not written again: they are in the list indexes, or
// are what every resend must send unchanged.
var refundLife = []column[service.Refund]{
	{"refund_id", func(r *service.Refund) (driver.Value, error) { return r.RefundID, nil }},
	{"payer_refund", func(r *service.Refund) (driver.Value, error) { return r.PayerRefund, nil }},
	{"payer_currency", func(r *service.Refund) (driver.Value, error) { return r.PayerCurrency, nil }},
	{"exchange_rate_type", func(r *service.Refund) (driver.Value, error) { return r.ExchangeRate.Type, nil }},
	{"exchange_rate", func(r *service.Refund) (driver.Value, error) { return r.ExchangeRate.Rate, nil }},
	{"status", func(r *service.Refund) (driver.Value, error) { return r.Status, nil }},
	{"channel", func(r *service.Refund) (driver.Value, error) { return r.Channel, nil }},
	{"recv_account", func(r *service.Refund) (driver.Value, error) { return r.RecvAccount, nil }},
	{"fund_source", func(r *service.Refund) (driver.Value, error) { return r.FundSource, nil }},
	{"state", func(r *service.Refund) (driver.Value, error) { return string(r.State), nil }},
	{"failure_code", func(r *service.Refund) (driver.Value, error) { return r.FailureCode, nil }},
	{"failure_message", func(r *service.Refund) (driver.Value, error) { return r.FailureMessage, nil }},
	{"last_error", func(r *service.Refund) (driver.Value, error) { return r.LastError, nil }},
	{"success_time", func(r *service.Refund) (driver.Value, error) { return timeArg(r.SuccessTime).Value() }},
	{"update_time", func(r *service.Refund) (driver.Value, error) { return timeArg(r.UpdateTime).Value() }},
	{"attempts", func(r *service.Refund) (driver.Value, error) { return int64(r.Attempts), nil }},
	{"last_send_time", func(r *service.Refund) (driver.Value, error) { return timeArg(r.LastSendTime).Value() }},
	{"next_check_time", func(r *service.Refund) (driver.Value, error) { return timeArg(r.NextCheckTime).Value() }},
	{"check_attempts", func(r *service.Refund) (driver.Value, error) { return int64(r.Checks), nil }},
}

// updateRefundSQL is the update of every refundLife column of a refund the function has
// not read, found by its out_refund_no.
var updateRefundSQL = updateAllQuery("refunds", "out_refund_no", refundLife)

// UpdateRefund overwrites the fields a refund's life changes (WeChat's
// answer, state, failure, schedule; see refundLife) of the refund
// with r.OutRefundNo; the fields fixed at creation keep their recorded
// values. It returns service.ErrNotFound when there is none and
// service.ErrConflict when r.RefundID belongs to another refund. When
// this function read the refund before, only the columns that changed
// are written (see update.go), and the row stored answers its next read.
func (t *tx) UpdateRefund(ctx context.Context, r service.Refund) error {
	prev, id, known := t.refund.get(r.OutRefundNo)
	t.refund.forget()
	var read *service.Refund
	if known {
		read = &prev
	}
	if err := updateRow(ctx, t.q, "refunds", "out_refund_no", r.OutRefundNo, refundLife, read, id, &r); err != nil {
		return fmt.Errorf("update refund %s: %w", r.OutRefundNo, conflictOr(err))
	}
	if known {
		if stored, err := updatedRefund(prev, r); err == nil {
			t.refund.keep(stored, id)
		}
	}
	return nil
}

// updatedRefund is the row an update stores for r over prev, the row as
// stored before it: prev's fields fixed at creation, r's others.
func updatedRefund(prev, r service.Refund) (service.Refund, error) {
	s := prev
	s.RefundID, s.PayerRefund, s.PayerCurrency = r.RefundID, r.PayerRefund, r.PayerCurrency
	s.ExchangeRate = service.ExchangeRate{Type: r.ExchangeRate.Type, Rate: r.ExchangeRate.Rate}
	s.Status, s.Channel, s.RecvAccount, s.FundSource, s.State = r.Status, r.Channel, r.RecvAccount, r.FundSource, r.State
	s.FailureCode, s.FailureMessage, s.LastError = r.FailureCode, r.FailureMessage, r.LastError
	s.SuccessTime, s.UpdateTime, s.Attempts, s.LastSendTime = r.SuccessTime, r.UpdateTime, r.Attempts, r.LastSendTime
	s.NextCheckTime, s.Checks = r.NextCheckTime, r.Checks
	return storedRefund(s)
}

// storedRefund is r as a read of its row returns it: each time through
// its column's Valuer and Scanner (UTC, nanoseconds); the other fields are
// stored as they are.
func storedRefund(r service.Refund) (service.Refund, error) {
	if err := asStored(timeField(&r.SuccessTime), timeField(&r.CreateTime), timeField(&r.UpdateTime),
		timeField(&r.LastSendTime), timeField(&r.NextCheckTime)); err != nil {
		return service.Refund{}, err
	}
	return r, nil
}

// RefundByOutRefundNo is reader.RefundByOutRefundNo, answered from the row
// this function last read or wrote when it is that refund's.
func (t *tx) RefundByOutRefundNo(ctx context.Context, outRefundNo string) (service.Refund, error) {
	return t.refund.read(outRefundNo, func() (service.Refund, int64, error) {
		return t.reader.refundByOutRefundNo(ctx, outRefundNo)
	})
}

// listRefundsSQL starts one page: rows after the cursor in the order
// (create_time DESC, id DESC), which the refunds_* indexes serve. The
// filter terms and listOrderSQL are appended by ListRefunds.
const (
	listRefundsSQL = `SELECT id, ` + refundColumns + `
FROM refunds WHERE (create_time, id) < (:after_time, :after_id)`
	listRefundsByOutTradeNoSQL = ` AND out_trade_no = :out_trade_no`
	listRefundsByStateSQL      = ` AND state = :state`
	listRefundsBySubMchIDSQL   = ` AND sub_mchid = :sub_mchid`
)

// ListRefunds returns one page of the refunds f selects, newest first, and
// the token of the next page ("" on the last). f.PageSize must be
// positive. A non-empty f.SubMchIDs limits the rows to those
// sub-merchants. A token this package did not issue, or issued for another
// filter, is service.ErrInvalidPageToken.
func (r reader) ListRefunds(ctx context.Context, f service.RefundFilter) ([]service.Refund, string, error) {
	var none bool
	f.SubMchID, f.SubMchIDs, none = subMchIDScope(f.SubMchID, f.SubMchIDs)
	filter := pagetoken.Refunds(f)
	after, err := pagetoken.Decode(f.PageToken, filter)
	if err != nil {
		return nil, "", fmt.Errorf("list refunds: %w", err)
	}
	if none {
		return nil, "", nil
	}
	query := listRefundsSQL
	args := []any{sql.Named("after_time", after.CreateTime), sql.Named("after_id", after.ID)}
	for _, term := range []struct {
		sql, name, value string
	}{
		{listRefundsByOutTradeNoSQL, "out_trade_no", f.OutTradeNo},
		{listRefundsByStateSQL, "state", string(f.State)},
		{listRefundsBySubMchIDSQL, "sub_mchid", f.SubMchID},
	} {
		if term.value != "" {
			query += term.sql
			args = append(args, sql.Named(term.name, term.value))
		}
	}
	query, args = pageQuery(query, f.SubMchIDs, args)

	rs, next, err := queryPage(ctx, r.q, query, args, f.PageSize, filter, refundPageRow)
	if err != nil {
		return nil, "", fmt.Errorf("list refunds: %w", err)
	}
	return rs, next, nil
}
