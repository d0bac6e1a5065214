// Package sandbox simulates the contract part of the WeChat Pay Global auto-debit
// ("papay") API v3 in institutional (service-provider) mode, so that papayd and its tests
// run the whole signing flow locally with real signatures, real AES-256-GCM encryption and
// the real notification retry schedule.
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
//     and inspect contracts and the notification log. SignSession, DeclineSession,
//     UserTerminate and PlatformTerminate are the same actions in Go.
//
// Endpoints of the API (paths exact):
//
//	POST /v3/global/papay/contracts/{miniprogram,app}-pre-entrust-sign  -> {"session_id"}
//	POST /v3/global/papay/contracts/{h5,jsapi}-pre-entrust-sign         -> {"sign_url"}
//	POST /v3/global/papay/contracts/web-pre-entrust-sign                -> {"show_code_url"}
//	GET  /v3/global/papay/contracts/{contract_id}                       -> contract
//	GET  /v3/global/papay/contracts/out-contract-code/{code}?plan_id=   -> contract
//	POST /v3/global/papay/contracts/{contract_id}/terminate              -> 204
//
// Control API:
//
//	POST /sandbox/v1/sessions/{session_id}:sign      {"openid"?, "client_ip"?} -> 200 {contract_id, ...}
//	POST /sandbox/v1/sessions/{session_id}:decline   -> 200 session
//	GET  /sandbox/v1/sessions/{session_id}           -> session
//	POST /sandbox/v1/contracts/{contract_id}:terminate {"mode"?: "USER"|"PLATFORM"} -> 200 contract
//	GET  /sandbox/v1/contracts/{contract_id}         -> contract
//	GET  /sandbox/v1/notifications                   -> {"deliveries": [...]}
//
// Control errors are {"code","message"}: 404 NOT_FOUND (unknown session or contract),
// 410 SESSION_EXPIRED, 409 SESSION_CLOSED (already signed or declined), 409
// CONTRACT_EXISTS, 409 CONTRACT_TERMINATED, 403 USER_MISMATCH (other openid, or H5
// client IP differing from user_client_ip), 400 INVALID_ARGUMENT.
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
//
// # Sessions and notifications
//
// A session expires at expired_time, or 2 hours after pre-sign. PAPAY.SIGN goes to the
// session's success_notify_url, PAPAY.TERMINATE (merchant, user or platform) to the
// plan's termination URL (Options.TerminationNotifyURL, PlanTerminationNotifyURLs); a
// declined session sends nothing. Notification URLs must be absolute and carry no query;
// unlike WeChat Pay the sandbox also accepts http. Each notification is delivered by its
// own goroutine: any 2xx acknowledges it; otherwise it is retried after 15s, 15s, 30s,
// 3m, 30m, 30m, 30m, 30m and 60m (times Options.TimeScale), each attempt re-signed with
// a fresh timestamp and nonce while the id and body stay the same. Deliveries logs every
// attempt; WaitAttempts, WaitDelivered and WaitIdle let tests wait without sleeping.
//
// Times are RFC 3339 with a +08:00 offset, as WeChat Pay writes them. The resource of a
// notification is AEAD_AES_256_GCM under the APIv3 key with associated data "papay",
// original_type "papay" (WeChat's value is undocumented).
package sandbox
