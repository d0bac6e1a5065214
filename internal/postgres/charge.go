package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
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
func scanCharge(row pgx.Row) (c service.Charge, id int64, err error) {
	var promotions *string
	err = row.Scan(&id,
		&c.OutTradeNo, &c.TransactionID, &c.ContractID, &c.OutContractCode, &c.OpenID,
		&c.SubMchID, &c.SPAppID, &c.SubAppID, &c.Amount.Total, &c.Amount.Currency, &c.PayerTotal, &c.PayerCurrency,
		&c.ExchangeRate.Type, &c.ExchangeRate.Rate, &c.Description, &c.Attach, &c.GoodsTag, &c.MerchantCategoryCode,
		&c.SceneInfo.DeviceID, &c.SceneInfo.DeviceIP, &c.BankType, &c.TradeState, &c.TradeStateDesc, &c.State,
		&c.FailureCode, &c.FailureMessage, timeDest{&c.SuccessTime}, &promotions,
		timeDest{&c.CreateTime}, timeDest{&c.UpdateTime}, timeDest{&c.NextCheckTime}, &c.CheckAttempts,
		&c.NotifyURL, timeDest{&c.LastSendTime}, &c.RefundedTotal)
	if err == nil {
		c.PromotionDetail, err = decodePromotions(promotions)
	}
	return c, id, err
}

// chargePageRow reads a row of a page of charges and its cursor.
func chargePageRow(row pgx.Row) (service.Charge, cursor, error) {
	c, id, err := scanCharge(row)
	return c, cursor{CreateTime: c.CreateTime.UnixNano(), ID: id}, err
}

// chargeArgs binds c to the named parameters of the insert.
func chargeArgs(c service.Charge) (pgx.NamedArgs, error) {
	promotions, err := encodePromotions(c.PromotionDetail)
	if err != nil {
		return nil, err
	}
	return pgx.NamedArgs{
		"out_trade_no": c.OutTradeNo, "transaction_id": c.TransactionID,
		"contract_id": c.ContractID, "out_contract_code": c.OutContractCode,
		"openid": c.OpenID, "sub_mchid": c.SubMchID, "sp_appid": c.SPAppID, "sub_appid": c.SubAppID,
		"amount_total": c.Amount.Total, "amount_currency": c.Amount.Currency,
		"payer_total": c.PayerTotal, "payer_currency": c.PayerCurrency,
		"exchange_rate_type": c.ExchangeRate.Type, "exchange_rate": c.ExchangeRate.Rate,
		"description": c.Description, "attach": c.Attach,
		"goods_tag": c.GoodsTag, "merchant_category_code": c.MerchantCategoryCode,
		"scene_device_id": c.SceneInfo.DeviceID, "scene_device_ip": c.SceneInfo.DeviceIP,
		"bank_type": c.BankType, "trade_state": c.TradeState,
		"trade_state_desc": c.TradeStateDesc, "state": string(c.State),
		"failure_code": c.FailureCode, "failure_message": c.FailureMessage,
		"success_time": timeArg(c.SuccessTime), "promotion_detail": promotions,
		"create_time": timeArg(c.CreateTime), "update_time": timeArg(c.UpdateTime),
		"next_check_time": timeArg(c.NextCheckTime), "check_attempts": c.CheckAttempts,
		"notify_url": c.NotifyURL, "last_send_time": timeArg(c.LastSendTime),
		"refunded_total": c.RefundedTotal,
	}, nil
}

const chargeByOutTradeNoSQL = `SELECT id, ` + chargeColumns + `
FROM charges WHERE out_trade_no = $1`

// ChargeByOutTradeNo returns the charge with the merchant's out_trade_no,
// or service.ErrNotFound.
func (r reader) ChargeByOutTradeNo(ctx context.Context, outTradeNo string) (service.Charge, error) {
	c, _, err := scanCharge(r.q.QueryRow(ctx, chargeByOutTradeNoSQL, outTradeNo))
	if err != nil {
		return service.Charge{}, fmt.Errorf("charge %s: %w", outTradeNo, notFoundOr(err))
	}
	return c, nil
}

