package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/papayd/papayd/internal/pagetoken"
	"github.com/papayd/papayd/internal/service"
)

// chargeColumns are the columns of service.Charge, in the order scanCharge
// reads them after the id.
const chargeColumns = `out_trade_no, transaction_id, contract_id, out_contract_code, openid,
	sub_mchid, sp_appid, sub_appid, amount_total, amount_currency, payer_total, payer_currency,
	exchange_rate_type, exchange_rate, description, attach, goods_tag, merchant_category_code,
	scene_device_id, scene_device_ip, bank_type, trade_state, trade_state_desc, state,
	failure_code, failure_message, success_time, promotion_detail, create_time, update_time,
	next_check_time, check_attempts, notify_url, last_send_time, refunded_total`

// scanCharge reads a row of `id, ` + chargeColumns.
func scanCharge(row rowScanner) (c service.Charge, id int64, err error) {
	err = row.Scan(&id,
		&c.OutTradeNo, &c.TransactionID, &c.ContractID, &c.OutContractCode, &c.OpenID,
		&c.SubMchID, &c.SPAppID, &c.SubAppID, &c.Amount.Total, &c.Amount.Currency, &c.PayerTotal, &c.PayerCurrency,
		&c.ExchangeRate.Type, &c.ExchangeRate.Rate, &c.Description, &c.Attach, &c.GoodsTag, &c.MerchantCategoryCode,
		&c.SceneInfo.DeviceID, &c.SceneInfo.DeviceIP, &c.BankType, &c.TradeState, &c.TradeStateDesc, &c.State,
		&c.FailureCode, &c.FailureMessage, timeDest{&c.SuccessTime}, promotionsDest{&c.PromotionDetail},
		timeDest{&c.CreateTime}, timeDest{&c.UpdateTime}, timeDest{&c.NextCheckTime}, &c.CheckAttempts,
		&c.NotifyURL, timeDest{&c.LastSendTime}, &c.RefundedTotal)
	return c, id, err
}

// chargePageRow reads a row of a page of charges and its cursor.
func chargePageRow(row rowScanner) (service.Charge, cursor, error) {
	c, id, err := scanCharge(row)
	return c, cursor{CreateTime: c.CreateTime.UnixNano(), ID: id}, err
}

// chargeArgs binds c to the named parameters of the insert and update.
func chargeArgs(c service.Charge) []any {
	return []any{
		sql.Named("out_trade_no", c.OutTradeNo), sql.Named("transaction_id", c.TransactionID),
		sql.Named("contract_id", c.ContractID), sql.Named("out_contract_code", c.OutContractCode),
		sql.Named("openid", c.OpenID), sql.Named("sub_mchid", c.SubMchID),
		sql.Named("sp_appid", c.SPAppID), sql.Named("sub_appid", c.SubAppID),
		sql.Named("amount_total", c.Amount.Total), sql.Named("amount_currency", c.Amount.Currency),
		sql.Named("payer_total", c.PayerTotal), sql.Named("payer_currency", c.PayerCurrency),
		sql.Named("exchange_rate_type", c.ExchangeRate.Type), sql.Named("exchange_rate", c.ExchangeRate.Rate),
		sql.Named("description", c.Description), sql.Named("attach", c.Attach),
		sql.Named("goods_tag", c.GoodsTag), sql.Named("merchant_category_code", c.MerchantCategoryCode),
		sql.Named("scene_device_id", c.SceneInfo.DeviceID), sql.Named("scene_device_ip", c.SceneInfo.DeviceIP),
		sql.Named("bank_type", c.BankType), sql.Named("trade_state", c.TradeState),
		sql.Named("trade_state_desc", c.TradeStateDesc), sql.Named("state", string(c.State)),
		sql.Named("failure_code", c.FailureCode), sql.Named("failure_message", c.FailureMessage),
		sql.Named("success_time", timeArg(c.SuccessTime)), sql.Named("promotion_detail", promotionsArg(c.PromotionDetail)),
		sql.Named("create_time", timeArg(c.CreateTime)), sql.Named("update_time", timeArg(c.UpdateTime)),
		sql.Named("next_check_time", timeArg(c.NextCheckTime)), sql.Named("check_attempts", c.CheckAttempts),
		sql.Named("notify_url", c.NotifyURL), sql.Named("last_send_time", timeArg(c.LastSendTime)),
		sql.Named("refunded_total", c.RefundedTotal),
	}
}

