package sandbox

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// PayerBehavior scripts what happens when a contract's user is charged.
type PayerBehavior string

// Payer behaviours (see the package doc).
const (
	// BehaviorSucceed deducts at once: 200 SUCCESS, then TRANSACTION.SUCCESS.
	BehaviorSucceed PayerBehavior = "SUCCEED"
	// BehaviorInsufficientBalance refuses: 403 NOT_ENOUGH; the order is PAYERROR.
	BehaviorInsufficientBalance PayerBehavior = "INSUFFICIENT_BALANCE"
	// BehaviorUserPaying answers 200 USERPAYING and settles to SUCCESS after
	// PayerConfig.SettleAfterMS, unless the order is reversed first.
	BehaviorUserPaying PayerBehavior = "USERPAYING"
	// BehaviorSlow deducts at once and notifies, but answers only after PayerConfig.DelayMS.
	BehaviorSlow PayerBehavior = "SLOW"
	// BehaviorNoAnswer deducts and notifies, then drops the connection unanswered.
	BehaviorNoAnswer PayerBehavior = "NO_ANSWER"
	// BehaviorNotifyFirst deducts, then answers only once the merchant acknowledged
	// TRANSACTION.SUCCESS (or after NotifyFirstBound).
	BehaviorNotifyFirst PayerBehavior = "NOTIFY_FIRST"
)

// RefundBehavior scripts what happens when an order of a contract's user is refunded.
type RefundBehavior string

// Refund behaviours (see the package doc).
const (
	// RefundBehaviorSucceed accepts the refund and settles it at once: SUCCESS, then
	// REFUND.SUCCESS.
	RefundBehaviorSucceed RefundBehavior = "SUCCEED"
	// RefundBehaviorProcessing accepts the refund as PROCESSING and settles it to SUCCESS
	// (and REFUND.SUCCESS) after PayerConfig.RefundSettleAfterMS.
	RefundBehaviorProcessing RefundBehavior = "PROCESSING"
	// RefundBehaviorNotEnough refuses the first PayerConfig.RefundNotEnoughAttempts
	// requests of each out_refund_no with 403 NOT_ENOUGH, recording nothing, then
	// behaves like SUCCEED.
	RefundBehaviorNotEnough RefundBehavior = "NOT_ENOUGH"
	// RefundBehaviorAbnormal accepts the refund and ends it ABNORMAL (REFUND.ABNORMAL):
	// the money did not reach the payer; ResolveRefund settles it.
	RefundBehaviorAbnormal RefundBehavior = "ABNORMAL"
	// RefundBehaviorClosed accepts the refund and ends it CLOSED (REFUND.CLOSED): the
	// money stays with the merchant and the amount may be refunded again.
	RefundBehaviorClosed RefundBehavior = "CLOSED"
)

// Defaults of the payer scenarios. Delays are real time: TimeScale does not apply.
const (
	DefaultSettleAfter = 200 * time.Millisecond // USERPAYING -> SUCCESS, refund PROCESSING -> SUCCESS
	// DefaultRefundNotEnoughAttempts is how many requests of one out_refund_no a
	// NOT_ENOUGH refund behaviour refuses when RefundNotEnoughAttempts is 0.
	DefaultRefundNotEnoughAttempts = 1
	DefaultSlowDelay               = time.Second // SLOW answer delay
	// NotifyFirstBound is how long a NOTIFY_FIRST deduction waits for the acknowledgement.
	NotifyFirstBound = 5 * time.Second
	// RateScale is the scale of exchange rates: 100000000 is 1:1.
	RateScale = 100_000_000
	// DefaultForeignRate is the exchange rate when the payer currency differs from the
	// order currency and none is configured.
	DefaultForeignRate = 90_000_000
	// DefaultBankType is the payment method reported in bank_type (WeChat balance).
	DefaultBankType = "CFT"
)

// ErrInvalidPayerConfig is returned by ConfigurePayer for an invalid configuration.
var ErrInvalidPayerConfig = errors.New("sandbox: invalid payer configuration")