// The second term repeats the partial unique index's condition, so the
// planner can use that index; it also makes the empty transaction id match
// nothing.
const chargeByTransactionIDSQL = `SELECT id, ` + chargeColumns + `
FROM charges WHERE transaction_id = $1 AND transaction_id <> ''`

// ChargeByTransactionID returns the charge with WeChat's transaction id, or
// service.ErrNotFound (always for the empty id).
func (r reader) ChargeByTransactionID(ctx context.Context, transactionID string) (service.Charge, error) {
	c, _, err := scanCharge(r.q.QueryRow(ctx, chargeByTransactionIDSQL, transactionID))
	if err != nil {
		return service.Charge{}, fmt.Errorf("charge with transaction id %s: %w", transactionID, notFoundOr(err))
	}
	return c, nil
}

const createChargeSQL = `INSERT INTO charges (` + chargeColumns + `) VALUES (
	@out_trade_no, @transaction_id, @contract_id, @out_contract_code, @openid,
	@sub_mchid, @sp_appid, @sub_appid, @amount_total, @amount_currency, @payer_total, @payer_currency,
	@exchange_rate_type, @exchange_rate, @description, @attach, @goods_tag, @merchant_category_code,
	@scene_device_id, @scene_device_ip, @bank_type, @trade_state, @trade_state_desc, @state,
	@failure_code, @failure_message, @success_time, @promotion_detail, @create_time, @update_time,
	@next_check_time, @check_attempts, @notify_url, @last_send_time, @refunded_total)`

// CreateCharge inserts c. It returns service.ErrConflict when its
// out_trade_no, or its non-empty transaction id, is already recorded.
// c.CreateTime must not be zero: it orders the pages of ListCharges.
func (t *tx) CreateCharge(ctx context.Context, c service.Charge) error {
	args, err := chargeArgs(c)
	if err == nil {
		_, err = t.q.Exec(ctx, createChargeSQL, args)
	}
	if err != nil {
		return fmt.Errorf("insert charge %s: %w", c.OutTradeNo, conflictOr(err))
	}
	return nil
}

// updateChargeSQL writes what a charge's life changes. The fields fixed
// when the charge is created (its contract, payer, merchant, amount, order
// details, notify URL and create_time) are not written, as in internal/db.
const updateChargeSQL = `UPDATE charges SET
	transaction_id = @transaction_id, payer_total = @payer_total, payer_currency = @payer_currency,
	exchange_rate_type = @exchange_rate_type, exchange_rate = @exchange_rate,
	bank_type = @bank_type, trade_state = @trade_state,
	trade_state_desc = @trade_state_desc, state = @state, failure_code = @failure_code,
	failure_message = @failure_message, success_time = @success_time,
	promotion_detail = @promotion_detail, update_time = @update_time,
	next_check_time = @next_check_time, check_attempts = @check_attempts,
	last_send_time = @last_send_time, refunded_total = @refunded_total
WHERE out_trade_no = @out_trade_no`

// updateChargeArgs are the arguments of updateChargeSQL.
func updateChargeArgs(c service.Charge) (pgx.NamedArgs, error) {
	promotions, err := encodePromotions(c.PromotionDetail)
	if err != nil {
		return nil, err
	}
	return pgx.NamedArgs{
		"out_trade_no": c.OutTradeNo, "transaction_id": c.TransactionID,
		"payer_total": c.PayerTotal, "payer_currency": c.PayerCurrency,
		"exchange_rate_type": c.ExchangeRate.Type, "exchange_rate": c.ExchangeRate.Rate,
		"bank_type": c.BankType, "trade_state": c.TradeState,
		"trade_state_desc": c.TradeStateDesc, "state": string(c.State),
		"failure_code": c.FailureCode, "failure_message": c.FailureMessage,
		"success_time": timeArg(c.SuccessTime), "promotion_detail": promotions,
		"update_time":     timeArg(c.UpdateTime),
		"next_check_time": timeArg(c.NextCheckTime), "check_attempts": c.CheckAttempts,
		"last_send_time": timeArg(c.LastSendTime), "refunded_total": c.RefundedTotal,
	}, nil
}