const chargeByOutTradeNoSQL = `SELECT id, ` + chargeColumns + `
FROM charges WHERE out_trade_no = ?`

// ChargeByOutTradeNo returns the charge with the merchant's out_trade_no,
// or service.ErrNotFound.
func (r reader) ChargeByOutTradeNo(ctx context.Context, outTradeNo string) (service.Charge, error) {
	c, _, err := r.chargeByOutTradeNo(ctx, outTradeNo)
	return c, err
}

// chargeByOutTradeNo is ChargeByOutTradeNo with the row's id.
func (r reader) chargeByOutTradeNo(ctx context.Context, outTradeNo string) (service.Charge, int64, error) {
	c, id, err := scanCharge(r.q.QueryRowContext(ctx, chargeByOutTradeNoSQL, outTradeNo))
	if errors.Is(err, sql.ErrNoRows) {
		err = service.ErrNotFound
	}
	if err != nil {
		return service.Charge{}, 0, fmt.Errorf("charge %s: %w", outTradeNo, err)
	}
	return c, id, nil
}

// The second term repeats the partial unique index's condition, so SQLite
// uses that index; it also makes the empty transaction id match nothing.
const chargeByTransactionIDSQL = `SELECT id, ` + chargeColumns + `
FROM charges WHERE transaction_id = ? AND transaction_id <> ''`

// ChargeByTransactionID returns the charge with WeChat's transaction id, or
// service.ErrNotFound (always for the empty id).
func (r reader) ChargeByTransactionID(ctx context.Context, transactionID string) (service.Charge, error) {
	c, _, err := scanCharge(r.q.QueryRowContext(ctx, chargeByTransactionIDSQL, transactionID))
	if errors.Is(err, sql.ErrNoRows) {
		err = service.ErrNotFound
	}
	if err != nil {
		return service.Charge{}, fmt.Errorf("charge with transaction id %s: %w", transactionID, err)
	}
	return c, nil
}

const createChargeSQL = `INSERT INTO charges (` + chargeColumns + `) VALUES (
	:out_trade_no, :transaction_id, :contract_id, :out_contract_code, :openid,
	:sub_mchid, :sp_appid, :sub_appid, :amount_total, :amount_currency, :payer_total, :payer_currency,
	:exchange_rate_type, :exchange_rate, :description, :attach, :goods_tag, :merchant_category_code,
	:scene_device_id, :scene_device_ip, :bank_type, :trade_state, :trade_state_desc, :state,
	:failure_code, :failure_message, :success_time, :promotion_detail, :create_time, :update_time,
	:next_check_time, :check_attempts, :notify_url, :last_send_time, :refunded_total)`

// CreateCharge inserts c. It returns service.ErrConflict when its
// out_trade_no, or its non-empty transaction id, is already recorded.
// c.CreateTime must not be zero: it orders the pages of ListCharges.
func (t *tx) CreateCharge(ctx context.Context, c service.Charge) error {
	t.touchCharge(c.OutTradeNo)
	t.charge.forget()
	res, err := t.q.ExecContext(ctx, createChargeSQL, chargeArgs(c)...)
	if err != nil {
		return fmt.Errorf("insert charge %s: %w", c.OutTradeNo, conflictOr(err))
	}
	// The row inserted answers the function's next read of the charge (the
	// outbox reads it back at once): every column was given, so it is c as
	// stored.
	if id, err := res.LastInsertId(); err == nil {
		if stored, err := storedCharge(c); err == nil {
			t.charge.keep(stored, id)
		}
	}
	return nil
}

