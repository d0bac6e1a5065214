package sandbox

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
)

// Notification event types.
const (
	EventSign               = "PAPAY.SIGN"
	EventTerminate          = "PAPAY.TERMINATE"
	EventTransactionSuccess = "TRANSACTION.SUCCESS"
	EventRefundSuccess      = "REFUND.SUCCESS"
	EventRefundClosed       = "REFUND.CLOSED"
	EventRefundAbnormal     = "REFUND.ABNORMAL"
)

// Constants of the notification envelope. Contract events (PAPAY.*) use the papay
// original type and associated data, TRANSACTION.* events the transaction ones,
// REFUND.* events the refund ones.
const (
	ResourceTypeEncrypted     = "encrypt-resource"
	AlgorithmAESGCM           = "AEAD_AES_256_GCM"
	OriginalTypePapay         = "papay"
	AssociatedDataPapay       = "papay"
	OriginalTypeTransaction   = "transaction"
	AssociatedDataTransaction = "transaction"
	OriginalTypeRefund        = "refund"
	AssociatedDataRefund      = "refund"
)

// resourceTypes returns the original_type and associated data of eventType's resource.
func resourceTypes(eventType string) (originalType, associatedData string) {
	if strings.HasPrefix(eventType, "TRANSACTION.") {
		return OriginalTypeTransaction, AssociatedDataTransaction
	}
	if strings.HasPrefix(eventType, "REFUND.") {
		return OriginalTypeRefund, AssociatedDataRefund
	}
	return OriginalTypePapay, AssociatedDataPapay
}

// Notification is the JSON body WeChat Pay POSTs to a notification URL.
type Notification struct {
	ID           string            `json:"id"`
	CreateTime   string            `json:"create_time"`
	ResourceType string            `json:"resource_type"`
	EventType    string            `json:"event_type"`
	Summary      string            `json:"summary"`
	Resource     EncryptedResource `json:"resource"`
}

// EncryptedResource is a notification's AES-256-GCM encrypted payload. Ciphertext is
// base64 of the ciphertext followed by the 16-byte tag; Nonce is the 12-byte GCM nonce
// as ASCII; AssociatedData is the GCM additional data.
type EncryptedResource struct {
	OriginalType   string `json:"original_type"`
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"`
	AssociatedData string `json:"associated_data"`
	Nonce          string `json:"nonce"`
}

// ContractResource is the decrypted payload of PAPAY.SIGN and PAPAY.TERMINATE
// (institutional mode).
type ContractResource struct {
	SPMchID                 string          `json:"sp_mchid"`
	SubMchID                string          `json:"sub_mchid"`
	SPAppID                 string          `json:"sp_appid"`
	SubAppID                string          `json:"sub_appid,omitempty"`
	OutContractCode         string          `json:"out_contract_code"`
	PlanID                  int64           `json:"plan_id"`
	ContractID              string          `json:"contract_id"`
	OpenID                  string          `json:"openid"`
	OperateTime             string          `json:"operate_time"`
	ContractTerminationMode TerminationMode `json:"contract_termination_mode,omitempty"`
}

// Resource is the notification payload of c for eventType: operate_time is the signing
// time for PAPAY.SIGN; PAPAY.TERMINATE adds the termination time and mode.
func (c Contract) Resource(eventType string) ContractResource {
	r := ContractResource{
		SPMchID: c.SPMchID, SubMchID: c.SubMchID, SPAppID: c.SPAppID, SubAppID: c.SubAppID,
		OutContractCode: c.OutContractCode, PlanID: c.PlanID, ContractID: c.ContractID,
		OpenID: c.OpenID, OperateTime: wechatTime(c.SignedTime),
	}
	if eventType == EventTerminate {
		r.OperateTime = wechatTime(c.TerminatedTime)
		r.ContractTerminationMode = c.TerminationMode
	}
	return r
}

// EncryptResource encrypts plaintext with AEAD_AES_256_GCM under the 32-byte apiV3Key,
// with a fresh 12-character nonce and the given associated data. OriginalType is left
// for the caller.
func EncryptResource(apiV3Key, plaintext []byte, associatedData string) (EncryptedResource, error) {
	if len(apiV3Key) != 32 {
		return EncryptedResource{}, fmt.Errorf("encrypt resource: APIv3 key is %d bytes, want 32", len(apiV3Key))
	}
	block, err := aes.NewCipher(apiV3Key)
	if err != nil {
		return EncryptedResource{}, fmt.Errorf("encrypt resource: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return EncryptedResource{}, fmt.Errorf("encrypt resource: %w", err)
	}
	nonce := newResourceNonce()
	sealed := gcm.Seal(nil, []byte(nonce), plaintext, []byte(associatedData))
	return EncryptedResource{
		Algorithm:      AlgorithmAESGCM,
		Ciphertext:     base64.StdEncoding.EncodeToString(sealed),
		AssociatedData: associatedData,
		Nonce:          nonce,
	}, nil
}

// BuildNotification returns exactly what the sandbox would POST for a notification:
// the signed headers (timestamp now) and the body whose resource is resource encrypted
// under the APIv3 key (original_type and associated data "transaction" for
// TRANSACTION.* events, "refund" for REFUND.* events, "papay" otherwise). resource, typically a ContractResource or a
// TransactionResource altered at will, is marshalled to JSON unless it is already
// []byte. An empty id gets a fresh one.
func (s *Sandbox) BuildNotification(eventType, id string, resource any) (http.Header, []byte, error) {
	body, err := s.notificationBody(eventType, id, resource)
	if err != nil {
		return nil, nil, err
	}
	key, serial := s.signer(nil)
	h, err := SignatureHeaders(key, serial, s.now().Unix(), newNonce(), body)
	if err != nil {
		return nil, nil, fmt.Errorf("build notification: %w", err)
	}
	return h, body, nil
}

// notificationBody builds and encodes the envelope of a notification.
func (s *Sandbox) notificationBody(eventType, id string, resource any) ([]byte, error) {
	plaintext, ok := resource.([]byte)
	if !ok {
		var err error
		if plaintext, err = marshalJSON(resource); err != nil {
			return nil, fmt.Errorf("build notification: %w", err)
		}
	}
	originalType, associatedData := resourceTypes(eventType)
	enc, err := EncryptResource(s.creds.APIv3Key, plaintext, associatedData)
	if err != nil {
		return nil, fmt.Errorf("build notification: %w", err)
	}
	enc.OriginalType = originalType
	now := s.now()
	if id == "" {
		id = newNotificationID(now)
	}
	body, err := marshalJSON(Notification{
		ID: id, CreateTime: wechatTime(now), ResourceType: ResourceTypeEncrypted,
		EventType: eventType, Summary: summary(eventType), Resource: enc,
	})
	if err != nil {
		return nil, fmt.Errorf("build notification: %w", err)
	}
	return body, nil
}

func summary(eventType string) string {
	switch eventType {
	case EventSign:
		return "签约成功"
	case EventTerminate:
		return "解约成功"
	case EventTransactionSuccess:
		return "支付成功"
	case EventRefundSuccess:
		return "退款成功"
	case EventRefundClosed:
		return "退款关闭"
	case EventRefundAbnormal:
		return "退款异常"
	default:
		return "通知"
	}
}
