// Package sandbox simulates the WeChat Pay Global auto-debit ("papay") API v3 in
// institutional (service-provider) mode — contracts, deductions and refunds — so that
// papayd and its tests run the whole signing, charging and refunding flow locally with
// real signatures, real AES-256-GCM encryption and the real notification retry
// schedules.
//
// A Sandbox serves two handlers:
//
//   - APIHandler: the WeChat Pay API, mounted at the root of its own listener. Every
//     request must carry a valid merchant Authorization header (WECHATPAY2-SHA256-RSA2048,
//     items in any order, timestamp within 5 minutes); every response, 204s and errors
//     included, is signed with the platform key (Wechatpay-Timestamp, -Nonce, -Signature,
//     -Serial) and carries a Request-ID, so wechatpay-go's validator accepts it.
//   - ControlHandler: the unauthenticated /sandbox/v1 API through which a test or a
//     developer plays the WeChat user: sign or decline a session, terminate a contract,
//     script how the user's deductions and refunds go, and inspect contracts, the order
//     and refund ledgers and the notification log, resolve an ABNORMAL refund, rotate
//     the platform certificate and inject faults. SignSession, DeclineSession,
//     UserTerminate, PlatformTerminate, ConfigurePayer, Payer, Order, Orders,
//     Deductions, Refund, Refunds, ResolveRefund, Contracts, RotatePlatformCertificate,
//     RetireOldCertificates, SetFaults, ClearFaults and FaultLog are the same in Go.
//
// Endpoints of the API (paths exact):
//
//	POST /v3/global/papay/contracts/{miniprogram,app}-pre-entrust-sign  -> {"session_id"}
//	POST /v3/global/papay/contracts/{h5,jsapi}-pre-entrust-sign         -> {"sign_url"}
//	POST /v3/global/papay/contracts/web-pre-entrust-sign                -> {"show_code_url"}
//	GET  /v3/global/papay/contracts/{contract_id}                       -> contract
//	GET  /v3/global/papay/contracts/out-contract-code/{code}?plan_id=   -> contract
//	POST /v3/global/papay/contracts/{contract_id}/terminate              -> 204
//	POST /v3/global/papay/transactions                                  -> transaction
//	GET  /v3/global/papay/transactions/{transaction_id}?sub_mchid=      -> transaction
//	GET  /v3/global/papay/transactions/out-trade-no/{no}?sub_mchid=     -> transaction
//	     (also /out_trade_no/{no}, the spelling of the official examples)
//	POST /v3/global/papay/transactions/out-trade-no/{no}/reverse        -> 204
//	POST /v3/global/refunds                                             -> refund (accepted)
//	GET  /v3/global/refunds/id/{refund_id}?sp_mchid=&sub_mchid=         -> refund
//	GET  /v3/global/refunds/out-refund-no/{no}?sp_mchid=&sub_mchid=     -> refund
//	GET  /v3/global/refunds?out_trade_no=|transaction_id=&sp_mchid=&sub_mchid=[&offset=&count=]
//	     -> {total_num, current_total_num, offset, count, data: [refund...]} (oldest first)
//	GET  /v3/global/certificates                                        -> {"data": [...]}
//
// Control API:
//
//	POST /sandbox/v1/sessions/{session_id}:sign      {"openid"?, "client_ip"?} -> 200 {contract_id, ...}
//	POST /sandbox/v1/sessions/{session_id}:decline   -> 200 session
//	GET  /sandbox/v1/sessions/{session_id}           -> session
//	POST /sandbox/v1/contracts/{contract_id}:terminate {"mode"?: "USER"|"PLATFORM"} -> 200 contract
//	GET  /sandbox/v1/contracts                       -> {"contracts": [...]} (oldest first)
//	GET  /sandbox/v1/contracts/{contract_id}         -> contract
//	GET  /sandbox/v1/notifications                   -> {"deliveries": [...]}
//	POST /sandbox/v1/payers/{openid}:configure       PayerConfig -> 200 payer
//	GET  /sandbox/v1/payers/{openid}                 -> payer (defaults if never configured)
//	GET  /sandbox/v1/orders                          -> {"orders": [...], "deductions": n}
//	GET  /sandbox/v1/orders/{out_trade_no}[?sub_mchid=] -> Order (ledger entry)
//	GET  /sandbox/v1/orders/{out_trade_no}/refunds[?sub_mchid=] -> {"refunds": [...], "applied": n}
//	GET  /sandbox/v1/refunds[?out_trade_no=&sub_mchid=] -> {"refunds": [...], "applied": n} (oldest first)
//	GET  /sandbox/v1/refunds/{out_refund_no}[?sub_mchid=] -> Refund (ledger entry)
//	POST /sandbox/v1/refunds/{out_refund_no}:resolve {"status": "SUCCESS"|"CLOSED", "sub_mchid"?} -> 200 refund
//	GET  /sandbox/v1/platform                        -> {signing_serial_no, certificates: [{serial_no, effective_time, expire_time, certificate (PEM)}]}
//	POST /sandbox/v1/platform:rotate                 -> 200 the same view, the new certificate first
//	POST /sandbox/v1/platform:retire                 -> 200 the same view plus "retired": [serials]
//	GET  /sandbox/v1/faults                          -> {seed, rules (with "fired"), injected, counts, log}
//	POST /sandbox/v1/faults                          Faults -> 200 the same view (replaces the rules)
//	DELETE /sandbox/v1/faults                        -> 200 the same view (no rules; the log is kept)
//
// Control errors are {"code","message"}: 404 NOT_FOUND (unknown session, contract,
// order or refund), 409 REFUND_NOT_ABNORMAL (resolving a refund that is not ABNORMAL),
// 410 SESSION_EXPIRED, 409 SESSION_CLOSED (already signed or declined), 409
// CONTRACT_EXISTS, 409 CONTRACT_TERMINATED, 403 USER_MISMATCH (other openid, or H5
// client IP differing from user_client_ip), 400 INVALID_ARGUMENT (also an invalid payer
// configuration or an unknown field in it, an invalid fault configuration, a refund
// resolution other than SUCCESS or CLOSED).
//
// Signing page (SignPageHandler, at SignPagePath; papayd mounts it on its HTTP port and
// sets Options.SignPageBaseURL, so that sign_url and show_code_url point at it):
//
//	GET  /sandbox/sign?os_session_id=   -> the session with Agree and Decline (410 expired, 404 unknown)
//	POST /sandbox/sign                  os_session_id, token, action=agree|decline[, openid] -> the outcome
//
// # Error decisions
//
// The Global documentation leaves several codes unconfirmed; the sandbox decides:
//
//   - 401 SIGN_ERROR for a missing or malformed Authorization, an unknown mchid, a
//     serial_no other than the merchant certificate's, a timestamp 5 minutes or more
//     away, or a signature mismatch (detail.field "signature", location "authorization";
//     a mismatch also echoes detail.sign_information with the message the sandbox
//     verified).
//   - 400 PARAM_ERROR for a malformed or oversized (> 1 MiB) body, a wrong JSON type, a
//     missing or too long field, a 4-byte UTF-8 character, a bad URL, IP or RFC 3339 time,
//     a non-JSON Content-Type or an Accept header excluding JSON. detail.field is a JSON
//     pointer ("/openid") for body fields and the plain name for path and query
//     parameters; detail.location is body, path, query or header. Lengths count UTF-8
//     bytes. Fields are checked in the order of the API's field table and only the
//     first failure is reported. Unknown fields are ignored.
//   - 403 NO_AUTH when sub_mchid is not one of the provider's sub-merchants
//     (Credentials.SubMchID, Options.SubMchIDs) or sp_appid is not Credentials.SPAppID.
//     sub_appid is not checked.
//   - 400 INVALID_REQUEST when pre-signing with an out_contract_code that already has a
//     SIGNED contract for the same sub-merchant and plan, or for an openid that already
//     holds a SIGNED contract for the plan (the domestic one-contract-per-user rule, our
//     reading for Global). Pre-signing again for a still pending out_contract_code opens
//     a new session; the old one stays usable until it expires, but only the first to be
//     signed creates a contract (the other then fails with ErrContractExists). The
//     out_contract_code of a TERMINATED contract may be signed again; the query by code
//     then returns the newest contract.
//   - 404 NOT_FOUND for a query of an unknown contract id, of a contract of another
//     sub-merchant, of an out_contract_code never signed (a pending session is not a
//     contract), and for any other path or method.
//   - 403 CONTRACT_NOT_EXIST for terminating an unknown, already terminated, or other
//     sub-merchant's contract.
//   - Deduction: 403 NO_AUTH when the contract is unknown (a session id is not a
//     contract), TERMINATED, or another sub-merchant's (the seed guide's code for "no
//     contract"); 403 NOT_ENOUGH "balance insufficient" when the payer refuses; 400
//     OUT_TRADE_NO_USED for an out_trade_no used before with other parameters; 400
//     ORDER_CLOSED for the number of a CLOSED order. out_trade_no is 1 to 32 letters,
//     digits and _-|*@; amount.currency one of the 30 Global ISO 4217 codes;
//     scene_info.device_id at most 32 bytes, device_ip an IP address.
//   - Queries: 404 ORDER_NOT_EXIST for an unknown order or another sub-merchant's; 403
//     NO_AUTH for a sub_mchid that is not the provider's; sub_mchid is required (query).
//   - Reverse: sub_mchid in the JSON body (documented) or, if the body has none, the
//     query string; 404 NOT_FOUND (unknown), 400 ORDER_PAID (SUCCESS), 400 ORDER_CLOSED.
//   - Refund (checked in this order, after PARAM_ERROR and authorisation): an
//     out_refund_no already used by the sub-merchant answers that refund as it stands
//     when the request repeats its parameters (the order, named by transaction_id or
//     out_trade_no, amount, reason, source, notify_url, app ids), else 400
//     OUT_REFUND_NO_USED; 404 RESOURCE_NOT_EXISTS for an unknown order (or another
//     sub-merchant's); 400 INVALID_REQUEST for an order not paid (SUCCESS or REFUND) or
//     paid more than a year ago (RefundWindow, by Options.Now); 400 PARAM_ERROR
//     (detail.field /amount/total or /amount/currency) when amount.total or currency is
//     not the order's; 400 INVALID_REQUEST when the order has 50 refunds
//     (MaxRefundsPerOrder) or when the refunds not CLOSED would exceed its total
//     ("refund amount exceeds"); 429 FREQUENCY_LIMITED when the order's previous refund
//     was accepted less than a minute ago (RefundSpacing × TimeScale, real time); then
//     the payer's refund behaviour (403 NOT_ENOUGH). 403 NO_AUTH when sp_mchid is not
//     the signing merchant. sp_mchid, sub_mchid, sp_appid and out_refund_no (1 to 64
//     letters, digits and _-|*@) are required, and one of transaction_id and
//     out_trade_no; reason (≤ 80 bytes), source and notify_url are optional.
//   - Refund queries: sp_mchid and sub_mchid are required (query); 404
//     RESOURCE_NOT_EXISTS for an unknown refund or another sub-merchant's. The refund
//     list of an order needs transaction_id or out_trade_no; offset ≥ 0 (default 0),
//     count 1 to 20 (default 10); 404 RESOURCE_NOT_EXISTS for an unknown order.
//
// # Sessions and notifications
//
// A session expires at expired_time, or 2 hours after pre-sign. PAPAY.SIGN goes to the
// session's success_notify_url, PAPAY.TERMINATE (merchant, user or platform) to the
// plan's termination URL (Options.TerminationNotifyURL, PlanTerminationNotifyURLs); a
// declined session sends nothing. Notification URLs must be absolute and carry no query;
// unlike WeChat Pay the sandbox also accepts http. Each notification is delivered by its
// own goroutine: any 2xx acknowledges it; otherwise it is retried after 15s, 15s, 30s,
// 3m, 30m, 30m, 30m, 30m and 60m (times Options.TimeScale; REFUND.* follow the refund
// schedule, 16 attempts: 15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h, 3h, 3h,
// 6h, 6h), each attempt re-signed with
// a fresh timestamp and nonce while the id and body stay the same, and signed with the
// signing key of the moment (a retry after a certificate rotation uses the new key).
// Deliveries logs every attempt; WaitAttempts, WaitDelivered and WaitIdle let tests wait
// without sleeping.
//
// Times are RFC 3339 with a +08:00 offset, as WeChat Pay writes them. The resource of a
// notification is AEAD_AES_256_GCM under the APIv3 key with associated data "papay",
// original_type "papay" for PAPAY.* (WeChat's value is undocumented), "transaction"
// for TRANSACTION.SUCCESS and "refund" for REFUND.* (associated data alike).
//
// # Deductions
//
// Every deduction that names a signed contract creates an order in the ledger, keyed by
// (sub_mchid, out_trade_no), with a 28-digit transaction_id; Order.Requests counts the
// requests that named it and Order.Deductions the times money was taken (0 or 1), so
// tests can assert "exactly one deduction". Requests are applied to the ledger under one
// lock: concurrent identical submissions deduct once. Re-submitting an out_trade_no
// with the same parameters (everything but scene_info) answers the order as it stands —
// 200, no second deduction, no payer behaviour — except that a PAYERROR order is tried
// again (the FAQ lets an unpaid number be reused), which lets a topped-up payer pay it.
//
// The transaction object (TransactionResource) is the deduction answer, the query
// answer and the TRANSACTION.SUCCESS payload: trade_type AUTH, bank_type CFT by
// default, transaction_id (not id), payer.sp_openid the contract's openid and
// payer.sub_openid a stable openid derived for the sub_appid (omitted without one),
// amount.exchange_rate always {SETTLEMENT_RATE, rate ×10^8}. payer_total and
// success_time are set only once the order is paid (0 and absent before). Promotions
// use papay's wxpay_contribute_amount spelling.
//
// The payer is the contract's openid; PayerConfig scripts it (ConfigurePayer replaces
// the whole scenario; zero fields are defaults):
//
//   - payer_currency defaults to the order currency (rate 100000000, any configured rate
//     ignored); another currency uses exchange_rate, default 90000000. payer_total =
//     (total − promotion) × rate / 10^8, integer arithmetic rounded half up
//     (ConvertAmount). balance is in the payer currency, unlimited when unset; a payment
//     lowers it; a deduction above it is refused like INSUFFICIENT_BALANCE.
//   - SUCCEED (default): SUCCESS at once, 200, TRANSACTION.SUCCESS to notify_url.
//   - INSUFFICIENT_BALANCE: 403 NOT_ENOUGH; the order is PAYERROR; nothing is sent.
//   - USERPAYING: 200 USERPAYING; after settle_after_ms (real time, default 200 ms) it
//     becomes SUCCESS (or PAYERROR if the balance no longer covers it) and notifies,
//     unless reversed first. Pending settlements count for WaitIdle; Close drops them.
//   - SLOW: paid and notified at once; answered after delay_ms (real time, default 1 s),
//     or when the client gives up.
//   - NO_ANSWER: paid and notified; the handler panics with http.ErrAbortHandler, so
//     net/http drops the connection and the client sees a transport error (a wrapping
//     handler that recovers panics would turn this into a 500).
//   - NOTIFY_FIRST: paid and notified; answered once that notification was acknowledged
//     or given up, at most NotifyFirstBound (5 s), so the merchant gets the notification
//     before the deduction answer.
//
// Reverse closes an unpaid order (USERPAYING or PAYERROR): trade_state CLOSED, and its
// out_trade_no can never be deducted again. TRANSACTION.SUCCESS uses the retry schedule
// and delivery log of the contract notifications; BuildNotification with an altered
// TransactionResource forges one (e.g. a tampered amount). No notification is sent for
// a failed deduction (none is documented for Global papay).
//
// Orders (every order with out_trade_no, transaction_id, trade_state, amount, Requests
// and Deductions) and Contracts (contract_id, out_contract_code, state, termination
// mode) list the ledger in creation order for reconciliation; they only copy under the
// lock.
//
// # Refunds
//
// POST /v3/global/refunds refunds a paid order (see Error decisions for what is
// refused). Each accepted refund enters the refund ledger, keyed by (sub_mchid,
// out_refund_no), with a 29-digit refund id; Refund.Requests counts the accepted
// requests that named it (replays included), Refund.NotEnoughRefusals the NOT_ENOUGH
// refusals before it was accepted, and Refund.Applied the times it was taken off its
// order (0 or 1), so a reconciliation can assert that no out_refund_no refunded twice.
// Requests are applied under one lock: concurrent identical requests refund once.
//
// The answer (RefundCreated) means "accepted" and carries no status: id, out_refund_no,
// create_time, amount {refund, currency, payer_refund, payer_currency, exchange_rate
// {SETTLEMENT_RATE, rate}}. The queries (RefundQueried) add transaction_id,
// out_trade_no, channel ORIGINAL, recv_account, fund_source
// REFUND_SOURCE_UNSETTLED_FUNDS, success_time (once SUCCESS), status (SUCCESS,
// PROCESSING, ABNORMAL or CLOSED; never the older REFUNDCLOSE) and amount with total
// and payer_total. REFUND.SUCCESS, REFUND.CLOSED and REFUND.ABNORMAL carry
// RefundResource (refund_id, refund_status, user_received_account, ...) to the refund's
// notify_url (without one, none is sent).
//
// Cross-border: payer_refund is the refund at the order's exchange rate, rounded half
// up like payer_total (ConvertAmount), capped so that the refunds never return more
// than payer_total; the refund that completes the order's total returns exactly the
// rest. A successful refund raises a configured payer balance by payer_refund.
//
// After its first accepted refund an order's trade_state is REFUND ("转入退款"), the
// papay enum's "refund initiated" (reference/wechatpay-global-papay-api.md); payer_total
// stays reported. Order.Refunds and Order.Refunded (the sum of its refunds but CLOSED
// ones, never above the total) show it in the order ledger.
//
// The order's payer (PayerConfig) scripts refunds with refund_behavior:
//
//   - SUCCEED (default): SUCCESS at once, REFUND.SUCCESS.
//   - PROCESSING: PROCESSING; after refund_settle_after_ms (real time, default 200 ms)
//     SUCCESS and REFUND.SUCCESS. Pending settlements count for WaitIdle; Close drops
//     them.
//   - NOT_ENOUGH: the first refund_not_enough_attempts (default 1) requests of each
//     out_refund_no are refused 403 NOT_ENOUGH and leave no trace; the next one is
//     accepted as SUCCEED.
//   - ABNORMAL: ABNORMAL and REFUND.ABNORMAL; the amount stays taken. ResolveRefund
//     (POST /sandbox/v1/refunds/{no}:resolve) plays the merchant's staff: SUCCESS or
//     CLOSED, with REFUND.SUCCESS or REFUND.CLOSED.
//   - CLOSED: CLOSED and REFUND.CLOSED; the amount may be refunded again.
//
// For example POST /sandbox/v1/payers/{openid}:configure with
// {"refund_behavior": "NOT_ENOUGH", "refund_not_enough_attempts": 3}. Fault injection
// applies to the refund paths like to any other (e.g. lose_response on POST
// /v3/global/refunds: the refund is applied, its answer lost).
//
// # State file
//
// With Options.StateFile the sandbox keeps its state across restarts (papayd sets
// PAPAYD_DATA_DIR/sandbox/state.json); without it everything lives in memory. The file is
// a JSON snapshot of the sessions, contracts, the order and refund ledgers (with the
// real-time due dates of USERPAYING and PROCESSING settlements and of the refund
// spacing), NOT_ENOUGH refusal counts, payers (balances included), the delivery log and
// the notifications still to deliver (id, body, next attempt and its due time). It is
// replaced atomically: written to a temporary file, synced, renamed over the old one,
// and the directory synced; mode 0600. New loads it and re-arms what was pending:
// settlements and retries at their due times (at once when past), resumed at the
// attempt they had reached, with the same id and body. A file that cannot be read or
// parsed, of another version or of another sp_mchid is an error at New naming the file,
// never a silent reset; deleting the file starts afresh. One sandbox writes a file: New
// takes a lock on StateFile+".lock" (flock, Unix), held until Close; a second sandbox
// that finds it held loads the file (and logs a warning) but neither resumes its pending
// work nor ever saves (its changes fail as below). papayd refuses such a second process
// with its own locks.
//
// The guarantee: an API or control request that changes the state (POST) is answered
// only once the file holds its effect; concurrent requests share one write. If the
// write fails, or the sandbox is closed, the API answers 500 SYSTEM_ERROR (the control
// API 500 UNAVAILABLE) instead, and the merchant's retry with the same parameters is
// answered idempotently. What changes in the background (settlements, notification
// attempts, Go calls such as SignSession and ConfigurePayer) is saved once a change
// has rested 100 ms (saves are skipped when nothing changed), and at Close. A crash
// loses at most those last background changes: a settlement lost that way is made
// again after the restart (the order is still USERPAYING, now overdue), and a
// notification whose acknowledgement was not yet saved is sent again, as WeChat Pay
// delivers at least once. Session, contract, transaction and refund ids are random and
// checked against the stored ones, so none is reused. Fault rules and their log, and rotated platform certificates, are not
// kept: a restarted sandbox has no faults and signs with Credentials.PlatformCert.
//
// # Platform certificates
//
// GET /v3/global/certificates (authenticated and signed like every call) lists the
// platform certificates, the signing one first: serial_no, effective_time, expire_time
// and encrypt_certificate {algorithm AEAD_AES_256_GCM, nonce, associated_data
// "certificate", ciphertext}, whose plaintext is the certificate PEM, encrypted under the
// APIv3 key (utils.DecryptAES256GCM decrypts it). Expired certificates are not listed.
//
// The rotation model is deliberately sharp: RotatePlatformCertificate (POST
// /sandbox/v1/platform:rotate) creates a new key and certificate and signs every later
// response and notification attempt with it at once; the old certificate stays listed
// (the overlap) until RetireOldCertificates (POST /sandbox/v1/platform:retire). So a
// client that never downloads certificates fails to verify from the first answer after
// the rotation (unknown Wechatpay-Serial), while one that downloads the list (bootstrap:
// fetch, decrypt, then verify the list with what it decrypted) keeps working, before and
// after the retirement. SigningCertificate and PlatformCertificates return the current
// certificates; they are swapped atomically, so rotating while requests and deliveries
// are in flight is safe. Credentials are never modified (they keep the initial
// certificate, which may be shared by several sandboxes and is what is written to
// files). Public-key mode does not rotate: the public key id always signs with
// Credentials.PlatformKey.
//
// # Fault injection
//
// SetFaults (POST /sandbox/v1/faults) installs rules; each injected fault is logged
// (FaultLog, FaultCount, FaultCounts; GET /sandbox/v1/faults). The JSON:
//
//	{"seed": 42, "rules": [
//	  {"kind": "system_error", "method": "POST", "path": "/v3/global/papay/transactions", "count": 1},
//	  {"kind": "latency", "path_prefix": "/v3/global/papay/", "probability": 0.1, "delay_ms": 200},
//	  {"kind": "lose_attempt", "event_type": "TRANSACTION.SUCCESS", "count": 2},
//	  {"kind": "reorder_notifications", "count": 3, "batch": 3, "hold_ms": 1000}]}
//
// A rule fires for the next count matching events (exact for scenario tests), with
// probability (0..1) for every matching event, or with probability at most count times.
// Each rule draws from its own math/rand/v2 PCG source seeded with seed and the rule's
// index, re-seeded by every SetFaults: the same seed and the same sequence of events
// reaching a rule (e.g. from a sequential soak client) give the same faults, even while
// notification rules draw in background deliveries. For one event at most one rule of
// each kind fires, the first in order; a rule not reached consumes nothing.
//
// API faults apply to every API request matching method, path (exact) and path_prefix,
// before authentication:
//
//   - latency: delay_ms before handling. The request is executed even if the client
//     gave up meanwhile, so a client timeout can hide a deduction that happened.
//   - system_error: signed 500 SYSTEM_ERROR; rate_limit: signed 429 RATELIMIT_EXCEEDED.
//     Neither executes the request.
//   - drop_connection: the connection is hijacked and closed; nothing is executed.
//   - lose_response: the request is executed (money moves, notifications go out), then
//     the connection is closed instead of answering.
//
// At most one of system_error, rate_limit, drop_connection and lose_response applies to
// a request; latency combines with any. Note that Go's http.Transport silently resends
// an idempotent request (GET) that fails on a reused keep-alive connection, so a
// dropped or lost GET may reach the sandbox twice (and consume two counts); POSTs are
// never resent.
//
// Notification faults match event_type (empty: any):
//
//   - lose_attempt (per attempt): the attempt is not sent and counts as failed, as if
//     the merchant timed out; the schedule continues with the same id and body.
//   - drop_notification: never sent (WeChat gave up); Deliveries gets one final entry
//     with attempt 0 and fault drop_notification.
//   - duplicate_notification: a copy with the same id and body is delivered concurrently
//     with the original, with its own retries; its log entries carry the fault.
//   - delay_notification: the first attempt is made delay_ms later (real time).
//   - reorder_notifications: notifications are held until batch are held (default
//     count, else 2) or hold_ms (default 1000) after the first; then their first
//     attempts are made newest first, each after the previous one completed.
//
// Held and delayed notifications count for WaitIdle; Close drops them. User-side events
// (UserTerminate, PlatformTerminate) and certificate rotation are the other faults a
// merchant must survive.
package sandbox