// chargeLife are the columns a charge's life changes, each with its stored
// value in a charge: UpdateCharge writes them. The fields fixed when the
// charge is created (its contract, payer, merchant, amount, order details
// and create_time) are not written again: SQLite rewrites the entry of
// every index a SET column belongs to, changed or not, and those fields
// are in the five list indexes.
var chargeLife = []column[service.Charge]{
	{"transaction_id", func(c *service.Charge) (driver.Value, error) { return c.TransactionID, nil }},
	{"payer_total", func(c *service.Charge) (driver.Value, error) { return c.PayerTotal, nil }},
	{"payer_currency", func(c *service.Charge) (driver.Value, error) { return c.PayerCurrency, nil }},
	{"exchange_rate_type", func(c *service.Charge) (driver.Value, error) { return c.ExchangeRate.Type, nil }},
	{"exchange_rate", func(c *service.Charge) (driver.Value, error) { return c.ExchangeRate.Rate, nil }},
	{"bank_type", func(c *service.Charge) (driver.Value, error) { return c.BankType, nil }},
	{"trade_state", func(c *service.Charge) (driver.Value, error) { return c.TradeState, nil }},
	{"trade_state_desc", func(c *service.Charge) (driver.Value, error) { return c.TradeStateDesc, nil }},
	{"state", func(c *service.Charge) (driver.Value, error) { return string(c.State), nil }},
	{"failure_code", func(c *service.Charge) (driver.Value, error) { return c.FailureCode, nil }},
	{"failure_message", func(c *service.Charge) (driver.Value, error) { return c.FailureMessage, nil }},
	{"success_time", func(c *service.Charge) (driver.Value, error) { return timeArg(c.SuccessTime).Value() }},
	{"promotion_detail", func(c *service.Charge) (driver.Value, error) { return promotionsArg(c.PromotionDetail).Value() }},
	{"update_time", func(c *service.Charge) (driver.Value, error) { return timeArg(c.UpdateTime).Value() }},
	{"next_check_time", func(c *service.Charge) (driver.Value, error) { return timeArg(c.NextCheckTime).Value() }},
	{"check_attempts", func(c *service.Charge) (driver.Value, error) { return int64(c.CheckAttempts), nil }},
	{"last_send_time", func(c *service.Charge) (driver.Value, error) { return timeArg(c.LastSendTime).Value() }},
	{"refunded_total", func(c *service.Charge) (driver.Value, error) { return c.RefundedTotal, nil }},
}

// updateChargeSQL is the update of every chargeLife column of a charge the function has
// not read, found by its out_trade_no.
var updateChargeSQL = updateAllQuery("charges", "out_trade_no", chargeLife)

// UpdateCharge overwrites the fields a charge's life changes (state, WeChat's
// answer, failure, schedule, refunded total; see chargeLife) of the charge
// with c.OutTradeNo; the fields fixed at creation keep their recorded
// values. It returns service.ErrNotFound when there is none and
// service.ErrConflict when c.TransactionID belongs to another charge. When
// this function read the charge before, the row the update stored answers
// its next read.
func (t *tx) UpdateCharge(ctx context.Context, c service.Charge) error {
	t.touchCharge(c.OutTradeNo)
	prev, id, known := t.charge.get(c.OutTradeNo)
	t.charge.forget()
	var read *service.Charge
	if known {
		read = &prev
	}
	if err := updateRow(ctx, t.q, "charges", "out_trade_no", c.OutTradeNo, chargeLife, read, id, &c); err != nil {
		return fmt.Errorf("update charge %s: %w", c.OutTradeNo, conflictOr(err))
	}
	if known {
		if stored, err := updatedCharge(prev, c); err == nil {
			t.charge.keep(stored, id)
		}
	}
	return nil
}

// updatedCharge is the row an update stores for c over prev, the row
// as stored before it: prev's fields fixed at creation, and c's others as
// a read of the row returns them.
func updatedCharge(prev, c service.Charge) (service.Charge, error) {
	s := prev
	s.TransactionID, s.PayerTotal, s.PayerCurrency = c.TransactionID, c.PayerTotal, c.PayerCurrency
	s.ExchangeRate = service.ExchangeRate{Type: c.ExchangeRate.Type, Rate: c.ExchangeRate.Rate}
	s.BankType, s.TradeState, s.TradeStateDesc, s.State = c.BankType, c.TradeState, c.TradeStateDesc, c.State
	s.FailureCode, s.FailureMessage = c.FailureCode, c.FailureMessage
	s.CheckAttempts, s.RefundedTotal = c.CheckAttempts, c.RefundedTotal
	s.SuccessTime, s.PromotionDetail, s.UpdateTime = c.SuccessTime, c.PromotionDetail, c.UpdateTime
	s.NextCheckTime, s.LastSendTime = c.NextCheckTime, c.LastSendTime
	return storedCharge(s)
}