// UpdateCharge overwrites the fields a charge's life changes (state,
// WeChat's answer, failure, schedule, refunded total; see updateChargeSQL)
// of the charge with c.OutTradeNo; the fields fixed at creation keep their
// recorded values. It returns service.ErrNotFound when there is none and
// service.ErrConflict when c.TransactionID belongs to another charge.
func (t *tx) UpdateCharge(ctx context.Context, c service.Charge) error {
	args, err := updateChargeArgs(c)
	if err == nil {
		tag, xerr := t.q.Exec(ctx, updateChargeSQL, args)
		err = xerr
		if err == nil && tag.RowsAffected() == 0 {
			err = service.ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("update charge %s: %w", c.OutTradeNo, conflictOr(err))
	}
	return nil
}

// listChargesSQL starts one page: rows after the cursor in the order
// (create_time DESC, id DESC), which the charges_* indexes serve. The
// filter terms and listOrderSQL are appended by ListCharges.
const (
	listChargesSQL = `SELECT id, ` + chargeColumns + `
FROM charges WHERE (create_time, id) < (@after_time, @after_id)`
	listChargesByContractIDSQL      = ` AND contract_id = @contract_id`
	listChargesByOutContractCodeSQL = ` AND out_contract_code = @out_contract_code`
	listChargesByOpenIDSQL          = ` AND openid = @openid`
	listChargesByStateSQL           = ` AND state = @state`
	listChargesBySubMchIDSQL        = ` AND sub_mchid = @sub_mchid`
	listChargesFromSQL              = ` AND create_time >= @created_from`
)

// ListCharges returns one page of the charges f selects, newest first, and
// the token of the next page ("" on the last). The created time range is
// [f.CreatedFrom, f.CreatedTo); a zero bound does not filter. f.PageSize
// must be positive. A token this package (or internal/db) did not issue,
// or issued for another filter, is service.ErrInvalidPageToken.
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
	args := pgx.NamedArgs{}
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
			args[term.name] = term.value
		}
	}
	// A bound outside the range a time column holds (years 1677 to 2262)
	// either excludes every row or no row.
	if from := f.CreatedFrom; !from.IsZero() && from.After(minTime) {
		if from.After(maxTime) {
			return nil, "", nil
		}
		query += listChargesFromSQL
		args["created_from"] = from.UnixNano()
	}
	if to := f.CreatedTo; !to.IsZero() && !to.After(maxTime) {
		if !to.After(minTime) {
			return nil, "", nil
		}
		// create_time < to is (create_time, id) < (to, 0): fold it into the
		// page cursor, so the index is entered at the bound.
		if bound := (cursor{CreateTime: to.UnixNano()}); bound.CreateTime < after.CreateTime ||
			bound.CreateTime == after.CreateTime && bound.ID < after.ID {
			after = bound
		}
	}
	args["after_time"], args["after_id"] = after.CreateTime, after.ID
	query = pageQuery(query, f.SubMchIDs, args)

	cs, next, err := queryPage(ctx, r.q, query, args, f.PageSize, filter, chargePageRow)
	if err != nil {
		return nil, "", fmt.Errorf("list charges: %w", err)
	}
	return cs, next, nil
}

// promotionJSON is the stored form of a service.PromotionDetail, the same
// JSON as internal/db's (charge.go): the names are fixed here, so renaming
// a Go field does not orphan stored rows, and both stores write alike.
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

// encodePromotions returns the promotion_detail column of ps: a JSON
// array, nil (NULL) for none (nil or empty).
func encodePromotions(ps []service.PromotionDetail) (*string, error) {
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
	s := string(b)
	return &s, nil
}

// decodePromotions reads the promotion_detail column: NULL is nil, and so
// is an empty goods detail.
func decodePromotions(s *string) ([]service.PromotionDetail, error) {
	if s == nil {
		return nil, nil
	}
	var in []promotionJSON
	if err := json.Unmarshal([]byte(*s), &in); err != nil {
		return nil, fmt.Errorf("decode promotion detail: %w", err)
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
	return ps, nil
}
