package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
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
func scanRefund(row pgx.Row) (r service.Refund, id int64, err error) {
	err = row.Scan(&id,
		&r.OutRefundNo, &r.RefundID, &r.OutTradeNo, &r.TransactionID,
		&r.SubMchID, &r.SPAppID, &r.SubAppID, &r.Reason, &r.Amount.Total, &r.Amount.Currency, &r.ChargeTotal, &r.NotifyURL,
		&r.PayerRefund, &r.PayerCurrency, &r.ExchangeRate.Type, &r.ExchangeRate.Rate, &r.Status, &r.Channel, &r.RecvAccount,
		&r.FundSource, &r.State, &r.FailureCode, &r.FailureMessage, &r.LastError, timeDest{&r.SuccessTime}, timeDest{&r.CreateTime},
		timeDest{&r.UpdateTime}, &r.Attempts, timeDest{&r.LastSendTime}, timeDest{&r.NextCheckTime}, &r.Checks)
	return r, id, err
}

// refundPageRow reads a row of a page of refunds and its cursor.
func refundPageRow(row pgx.Row) (service.Refund, cursor, error) {
	r, id, err := scanRefund(row)
	return r, cursor{CreateTime: r.CreateTime.UnixNano(), ID: id}, err
}

// refundArgs binds r to the named parameters of the insert.
func refundArgs(r service.Refund) pgx.NamedArgs {
	args := updateRefundArgs(r)
	args["out_trade_no"], args["transaction_id"] = r.OutTradeNo, r.TransactionID
	args["sub_mchid"], args["sp_appid"], args["sub_appid"] = r.SubMchID, r.SPAppID, r.SubAppID
	args["reason"], args["amount_refund"], args["amount_currency"] = r.Reason, r.Amount.Total, r.Amount.Currency
	args["charge_total"], args["notify_url"] = r.ChargeTotal, r.NotifyURL
	args["create_time"] = timeArg(r.CreateTime)
	return args
}

const refundByOutRefundNoSQL = `SELECT id, ` + refundColumns + `
FROM refunds WHERE out_refund_no = $1`

// RefundByOutRefundNo returns the refund with the merchant's
// out_refund_no, or service.ErrNotFound.
func (r reader) RefundByOutRefundNo(ctx context.Context, outRefundNo string) (service.Refund, error) {
	rf, _, err := scanRefund(r.q.QueryRow(ctx, refundByOutRefundNoSQL, outRefundNo))
	if err != nil {
		return service.Refund{}, fmt.Errorf("refund %s: %w", outRefundNo, notFoundOr(err))
	}
	return rf, nil
}

// The second term repeats the partial unique index's condition, so the
// planner can use that index; it also makes the empty refund id match
// nothing.
const refundByRefundIDSQL = `SELECT id, ` + refundColumns + `
FROM refunds WHERE refund_id = $1 AND refund_id <> ''`

// RefundByRefundID returns the refund with WeChat's refund id, or
// service.ErrNotFound (always for the empty id).
func (r reader) RefundByRefundID(ctx context.Context, refundID string) (service.Refund, error) {
	rf, _, err := scanRefund(r.q.QueryRow(ctx, refundByRefundIDSQL, refundID))
	if err != nil {
		return service.Refund{}, fmt.Errorf("refund with refund id %s: %w", refundID, notFoundOr(err))
	}
	return rf, nil
}

// refundsOfChargeSQL reads the refunds_out_trade_no index backwards.
const refundsOfChargeSQL = `SELECT id, ` + refundColumns + `
FROM refunds WHERE out_trade_no = $1 ORDER BY create_time, id`

// RefundsOfCharge returns every refund of the charge outTradeNo, oldest
// first (ties in insertion order); none for an unknown charge. WeChat
// allows at most service.MaxRefundsPerCharge per charge, so the list is
// short.
func (r reader) RefundsOfCharge(ctx context.Context, outTradeNo string) ([]service.Refund, error) {
	rs, err := queryRows(ctx, r.q, refundsOfChargeSQL, []any{outTradeNo}, scanRefund)
	if err != nil {
		return nil, fmt.Errorf("refunds of charge %s: %w", outTradeNo, err)
	}
	return rs, nil
}

// queryRows runs query with args and reads every row with scan.
func queryRows[T any](ctx context.Context, q querier, query string, args []any,
	scan func(pgx.Row) (T, int64, error)) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, _, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

const createRefundSQL = `INSERT INTO refunds (` + refundColumns + `) VALUES (
	@out_refund_no, @refund_id, @out_trade_no, @transaction_id,
	@sub_mchid, @sp_appid, @sub_appid, @reason, @amount_refund, @amount_currency, @charge_total, @notify_url,
	@payer_refund, @payer_currency, @exchange_rate_type, @exchange_rate, @status, @channel, @recv_account,
	@fund_source, @state, @failure_code, @failure_message, @last_error, @success_time, @create_time,
	@update_time, @attempts, @last_send_time, @next_check_time, @check_attempts)`