// storedCharge is c as a read of its row returns it: each time and the
// promotion detail through its column's Valuer and Scanner, as the
// database round trip does (UTC, nil for none); the other fields are
// stored as they are.
func storedCharge(c service.Charge) (service.Charge, error) {
	if err := asStored(timeField(&c.SuccessTime), storedField{promotionsArg(c.PromotionDetail), promotionsDest{&c.PromotionDetail}},
		timeField(&c.CreateTime), timeField(&c.UpdateTime), timeField(&c.NextCheckTime), timeField(&c.LastSendTime)); err != nil {
		return service.Charge{}, err
	}
	return c, nil
}

// ChargeByOutTradeNo is reader.ChargeByOutTradeNo, answered from the row
// this function last read or wrote when it is that charge's.
func (t *tx) ChargeByOutTradeNo(ctx context.Context, outTradeNo string) (service.Charge, error) {
	return t.charge.read(outTradeNo, func() (service.Charge, int64, error) {
		return t.reader.chargeByOutTradeNo(ctx, outTradeNo)
	})
}

// listChargesSQL starts one page: rows after the cursor in the order
// (create_time DESC, id DESC), which the charges_* indexes serve. The
// filter terms and listOrderSQL are appended by ListCharges.
const (
	listChargesSQL = `SELECT id, ` + chargeColumns + `
FROM charges WHERE (create_time, id) < (:after_time, :after_id)`
	listChargesByContractIDSQL      = ` AND contract_id = :contract_id`
	listChargesByOutContractCodeSQL = ` AND out_contract_code = :out_contract_code`
	listChargesByOpenIDSQL          = ` AND openid = :openid`
	listChargesByStateSQL           = ` AND state = :state`
	listChargesBySubMchIDSQL        = ` AND sub_mchid = :sub_mchid`
	listChargesFromSQL              = ` AND create_time >= :created_from`
)

// ListCharges returns one page of the charges f selects, newest first, and
// the token of the next page ("" on the last). The created time range is
// [f.CreatedFrom, f.CreatedTo); a zero bound does not filter. f.PageSize
// must be positive. A token this package did not issue, or issued for
// another filter, is service.ErrInvalidPageToken.
func (r reader) ListCharges(ctx context.Context, f service.ChargeFilter) ([]service.Charge, string, error) {
	var none bool
	f.SubMchID, f.SubMchIDs, none = subMchIDScope(f.SubMchID, f.SubMchIDs)
	filter := pagetoken.Charges(f)
	after, err := pagetoken.Decode(f.PageToken, filter)
	if err != nil {
		return nil, "", fmt.Errorf("list charges: %w", err)
	}
	if none {
		return nil, "", nil
	}
	query := listChargesSQL
	args := []any{sql.Named("after_time", after.CreateTime), sql.Named("after_id", after.ID)}
	for _, term := range []struct {
		sql, name, value string
	}{
		{listChargesByContractIDSQL, "contract_id", f.ContractID},
		{listChargesByOutContractCodeSQL, "out_contract_code", f.OutContractCode},
		{listChargesByOpenIDSQL, "openid", f.OpenID},
		{listChargesByStateSQL, "state", string(f.State)},
		{listChargesBySubMchIDSQL, "sub_mchid", f.SubMchID},
	} {
		if term.value != "" {
			query += term.sql
			args = append(args, sql.Named(term.name, term.value))
		}
	}
	// A bound outside the range a time column holds (years 1677 to 2262)
	// either excludes every row or no row.
	if from := f.CreatedFrom; !from.IsZero() && from.After(minTime) {
		if from.After(maxTime) {
			return nil, "", nil
		}
		query += listChargesFromSQL
		args = append(args, sql.Named("created_from", from.UnixNano()))
	}
	if to := f.CreatedTo; !to.IsZero() && !to.After(maxTime) {
		if !to.After(minTime) {
			return nil, "", nil
		}
		// create_time < to is (create_time, id) < (to, 0): fold it into the
		// page cursor, so the index is entered at the bound. As a second
		// range condition SQLite would only filter with it, walking the
		// index from the newest row down: O(n) on a large table.
		if bound := (cursor{CreateTime: to.UnixNano()}); bound.CreateTime < after.CreateTime ||
			bound.CreateTime == after.CreateTime && bound.ID < after.ID {
			after = bound
		}
	}
	args[0], args[1] = sql.Named("after_time", after.CreateTime), sql.Named("after_id", after.ID)
	query, args = pageQuery(query, f.SubMchIDs, args)

	cs, next, err := queryPage(ctx, r.q, query, args, f.PageSize, filter, chargePageRow)
	if err != nil {
		return nil, "", fmt.Errorf("list charges: %w", err)
	}
	return cs, next, nil
}

