package service

import "time"

// ChargeState is the local state of a charge.
type ChargeState string

// The charge states. PENDING: recorded, WeChat's answer not known yet.
// PROCESSING: WeChat says USERPAYING or NOTPAY. CLOSING: a close was asked
// for while WeChat did not know the order, so a deduction may still be in
// flight; it becomes CLOSED once none can be (InFlight after the last
// send), or SUCCEEDED if WeChat deducted after all. SUCCEEDED, FAILED and
// CLOSED are final, except that WeChat reporting SUCCESS always wins: money
// WeChat took is never lost from the record.
const (
	ChargePending    ChargeState = "PENDING"
	ChargeProcessing ChargeState = "PROCESSING"
	ChargeClosing    ChargeState = "CLOSING"
	ChargeSucceeded  ChargeState = "SUCCEEDED"
	ChargeFailed     ChargeState = "FAILED"
	ChargeClosed     ChargeState = "CLOSED"
)

// Final reports whether no WeChat call can change the state any more.
func (s ChargeState) Final() bool {
	return s == ChargeSucceeded || s == ChargeFailed || s == ChargeClosed
}

// WeChat's trade states.
const (
	TradeSuccess    = "SUCCESS"
	TradeRefund     = "REFUND"
	TradeNotPay     = "NOTPAY"
	TradeClosed     = "CLOSED"
	TradePayError   = "PAYERROR"
	TradeUserPaying = "USERPAYING"
)

// Money is an amount in the minor unit of its currency (cents; whole yen).
type Money struct {
	Total    int64
	Currency string
}

// ExchangeRate is WeChat's rate between the order and the payer's currency;
// Rate is the rate times 10^8.
type ExchangeRate struct {
	Type string
	Rate int64
}

// SceneInfo describes the merchant's device.
type SceneInfo struct {
	DeviceID string
	DeviceIP string
}

// GoodsDetail is one item of a promotion.
type GoodsDetail struct {
	GoodsID        string
	GoodsRemark    string
	DiscountAmount int64
	Quantity       int64
	Price          int64
}

// PromotionDetail is one discount WeChat applied.
type PromotionDetail struct {
	PromotionID              string
	Name                     string
	Scope                    string
	Type                     string
	Amount                   int64
	Currency                 string
	ActivityID               string
	WxpayContributeAmount    int64
	MerchantContributeAmount int64
	OtherContributeAmount    int64
	GoodsDetail              []GoodsDetail
}

// Charge is one deduction against an agreement, as papayd records it.
type Charge struct {
	OutTradeNo      string
	TransactionID   string
	ContractID      string
	OutContractCode string
	OpenID          string
	Merchant
	Amount               Money
	PayerTotal           int64
	PayerCurrency        string
	ExchangeRate         ExchangeRate
	Description          string
	Attach               string
	GoodsTag             string
	MerchantCategoryCode string
	SceneInfo            SceneInfo
	// NotifyURL is the notify_url the deduction was sent with: every resend
	// sends the charge's own parameters, never the current configuration
	// ("" on charges of papayd before 0004: the configured URL).
	NotifyURL string
	BankType  string
	// TradeState and TradeStateDesc are WeChat's words, kept as given.
	TradeState      string
	TradeStateDesc  string
	State           ChargeState
	FailureCode     string
	FailureMessage  string
	SuccessTime     time.Time
	PromotionDetail []PromotionDetail
	// RefundedTotal is the sum of the charge's SUCCEEDED refunds, in its
	// currency; the refund that succeeds updates it in its transaction.
	RefundedTotal int64
	CreateTime    time.Time
	UpdateTime    time.Time

	// LastSendTime is when the deduction was last sent to WeChat (zero:
	// never). A refusal answering a later send is not final, and the unpaid
	// timeout and a close's wait for deductions in flight count from it.
	LastSendTime time.Time

	// Reconciliation: when the reconciler next asks WeChat about it (open
	// charges on the backoff, final ones for their re-checks; zero: never
	// again), and how many times it asked so far in its current state.
	NextCheckTime time.Time
	CheckAttempts int
}

// request is the deduction call for c: built from the charge alone, so that
// every send of one charge is the same request.
func (c *Charge) request() TransactionRequest {
	return TransactionRequest{
		Merchant: c.Merchant, OutTradeNo: c.OutTradeNo, ContractID: c.ContractID, Amount: c.Amount,
		Description: c.Description, Attach: c.Attach, GoodsTag: c.GoodsTag,
		MerchantCategoryCode: c.MerchantCategoryCode, NotifyURL: c.NotifyURL, SceneInfo: c.SceneInfo,
	}
}

// ChargeFilter selects charges for ListCharges. Zero fields do not filter;
// the time range is [CreatedFrom, CreatedTo).
type ChargeFilter struct {
	ContractID      string
	OutContractCode string
	OpenID          string
	State           ChargeState
	SubMchID        string
	// SubMchIDs, when not empty, limits the list to these sub-merchants
	// (the caller's, see Caller.SubMchIDs); with SubMchID the two
	// intersect, so a SubMchID outside the set selects nothing.
	SubMchIDs   []string
	CreatedFrom time.Time
	CreatedTo   time.Time
	PageSize    int
	PageToken   string
}

// RemoteTransaction is a deduction as WeChat reports it (deduction answer,
// order query, TRANSACTION.SUCCESS).
type RemoteTransaction struct {
	SubMchID             string
	OutTradeNo           string
	TransactionID        string
	ContractID           string
	TradeType            string
	TradeState           string
	TradeStateDesc       string
	BankType             string
	Attach               string
	SuccessTime          time.Time
	MerchantCategoryCode string
	Amount               Money
	PayerTotal           int64
	PayerCurrency        string
	ExchangeRate         ExchangeRate
	SPOpenID             string
	SubOpenID            string
	PromotionDetail      []PromotionDetail
}

// TransactionRequest is one deduction call.
type TransactionRequest struct {
	Merchant
	OutTradeNo           string
	ContractID           string
	Amount               Money
	Description          string
	Attach               string
	GoodsTag             string
	MerchantCategoryCode string
	NotifyURL            string
	SceneInfo            SceneInfo
}

// TransactionQuery selects an order: by TransactionID, else by OutTradeNo.
type TransactionQuery struct {
	SubMchID      string
	TransactionID string
	OutTradeNo    string
}

// Anomaly is a notification or answer that disagrees with the local record
// in a way papayd will not resolve silently (amount, currency, contract).
type Anomaly struct {
	Kind           string
	OutTradeNo     string
	NotificationID string
	Detail         string
	Time           time.Time
}
