package service

// currencies is the ISO 4217 list of WeChat Pay Global.
var currencies = map[string]bool{
	"CNY": true, "HKD": true, "GBP": true, "USD": true, "JPY": true, "CAD": true, "AUD": true, "EUR": true,
	"NZD": true, "KRW": true, "THB": true, "SGD": true, "RUB": true, "CHF": true, "SEK": true, "DKK": true,
	"NOK": true, "AED": true, "TRY": true, "MOP": true, "TWD": true, "CZK": true, "MYR": true, "PHP": true,
	"IDR": true, "MNT": true, "QAR": true, "HUF": true, "KHR": true, "ISK": true,
}
