package service

// currencies is the ISO 4217 list of WeChat Pay Global.
var currencies = map[string]bool{
	"CNY": true, "HKD": true, "GBP": true, "USD": true, "JPY": true, "CAD": true, "AUD": true, "EUR": true,
	"NZD": true, "KRW": true, "THB": true, "SGD": true, "RUB": true, "CHF": true, "SEK": true, "DKK": true,
	"NOK": true, "AED": true, "TRY": true, "MOP": true, "TWD": true, "CZK": true, "MYR": true, "PHP": true,
	"IDR": true, "MNT": true, "QAR": true, "HUF": true, "KHR": true, "ISK": true,
}

// DefaultMaxChargeAmount bounds one charge, in the currency's minor unit
// (whole units for JPY, KRW and ISK), at round sums of about USD 15,000:
// a bound against a mistyped or hostile amount, not an exchange rate.
// Config.MaxChargeAmount overrides it per currency.
var DefaultMaxChargeAmount = map[string]int64{
	"CNY": 10_000_000, "HKD": 10_000_000, "GBP": 1_000_000, "USD": 1_500_000, "JPY": 2_000_000,
	"CAD": 2_000_000, "AUD": 2_000_000, "EUR": 1_200_000, "NZD": 2_000_000, "KRW": 20_000_000,
	"THB": 50_000_000, "SGD": 2_000_000, "RUB": 120_000_000, "CHF": 1_200_000, "SEK": 15_000_000,
	"DKK": 10_000_000, "NOK": 15_000_000, "AED": 5_000_000, "TRY": 50_000_000, "MOP": 10_000_000,
	"TWD": 40_000_000, "CZK": 30_000_000, "MYR": 6_000_000, "PHP": 80_000_000, "IDR": 20_000_000_000,
	"MNT": 5_000_000_000, "QAR": 5_000_000, "HUF": 500_000_000, "KHR": 6_000_000_000, "ISK": 2_000_000,
}

// maxChargeAmount is the bound of one charge in currency.
func (c Config) maxChargeAmount(currency string) int64 {
	if n, ok := c.MaxChargeAmount[currency]; ok {
		return n
	}
	return DefaultMaxChargeAmount[currency]
}
