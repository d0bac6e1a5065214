// Package service is papayd's domain: agreements (auto-debit contracts),
// charges and their refunds, their state machines, the error vocabulary,
// and the use cases that the gRPC API, the JSON gateway and the WeChat Pay
// callback all share.
//
// It imports the standard library only. What it needs from the outside world
// it declares here as small interfaces (Store, WeChat, Clock, IDs) that
// internal/db and internal/wechat implement.
package service