// CreateRefund inserts r. It returns service.ErrConflict when its
// out_refund_no, or its non-empty refund id, is already recorded.
// r.CreateTime must not be zero: it orders the pages of ListRefunds.
func (t *tx) CreateRefund(ctx context.Context, r service.Refund) error {
	if _, err := t.q.Exec(ctx, createRefundSQL, refundArgs(r)); err != nil {
		return fmt.Errorf("insert refund %s: %w", r.OutRefundNo, conflictOr(err))
	}
	return nil
}

// updateRefundSQL writes what a refund's life changes. The fields fixed
// when the refund is created (its charge, merchant, reason, amount, charge
// total, notify URL and create_time) are not written again, as in
// internal/db: they are in the list indexes, or are what every resend must
// send unchanged.
const updateRefundSQL = `UPDATE refunds SET
	refund_id = @refund_id, payer_refund = @payer_refund, payer_currency = @payer_currency,
	exchange_rate_type = @exchange_rate_type, exchange_rate = @exchange_rate,
	status = @status, channel = @channel, recv_account = @recv_account, fund_source = @fund_source,
	state = @state, failure_code = @failure_code, failure_message = @failure_message,
	last_error = @last_error, success_time = @success_time, update_time = @update_time,
	attempts = @attempts, last_send_time = @last_send_time,
	next_check_time = @next_check_time, check_attempts = @check_attempts
WHERE out_refund_no = @out_refund_no`

// updateRefundArgs are the arguments of updateRefundSQL.
func updateRefundArgs(r service.Refund) pgx.NamedArgs {
	return pgx.NamedArgs{
		"out_refund_no": r.OutRefundNo, "refund_id": r.RefundID,
		"payer_refund": r.PayerRefund, "payer_currency": r.PayerCurrency,
		"exchange_rate_type": r.ExchangeRate.Type, "exchange_rate": r.ExchangeRate.Rate,
		"status": r.Status, "channel": r.Channel, "recv_account": r.RecvAccount,
		"fund_source": r.FundSource, "state": string(r.State),
		"failure_code": r.FailureCode, "failure_message": r.FailureMessage,
		"last_error": r.LastError, "success_time": timeArg(r.SuccessTime),
		"update_time": timeArg(r.UpdateTime), "attempts": r.Attempts,
		"last_send_time": timeArg(r.LastSendTime), "next_check_time": timeArg(r.NextCheckTime),
		"check_attempts": r.Checks,
	}
}

// UpdateRefund overwrites the fields a refund's life changes (WeChat's
// answer, state, failure, schedule; see updateRefundSQL) of the refund
// with r.OutRefundNo; the fields fixed at creation keep their recorded
// values. It returns service.ErrNotFound when there is none and
// service.ErrConflict when r.RefundID belongs to another refund.
func (t *tx) UpdateRefund(ctx context.Context, r service.Refund) error {
	tag, err := t.q.Exec(ctx, updateRefundSQL, updateRefundArgs(r))
	if err == nil && tag.RowsAffected() == 0 {
		err = service.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("update refund %s: %w", r.OutRefundNo, conflictOr(err))
	}
	return nil
}

// listRefundsSQL starts one page: rows after the cursor in the order
// (create_time DESC, id DESC), which the refunds_* indexes serve. The
// filter terms and listOrderSQL are appended by ListRefunds.
const (
	listRefundsSQL = `SELECT id, ` + refundColumns + `
FROM refunds WHERE (create_time, id) < (@after_time, @after_id)`
	listRefundsByOutTradeNoSQL = ` AND out_trade_no = @out_trade_no`
	listRefundsByStateSQL      = ` AND state = @state`
	listRefundsBySubMchIDSQL   = ` AND sub_mchid = @sub_mchid`
)

// ListRefunds returns one page of the refunds f selects, newest first, and
// the token of the next page ("" on the last). f.PageSize must be
// positive. A non-empty f.SubMchIDs limits the rows to those
// sub-merchants. A token this package (or internal/db) did not issue, or
// issued for another filter, is service.ErrInvalidPageToken.
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
	args := pgx.NamedArgs{"after_time": after.CreateTime, "after_id": after.ID}
	for _, term := range []struct {
		sql, name, value string
	}{
		{listRefundsByOutTradeNoSQL, "out_trade_no", f.OutTradeNo},
		{listRefundsByStateSQL, "state", string(f.State)},
		{listRefundsBySubMchIDSQL, "sub_mchid", f.SubMchID},
	} {
		if term.value != "" {
			query += term.sql
			args[term.name] = term.value
		}
	}
	query = pageQuery(query, f.SubMchIDs, args)

	rs, next, err := queryPage(ctx, r.q, query, args, f.PageSize, filter, refundPageRow)
	if err != nil {
		return nil, "", fmt.Errorf("list refunds: %w", err)
	}
	return rs, next, nil
}