// PayerConfig scripts the WeChat user a contract belongs to (by openid). The zero value
// is the default payer: unlimited balance in the order currency, deductions and refunds
// succeed.
type PayerConfig struct {
	// Balance in minor units of the payer currency; nil is unlimited. A deduction whose
	// payer_total exceeds it is refused with NOT_ENOUGH; a successful one lowers it.
	Balance *int64 `json:"balance,omitempty"`
	// Currency the payer pays in (payer_currency); "" is the order currency.
	Currency string `json:"currency,omitempty"`
	// ExchangeRate from the order currency to Currency, ×10^8. 0 is DefaultForeignRate.
	// Ignored (1:1) when both currencies are equal.
	ExchangeRate int64 `json:"exchange_rate,omitempty"`
	// Behavior of deductions; "" is SUCCEED.
	Behavior PayerBehavior `json:"behavior,omitempty"`
	// SettleAfterMS delays a USERPAYING order's settlement (0: DefaultSettleAfter).
	SettleAfterMS int64 `json:"settle_after_ms,omitempty"`
	// DelayMS delays a SLOW deduction's answer (0: DefaultSlowDelay).
	DelayMS int64 `json:"delay_ms,omitempty"`
	// BankType reported for the payment ("" is DefaultBankType, "CFT").
	BankType string `json:"bank_type,omitempty"`
	// Promotion, if set, is applied to every deduction: it appears as the order's single
	// promotion_detail entry (currency defaulting to the order's) and the payer pays
	// total minus its amount.
	Promotion *Promotion `json:"promotion,omitempty"`

	// RefundBehavior of refunds of this payer's orders; "" is SUCCEED.
	RefundBehavior RefundBehavior `json:"refund_behavior,omitempty"`
	// RefundNotEnoughAttempts is how many requests of each out_refund_no a NOT_ENOUGH
	// refund behaviour refuses before it accepts one (0: DefaultRefundNotEnoughAttempts).
	// Only with refund_behavior NOT_ENOUGH.
	RefundNotEnoughAttempts int `json:"refund_not_enough_attempts,omitempty"`
	// RefundSettleAfterMS delays a PROCESSING refund's settlement (real time, 0:
	// DefaultSettleAfter). Only with refund_behavior PROCESSING.
	RefundSettleAfterMS int64 `json:"refund_settle_after_ms,omitempty"`
}

// Payer is a payer's configuration with the remaining balance.
type Payer struct {
	OpenID     string `json:"openid"`
	Configured bool   `json:"configured"` // false: never configured, all defaults
	PayerConfig
}

// Promotion is a promotion_detail entry of the transaction object. Papay names the
// WeChat Pay contribution wxpay_contribute_amount.
type Promotion struct {
	PromotionID              string           `json:"promotion_id"`
	Name                     string           `json:"name,omitempty"`
	Scope                    string           `json:"scope,omitempty"` // GLOBAL | SINGLE
	Type                     string           `json:"type,omitempty"`  // COUPON | DISCOUNT
	Amount                   int64            `json:"amount"`
	Currency                 string           `json:"currency"`
	ActivityID               string           `json:"activity_id,omitempty"`
	WxpayContributeAmount    int64            `json:"wxpay_contribute_amount"`
	MerchantContributeAmount int64            `json:"merchant_contribute_amount"`
	OtherContributeAmount    int64            `json:"other_contribute_amount"`
	GoodsDetail              []PromotionGoods `json:"goods_detail,omitempty"`
}

// PromotionGoods is a goods_detail entry of a promotion.
type PromotionGoods struct {
	GoodsID        string `json:"goods_id"`
	GoodsRemark    string `json:"goods_remark,omitempty"`
	DiscountAmount int64  `json:"discount_amount"`
	Quantity       int64  `json:"quantity"`
	Price          int64  `json:"price"`
}

func (p *Promotion) clone() *Promotion {
	if p == nil {
		return nil
	}
	out := *p
	out.GoodsDetail = slices.Clone(p.GoodsDetail)
	return &out
}

func (c PayerConfig) clone() PayerConfig {
	if c.Balance != nil {
		b := *c.Balance
		c.Balance = &b
	}
	c.Promotion = c.Promotion.clone()
	return c
}

func (c PayerConfig) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidPayerConfig, fmt.Sprintf(format, args...))
	}
	switch c.Behavior {
	case "", BehaviorSucceed, BehaviorInsufficientBalance, BehaviorUserPaying, BehaviorSlow,
		BehaviorNoAnswer, BehaviorNotifyFirst:
	default:
		return bad("unknown behavior %q", c.Behavior)
	}
	switch {
	case c.Balance != nil && *c.Balance < 0:
		return bad("balance must not be negative")
	case c.Currency != "" && !globalCurrencies[c.Currency]:
		return bad("currency %q is not a WeChat Pay Global currency", c.Currency)
	case c.ExchangeRate < 0:
		return bad("exchange_rate must be positive (×10^8)")
	case c.SettleAfterMS < 0 || c.DelayMS < 0:
		return bad("settle_after_ms and delay_ms must not be negative")
	case len(c.BankType) > 32:
		return bad("bank_type is longer than 32 bytes")
	}
	switch c.RefundBehavior {
	case "", RefundBehaviorSucceed, RefundBehaviorProcessing, RefundBehaviorNotEnough, RefundBehaviorAbnormal,
		RefundBehaviorClosed:
	default:
		return bad("unknown refund_behavior %q", c.RefundBehavior)
	}
	switch {
	case c.RefundNotEnoughAttempts < 0 || c.RefundSettleAfterMS < 0:
		return bad("refund_not_enough_attempts and refund_settle_after_ms must not be negative")
	case c.RefundNotEnoughAttempts != 0 && c.RefundBehavior != RefundBehaviorNotEnough:
		return bad("refund_not_enough_attempts applies to refund_behavior NOT_ENOUGH only")
	case c.RefundSettleAfterMS != 0 && c.RefundBehavior != RefundBehaviorProcessing:
		return bad("refund_settle_after_ms applies to refund_behavior PROCESSING only")
	}
	if p := c.Promotion; p != nil {
		switch {
		case p.PromotionID == "" || len(p.PromotionID) > 32:
			return bad("promotion.promotion_id must be 1 to 32 bytes")
		case p.Amount <= 0:
			return bad("promotion.amount must be positive")
		case p.Currency != "" && !globalCurrencies[p.Currency]:
			return bad("promotion.currency %q is not a WeChat Pay Global currency", p.Currency)
		case p.Scope != "" && p.Scope != "GLOBAL" && p.Scope != "SINGLE":
			return bad("promotion.scope must be GLOBAL or SINGLE")
		case p.Type != "" && p.Type != "COUPON" && p.Type != "DISCOUNT":
			return bad("promotion.type must be COUPON or DISCOUNT")
		}
		for i, g := range p.GoodsDetail {
			if g.GoodsID == "" || g.Quantity <= 0 || g.Price < 0 || g.DiscountAmount < 0 {
				return bad("promotion.goods_detail[%d] needs goods_id, quantity > 0, price and discount_amount >= 0", i)
			}
		}
	}
	return nil
}

