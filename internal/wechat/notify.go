package wechat

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/papayd/papayd/internal/service"
)

const (
	// signatureType is the only Wechatpay-Signature-Type accepted.
	signatureType = "WECHATPAY2-SHA256-RSA2048"
	// maxClockSkew is how far Wechatpay-Timestamp may be from now, either way.
	maxClockSkew = 5 * time.Minute
	// aeadAlgorithm is the only resource encryption accepted.
	aeadAlgorithm = "AEAD_AES_256_GCM"
	aeadNonceSize = 12
)

// NotificationParser verifies and decrypts WeChat Pay notifications. It
// does not use the SDK's notify.Handler, which panics on some hostile
// inputs and reads the wall clock. It is safe for concurrent use.
//
// A notification signed under a serial the keys do not know (a platform
// certificate WeChat has just started to use) is verified a second time
// after the hook set with SetUnknownSerialHook (a CertRefresher's
// OnUnknownSerial) has had the chance to fetch it.
type NotificationParser struct {
	keys *Keys
	// aead opens the resources: made once from the APIv3 key, since
	// expanding the AES key and the GCM tables for every notification
	// cost more than the decryption. It is safe for concurrent use.
	aead cipher.AEAD
	now  func() time.Time
	hook atomic.Pointer[serialHook]
}

// NewNotificationParser builds a parser that verifies with keys (share the
// Client's, see Client.Keys), decrypts with the 32-byte APIv3 key, and
// judges timestamps by now.
func NewNotificationParser(keys *Keys, apiV3Key []byte, now func() time.Time) (*NotificationParser, error) {
	switch {
	case keys == nil:
		return nil, errors.New("wechat notifications: keys are required")
	case len(apiV3Key) != 32:
		return nil, fmt.Errorf("wechat notifications: the APIv3 key must be 32 bytes, not %d", len(apiV3Key))
	case now == nil:
		return nil, errors.New("wechat notifications: a clock is required")
	}
	aead, err := newAEAD(apiV3Key)
	if err != nil {
		return nil, fmt.Errorf("wechat notifications: %w", err)
	}
	return &NotificationParser{keys: keys, aead: aead, now: now}, nil
}

// SetUnknownSerialHook makes the parser call hook when a notification
// names a serial the keys do not know, and verify again if hook reports
// the serial known afterwards; typically a CertRefresher's
// OnUnknownSerial, which is rate-limited. nil removes the hook. It may be
// called while notifications are parsed.
func (p *NotificationParser) SetUnknownSerialHook(hook func(ctx context.Context, serial string) bool) {
	if hook == nil {
		p.hook.Store(nil)
		return
	}
	p.hook.Store(&hook)
}

// Parse is ParseContext without a context of its own: an on-demand
// certificate fetch is bounded by the Client's timeout only.
func (p *NotificationParser) Parse(h http.Header, body []byte) (service.Notification, error) {
	return p.ParseContext(context.Background(), h, body)
}

// ParseContext verifies a notification's signature over the raw body, then
// decrypts and decodes it. A notification that does not verify (missing
// headers, a stale or future timestamp, an unknown serial, a wrong
// signature) wraps service.ErrNotificationUnauthentic; a verified one that
// cannot be decrypted or decoded wraps service.ErrNotificationMalformed.
// Contract is set for PAPAY.SIGN and PAPAY.TERMINATE only, Transaction
// for TRANSACTION.SUCCESS only, Refund for REFUND.SUCCESS, REFUND.CLOSED
// and REFUND.ABNORMAL only (a refund resource without out_refund_no is
// malformed); other event types carry the plaintext in Resource alone.
// ctx bounds an on-demand certificate fetch. It never panics.
func (p *NotificationParser) ParseContext(ctx context.Context, h http.Header, body []byte) (service.Notification, error) {
	if err := p.verify(ctx, h, body); err != nil {
		return service.Notification{}, err
	}
	return p.decode(body)
}

