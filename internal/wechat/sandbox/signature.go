package sandbox

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// SignatureType is the value of the Wechatpay-Signature-Type header and the scheme of the
// Authorization header.
const SignatureType = "WECHATPAY2-SHA256-RSA2048"

// Header names of WeChat Pay's signatures.
const (
	HeaderTimestamp     = "Wechatpay-Timestamp"
	HeaderNonce         = "Wechatpay-Nonce"
	HeaderSignature     = "Wechatpay-Signature"
	HeaderSerial        = "Wechatpay-Serial"
	HeaderSignatureType = "Wechatpay-Signature-Type"
	HeaderRequestID     = "Request-ID"
)

// SignMessage signs a response or notification the way WeChat Pay does: base64 of
// RSASSA-PKCS1-v1_5 with SHA-256 over "TIMESTAMP\nNONCE\nBODY\n".
func SignMessage(key *rsa.PrivateKey, timestamp int64, nonce string, body []byte) (string, error) {
	return signSHA256(key, responseMessage(strconv.FormatInt(timestamp, 10), nonce, body))
}

// SignatureHeaders returns the headers WeChat Pay puts on a signed response or
// notification: Wechatpay-Timestamp, -Nonce, -Signature, -Serial, -Signature-Type,
// Request-ID, and Content-Type: application/json when body is not empty.
func SignatureHeaders(key *rsa.PrivateKey, serial string, timestamp int64, nonce string, body []byte) (http.Header, error) {
	sig, err := SignMessage(key, timestamp, nonce, body)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set(HeaderTimestamp, strconv.FormatInt(timestamp, 10))
	h.Set(HeaderNonce, nonce)
	h.Set(HeaderSignature, sig)
	h.Set(HeaderSerial, serial)
	h.Set(HeaderSignatureType, SignatureType)
	h.Set(HeaderRequestID, newRequestID())
	if len(body) > 0 {
		h.Set("Content-Type", "application/json")
	}
	return h, nil
}

// Authorization returns the Authorization header value a merchant sends: the scheme and
// mchid, nonce_str, timestamp, serial_no and signature, where signature covers
// "METHOD\nREQUEST_URI\nTIMESTAMP\nNONCE\nBODY\n". Tests use it to forge requests.
func Authorization(mchID, serial string, key *rsa.PrivateKey, method, requestURI string,
	timestamp int64, nonce string, body []byte) (string, error) {
	ts := strconv.FormatInt(timestamp, 10)
	sig, err := signSHA256(key, requestMessage(method, requestURI, ts, nonce, body))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`%s mchid="%s",nonce_str="%s",timestamp="%s",serial_no="%s",signature="%s"`,
		SignatureType, mchID, nonce, ts, serial, sig), nil
}

func responseMessage(timestamp, nonce string, body []byte) []byte {
	msg := make([]byte, 0, len(timestamp)+len(nonce)+len(body)+3)
	msg = append(msg, timestamp...)
	msg = append(msg, '\n')
	msg = append(msg, nonce...)
	msg = append(msg, '\n')
	msg = append(msg, body...)
	return append(msg, '\n')
}

func requestMessage(method, requestURI, timestamp, nonce string, body []byte) []byte {
	msg := make([]byte, 0, len(method)+len(requestURI)+2)
	msg = append(msg, method...)
	msg = append(msg, '\n')
	msg = append(msg, requestURI...)
	msg = append(msg, '\n')
	return append(msg, responseMessage(timestamp, nonce, body)...)
}

func signSHA256(key *rsa.PrivateKey, msg []byte) (string, error) {
	if key == nil {
		return "", errors.New("sign: no private key")
	}
	digest := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

func verifySHA256(pub *rsa.PublicKey, msg []byte, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return errors.New("signature is not base64")
	}
	digest := sha256.Sum256(msg)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return errors.New("sign not match")
	}
	return nil
}
