// Package wechat is papayd's client for WeChat Pay Global auto-debit
// ("papay") in institutional (service provider) mode, and the parser of the
// notifications WeChat Pay sends back.
//
// Refunds of papay orders go through the generic Global refund API:
// CreateRefund (POST /v3/global/refunds, sp_mchid in the body) and
// QueryRefund (GET /v3/global/refunds/id/{id} or
// /out-refund-no/{out_refund_no}, sp_mchid and sub_mchid in the query
// string). Their answers and the REFUND.SUCCESS, REFUND.CLOSED and
// REFUND.ABNORMAL resources are read liberally (id or refund_id, status or
// refund_status, recv_account or user_received_account, exchange_rate as
// an object or a bare rate); statuses are kept as WeChat gives them
// (SUCCESS, PROCESSING, ABNORMAL, CLOSED, REFUNDCLOSE): the service maps
// them.
//
// The Client implements service.WeChat on top of the official wechatpay-go
// core.Client, which signs every request with the merchant key and verifies
// every 2xx answer. Keys holds the WeChat Pay verification keys (platform
// certificates, a WeChat Pay public key, or both during a migration); the
// Client and the NotificationParser share one Keys value, so a certificate
// set replaced at runtime applies to answers and notifications alike.
//
// The Client retries what may succeed on a second try (no answer, 5xx,
// 429, an answer that does not verify) with jittered exponential backoff
// within the call's deadline, re-sending the same body; see Client. A
// CertRefresher keeps the platform certificates current from
// GET /v3/global/certificates: periodically (Run) and on demand, when an
// answer or a notification names a serial the Keys do not know. Wiring:
//
//	client, _ := wechat.NewClient(cfg, recorder, log)
//	refresher := wechat.NewCertRefresher(client, apiV3Key, wechat.RefresherOptions{})
//	parser, _ := wechat.NewNotificationParser(client.Keys(), apiV3Key, time.Now)
//	parser.SetUnknownSerialHook(refresher.OnUnknownSerial)
//	go refresher.Run(ctx) // ends with ctx
//
// Errors follow service.WeChat: a WeChat error answer is a
// *service.RemoteError; anything whose outcome is unknown (no answer, a
// timeout, an answer that does not verify or decode) wraps
// service.ErrWeChatUnavailable. Notifications that fail verification wrap
// service.ErrNotificationUnauthentic; verified ones that cannot be decrypted
// or decoded wrap service.ErrNotificationMalformed. No key, signature, body
// or decrypted payload is logged or put into an error.
package wechat