func unauthentic(reason string) error {
	return fmt.Errorf("%w: %s", service.ErrNotificationUnauthentic, reason)
}

func malformed(reason string) error {
	return fmt.Errorf("%w: %s", service.ErrNotificationMalformed, reason)
}

// verify checks the Wechatpay-* headers and the signature over
// "TIMESTAMP\nNONCE\nBODY\n".
func (p *NotificationParser) verify(ctx context.Context, h http.Header, body []byte) error {
	var v [4]string
	for i, name := range [...]string{"Wechatpay-Serial", "Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce"} {
		if v[i] = strings.TrimSpace(h.Get(name)); v[i] == "" {
			return unauthentic("missing header " + name)
		}
	}
	serial, signature, ts, nonce := v[0], v[1], v[2], v[3]
	if t := strings.TrimSpace(h.Get("Wechatpay-Signature-Type")); t != "" && t != signatureType {
		return unauthentic("unsupported signature type")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return unauthentic("timestamp is not an integer")
	}
	if skew := p.now().Sub(time.Unix(sec, 0)); skew > maxClockSkew || skew < -maxClockSkew {
		return unauthentic("stale timestamp")
	}
	msg := make([]byte, 0, len(ts)+len(nonce)+len(body)+3)
	msg = append(append(append(append(append(msg, ts...), '\n'), nonce...), '\n'), body...)
	msg = append(msg, '\n')
	err = p.keys.Verify(ctx, serial, string(msg), signature)
	if errors.Is(err, errUnknownSerial) {
		if hook := p.hook.Load(); hook != nil && (*hook)(ctx, serial) {
			err = p.keys.Verify(ctx, serial, string(msg), signature)
		}
	}
	switch {
	case errors.Is(err, errUnknownSerial):
		return unauthentic("unknown serial")
	case err != nil:
		return unauthentic("signature does not verify")
	}
	return nil
}

// envelope is the notification body; the resource is encrypted.
type envelope struct {
	ID         string             `json:"id"`
	CreateTime looseTime          `json:"create_time"`
	EventType  string             `json:"event_type"`
	Summary    string             `json:"summary"`
	Resource   *encryptedResource `json:"resource"`
}

type encryptedResource struct {
	Algorithm      string     `json:"algorithm"`
	Ciphertext     sealedText `json:"ciphertext"`
	Nonce          string     `json:"nonce"`
	AssociatedData string     `json:"associated_data"`
}

// decode parses a verified body. Reasons never quote the plaintext.
func (p *NotificationParser) decode(body []byte) (service.Notification, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return service.Notification{}, malformed("body is not a notification object")
	}
	switch {
	case env.ID == "":
		return service.Notification{}, malformed("no id")
	case env.Resource == nil:
		return service.Notification{}, malformed("no resource")
	}
	plain, err := p.decrypt(env.Resource)
	if err != nil {
		return service.Notification{}, err
	}
	n := service.Notification{
		ID: env.ID, EventType: env.EventType, Summary: env.Summary,
		CreateTime: time.Time(env.CreateTime), Resource: plain,
	}
	// The merchants the resource names scope the id, whatever the event
	// type; a resource that is not an object, or whose merchant fields are
	// not all strings, names none. The resource of a contract or
	// transaction event is decoded once, its scope with it.
	switch {
	case n.EventType == service.EventContractSigned || n.EventType == service.EventContractTerminated:
		var sc scope
		if n.Contract, sc, err = decodeContractEvent(plain); err != nil {
			return service.Notification{}, err
		}
		n.SpMchID, n.SubMchID = sc.spMchID, sc.subMchID
	case n.EventType == service.EventTransactionSuccess:
		var sc scope
		if n.Transaction, sc, err = decodeTransactionEvent(plain); err != nil {
			return service.Notification{}, err
		}
		n.SpMchID, n.SubMchID = sc.spMchID, sc.subMchID
	default:
		sc := decodeScope(plain)
		n.SpMchID, n.SubMchID = sc.spMchID, sc.subMchID
		if _, ok := refundEventStatus[n.EventType]; ok {
			if n.Refund, err = decodeRefundEvent(n.EventType, plain); err != nil {
				return service.Notification{}, err
			}
		}
	}
	return n, nil
}