// promotionJSON is the stored form of a service.PromotionDetail: the JSON
// names are fixed here, so renaming a Go field does not orphan stored rows.
type promotionJSON struct {
	PromotionID              string      `json:"promotion_id"`
	Name                     string      `json:"name"`
	Scope                    string      `json:"scope"`
	Type                     string      `json:"type"`
	Amount                   int64       `json:"amount"`
	Currency                 string      `json:"currency"`
	ActivityID               string      `json:"activity_id"`
	WxpayContributeAmount    int64       `json:"wxpay_contribute_amount"`
	MerchantContributeAmount int64       `json:"merchant_contribute_amount"`
	OtherContributeAmount    int64       `json:"other_contribute_amount"`
	GoodsDetail              []goodsJSON `json:"goods_detail,omitempty"`
}

// goodsJSON is the stored form of a service.GoodsDetail. It has the same
// fields, so the two convert into each other, and a field added to one
// and not the other fails to compile.
type goodsJSON struct {
	GoodsID        string `json:"goods_id"`
	GoodsRemark    string `json:"goods_remark"`
	DiscountAmount int64  `json:"discount_amount"`
	Quantity       int64  `json:"quantity"`
	Price          int64  `json:"price"`
}

// promotionsArg binds promotion details to the promotion_detail column: a
// JSON array, NULL for none (nil or empty).
type promotionsArg []service.PromotionDetail

// Value implements driver.Valuer.
func (ps promotionsArg) Value() (driver.Value, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	out := make([]promotionJSON, len(ps))
	for i, p := range ps {
		out[i] = promotionJSON{
			PromotionID: p.PromotionID, Name: p.Name, Scope: p.Scope, Type: p.Type,
			Amount: p.Amount, Currency: p.Currency, ActivityID: p.ActivityID,
			WxpayContributeAmount:    p.WxpayContributeAmount,
			MerchantContributeAmount: p.MerchantContributeAmount,
			OtherContributeAmount:    p.OtherContributeAmount,
		}
		for _, g := range p.GoodsDetail {
			out[i].GoodsDetail = append(out[i].GoodsDetail, goodsJSON(g))
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode promotion detail: %w", err)
	}
	return string(b), nil
}

// promotionsDest scans the promotion_detail column into *ps: NULL is nil,
// and so is an empty goods detail.
type promotionsDest struct{ ps *[]service.PromotionDetail }

// Scan implements sql.Scanner.
func (d promotionsDest) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*d.ps = nil
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("promotion detail column holds %T, want TEXT", src)
	}
	var in []promotionJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("decode promotion detail: %w", err)
	}
	var ps []service.PromotionDetail
	for _, p := range in {
		out := service.PromotionDetail{
			PromotionID: p.PromotionID, Name: p.Name, Scope: p.Scope, Type: p.Type,
			Amount: p.Amount, Currency: p.Currency, ActivityID: p.ActivityID,
			WxpayContributeAmount:    p.WxpayContributeAmount,
			MerchantContributeAmount: p.MerchantContributeAmount,
			OtherContributeAmount:    p.OtherContributeAmount,
		}
		for _, g := range p.GoodsDetail {
			out.GoodsDetail = append(out.GoodsDetail, service.GoodsDetail(g))
		}
		ps = append(ps, out)
	}
	*d.ps = ps
	return nil
}