// ConfigurePayer sets the whole scenario of the user openid (fields left zero take their
// defaults; the balance restarts at cfg.Balance). It applies to deductions and refunds
// attempted from then on.
//
// Errors: ErrInvalidPayerConfig.
func (s *Sandbox) ConfigurePayer(openID string, cfg PayerConfig) (Payer, error) {
	if openID == "" {
		return Payer{}, fmt.Errorf("%w: openid is empty", ErrInvalidPayerConfig)
	}
	if err := cfg.validate(); err != nil {
		return Payer{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stored := cfg.clone()
	s.payers[openID] = &stored
	return Payer{OpenID: openID, Configured: true, PayerConfig: stored.clone()}, nil
}

// Payer returns the scenario of the user openid, with the remaining balance; a payer
// never configured reports the defaults with Configured false.
func (s *Sandbox) Payer(openID string) Payer {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, ok := s.payers[openID]
	if !ok {
		return Payer{OpenID: openID}
	}
	return Payer{OpenID: openID, Configured: true, PayerConfig: cfg.clone()}
}

// payerLocked returns the stored configuration of openID, or the zero (default) one.
func (s *Sandbox) payerLocked(openID string) *PayerConfig {
	if cfg, ok := s.payers[openID]; ok {
		return cfg
	}
	return &PayerConfig{}
}

func (c *PayerConfig) behavior() PayerBehavior {
	if c.Behavior == "" {
		return BehaviorSucceed
	}
	return c.Behavior
}

func (c *PayerConfig) refundBehavior() RefundBehavior {
	if c.RefundBehavior == "" {
		return RefundBehaviorSucceed
	}
	return c.RefundBehavior
}

func (c *PayerConfig) refundNotEnoughAttempts() int {
	if c.RefundNotEnoughAttempts == 0 {
		return DefaultRefundNotEnoughAttempts
	}
	return c.RefundNotEnoughAttempts
}

func (c *PayerConfig) refundSettleAfter() time.Duration {
	if c.RefundSettleAfterMS == 0 {
		return DefaultSettleAfter
	}
	return time.Duration(c.RefundSettleAfterMS) * time.Millisecond
}

func (c *PayerConfig) bankType() string {
	if c.BankType == "" {
		return DefaultBankType
	}
	return c.BankType
}

// rate returns the payer currency and exchange rate for an order in currency.
func (c *PayerConfig) rate(currency string) (string, int64) {
	switch {
	case c.Currency == "" || c.Currency == currency:
		return currency, RateScale
	case c.ExchangeRate == 0:
		return c.Currency, DefaultForeignRate
	default:
		return c.Currency, c.ExchangeRate
	}
}

func (c *PayerConfig) settleAfter() time.Duration {
	if c.SettleAfterMS == 0 {
		return DefaultSettleAfter
	}
	return time.Duration(c.SettleAfterMS) * time.Millisecond
}

func (c *PayerConfig) slowDelay() time.Duration {
	if c.DelayMS == 0 {
		return DefaultSlowDelay
	}
	return time.Duration(c.DelayMS) * time.Millisecond
}

// canPay reports whether the balance covers amount.
func (c *PayerConfig) canPay(amount int64) bool {
	return c.Balance == nil || *c.Balance >= amount
}

// ConvertAmount converts amount (minor units) at rate (×10^8) with integer arithmetic,
// rounding half up: amount × rate / 10^8. It saturates at the largest int64.
func ConvertAmount(amount, rate int64) int64 {
	n := new(big.Int).Mul(big.NewInt(amount), big.NewInt(rate))
	n.Add(n, big.NewInt(RateScale/2))
	n.Quo(n, big.NewInt(RateScale))
	if !n.IsInt64() {
		return 1<<63 - 1
	}
	return n.Int64()
}