// scope is the merchants a resource names: sp_mchid (else mchid) and
// sub_mchid.
type scope struct {
	spMchID, subMchID string
}

// decodeScope reads the scope of a resource of any event type: none when
// it is not an object or a merchant field is not a string.
func decodeScope(plain []byte) scope {
	var v struct {
		SpMchID  string `json:"sp_mchid"`
		MchID    string `json:"mchid"`
		SubMchID string `json:"sub_mchid"`
	}
	if json.Unmarshal(plain, &v) != nil {
		return scope{}
	}
	return scope{spMchID: first(v.SpMchID, v.MchID), subMchID: v.SubMchID}
}

// scopeString is a merchant field decoded beside a typed resource: a JSON
// string, or null or absent (""); any other value sets bad instead of
// failing the decoding, as decodeScope's would fail alone.
type scopeString struct {
	v   string
	bad bool
}

func (s *scopeString) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
	case len(b) > 0 && b[0] == '"':
		if unquote(b, &s.v) != nil {
			s.bad = true
		}
	default:
		s.bad = true
	}
	return nil
}

// decrypt opens an AEAD_AES_256_GCM resource with the APIv3 key.
func (p *NotificationParser) decrypt(r *encryptedResource) ([]byte, error) {
	plain, err := openWith(p.aead, r.Algorithm, r.Nonce, r.Ciphertext, r.AssociatedData)
	if err != nil {
		return nil, malformed(err.Error())
	}
	return plain, nil
}

// sealedText is a resource's ciphertext: base64 of ciphertext ‖ tag,
// decoded as the JSON is read. Base64 needs no JSON escape, so the bytes
// between the quotes are decoded as they are, without first unquoting a
// few KiB and copying them into a string. Decoded here or at decryption,
// the ciphertext is the same, and so is the error: a JSON string that is
// not base64 sets bad, which openWith reports where it always did; a value
// that is not a JSON string fails the body, as a string field would.
type sealedText struct {
	b   []byte
	bad bool
}

var errNotString = errors.New("not a JSON string")

func (s *sealedText) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*s = sealedText{}
		return nil
	case len(b) < 2 || b[0] != '"':
		return errNotString
	case bytes.IndexByte(b, '\\') < 0:
		*s = decodeSealed(b[1 : len(b)-1])
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = decodeSealed([]byte(v))
	return nil
}

// decodeSealed decodes base64 text as base64.StdEncoding.DecodeString
// would.
func decodeSealed(text []byte) sealedText {
	b := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(b, text)
	if err != nil {
		return sealedText{bad: true}
	}
	return sealedText{b: b[:n]}
}

// openAEAD decrypts an AEAD_AES_256_GCM payload (a notification resource,
// a downloaded certificate) with the 32-byte APIv3 key: nonce is the
// 12-byte nonce string. Its errors never quote the payload.
func openAEAD(key []byte, algorithm, nonce string, sealed sealedText, aad string) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return openWith(aead, algorithm, nonce, sealed, aad)
}

// newAEAD is AES-256-GCM under the 32-byte APIv3 key.
func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, errors.New("decryption unavailable")
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, errors.New("decryption unavailable")
	}
	return gcm, nil
}

// openWith is openAEAD with the key's AEAD already made. The plaintext
// takes the place of the ciphertext: sealed is not used again.
func openWith(aead cipher.AEAD, algorithm, nonce string, sealed sealedText, aad string) ([]byte, error) {
	if algorithm != aeadAlgorithm {
		return nil, errors.New("unsupported resource algorithm")
	}
	if len(nonce) != aeadNonceSize {
		return nil, errors.New("resource nonce is not 12 bytes")
	}
	if sealed.bad {
		return nil, errors.New("resource ciphertext is not base64")
	}
	plain, err := aead.Open(sealed.b[:0], []byte(nonce), sealed.b, []byte(aad))
	if err != nil {
		return nil, errors.New("resource does not decrypt (wrong APIv3 key or tampered)")
	}
	return plain, nil
}

// contractResource is the plaintext of PAPAY.SIGN / PAPAY.TERMINATE.
type contractResource struct {
	SpMchID         string    `json:"sp_mchid"`
	MchID           string    `json:"mchid"`
	SubMchID        string    `json:"sub_mchid"`
	SpAppID         string    `json:"sp_appid"`
	AppID           string    `json:"appid"`
	SubAppID        string    `json:"sub_appid"`
	OutContractCode string    `json:"out_contract_code"`
	ContractID      string    `json:"contract_id"`
	PlanID          flexInt   `json:"plan_id"`
	OpenID          string    `json:"openid"`
	SubOpenID       string    `json:"sub_openid"`
	SpOpenID        string    `json:"sp_openid"`
	OperateTime     looseTime `json:"operate_time"`
	TerminationMode string    `json:"contract_termination_mode"`
}

// decodeContractEvent decodes the PAPAY.SIGN / PAPAY.TERMINATE resource
// and its scope (its merchant fields are strings, as decodeScope needs).
func decodeContractEvent(plain []byte) (*service.ContractEvent, scope, error) {
	var r *contractResource
	if err := json.Unmarshal(plain, &r); err != nil || r == nil {
		return nil, scope{}, malformed("resource is not a contract object")
	}
	if r.ContractID == "" && r.OutContractCode == "" {
		return nil, scope{}, malformed("contract resource names no contract")
	}
	ev := &service.ContractEvent{
		SpMchID:         first(r.SpMchID, r.MchID),
		Merchant:        service.Merchant{SubMchID: r.SubMchID, SPAppID: first(r.SpAppID, r.AppID), SubAppID: r.SubAppID},
		OutContractCode: r.OutContractCode,
		ContractID:      r.ContractID,
		PlanID:          int64(r.PlanID),
		OperateTime:     time.Time(r.OperateTime),
		TerminationMode: service.TerminationMode(r.TerminationMode),
	}
	// openid is the user under the app that signed: the sub-merchant's
	// app when there is one.
	if r.SubAppID != "" {
		ev.OpenID = first(r.OpenID, r.SubOpenID, r.SpOpenID)
	} else {
		ev.OpenID = first(r.OpenID, r.SpOpenID, r.SubOpenID)
	}
	return ev, scope{spMchID: ev.SpMchID, subMchID: r.SubMchID}, nil
}

// transactionEvent is the TRANSACTION.SUCCESS resource: the transaction
// object and the merchant fields of its scope.
type transactionEvent struct {
	SpMchID scopeString `json:"sp_mchid"`
	MchID   scopeString `json:"mchid"`
	transactionObject
}

// decodeTransactionEvent decodes the TRANSACTION.SUCCESS resource, and its
// scope, in one pass: the transaction object, with "transaction_id" or
// (generic naming) "id". Its fields are kept as WeChat gives them;
// trade_state is not filled in. The scope is decodeScope's: sub_mchid is a
// string of the transaction object, and sp_mchid and mchid that are not
// strings leave it empty.
func decodeTransactionEvent(plain []byte) (*service.RemoteTransaction, scope, error) {
	var o *transactionEvent
	if err := json.Unmarshal(plain, &o); err != nil || o == nil {
		return nil, scope{}, malformed("resource is not a transaction object")
	}
	t := o.transactionObject.remote()
	if t.OutTradeNo == "" {
		return nil, scope{}, malformed("transaction resource has no out_trade_no")
	}
	var sc scope
	if !o.SpMchID.bad && !o.MchID.bad {
		sc = scope{spMchID: first(o.SpMchID.v, o.MchID.v), subMchID: o.SubMchID}
	}
	return &t, sc, nil
}

// first returns the first non-empty string.
func first(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
