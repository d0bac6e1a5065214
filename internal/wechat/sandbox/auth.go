package sandbox

import (
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxClockSkew is how far a request timestamp may be from the server clock (exclusive).
const maxClockSkew = 5 * time.Minute

// authorization holds the items of an Authorization header.
type authorization struct {
	mchID, nonce, timestamp, serial, signature string
}

// parseAuthorization parses
// `WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",timestamp="..",serial_no="..",signature=".."`
// with the items in any order.
func parseAuthorization(header string) (authorization, error) {
	scheme, params, _ := strings.Cut(strings.TrimSpace(header), " ")
	if scheme != SignatureType {
		return authorization{}, fmt.Errorf("authorization must use the %s scheme", SignatureType)
	}
	items := map[string]string{}
	for part := range strings.SplitSeq(params, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return authorization{}, fmt.Errorf("malformed authorization item %q", part)
		}
		if _, dup := items[k]; dup {
			return authorization{}, fmt.Errorf("authorization item %s repeated", k)
		}
		items[k] = v[1 : len(v)-1]
	}
	for _, k := range []string{"mchid", "nonce_str", "timestamp", "serial_no", "signature"} {
		if items[k] == "" {
			return authorization{}, fmt.Errorf("authorization item %s is missing", k)
		}
	}
	return authorization{mchID: items["mchid"], nonce: items["nonce_str"],
		timestamp: items["timestamp"], serial: items["serial_no"], signature: items["signature"]}, nil
}

// authenticate checks the merchant's request signature over
// "METHOD\nREQUEST_URI\nTIMESTAMP\nNONCE\nBODY\n".
func (s *Sandbox) authenticate(r *http.Request, body []byte) *apiError {
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return signError(err.Error(), nil)
	}
	if a.mchID != s.creds.MchID {
		return signError(fmt.Sprintf("mchid %q is not a known merchant", a.mchID), nil)
	}
	if a.serial != s.creds.MerchantSerial {
		return signError(fmt.Sprintf("serial_no %q is not the merchant's API certificate", a.serial), nil)
	}
	if len(a.nonce) > 32 {
		return signError("nonce_str is longer than 32 characters", nil)
	}
	ts, err := strconv.ParseInt(a.timestamp, 10, 64)
	if err != nil {
		return signError("timestamp is not a Unix time in seconds", nil)
	}
	if skew := s.now().Sub(time.Unix(ts, 0)).Abs(); skew >= maxClockSkew {
		return signError("timestamp differs from the server time by 5 minutes or more", nil)
	}
	uri := requestURI(r)
	msg := requestMessage(r.Method, uri, a.timestamp, a.nonce, body)
	if err := verifySHA256(s.merchantPublicKey, msg, a.signature); err != nil {
		info := &signInformation{Method: r.Method, URL: uri, SignMessageLength: len(msg),
			TruncatedSignMessage: string(msg[:min(len(msg), 128)])}
		return signError(err.Error(), info)
	}
	return nil
}

// requestURI is the request target as the client sent and signed it: path and raw query.
func requestURI(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		return r.RequestURI
	}
	return r.URL.RequestURI() // absolute-form target (through a proxy) or a synthetic request
}

// checkMediaTypes rejects a body that is declared as something other than JSON and an
// Accept header that excludes JSON. Missing headers, "*/*" and the SDK's
// Content-Type: application/json on GET are all fine.
func checkMediaTypes(r *http.Request, body []byte) *apiError {
	if ct := r.Header.Get("Content-Type"); len(body) > 0 && ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return paramError("Content-Type", locHeader, ct, "the request body must be application/json")
		}
	}
	if accept := r.Header.Get("Accept"); accept != "" && !acceptsJSON(accept) {
		return paramError("Accept", locHeader, accept, "the response is application/json")
	}
	return nil
}

func acceptsJSON(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if mt == "*/*" || mt == "application/*" || mt == "application/json" {
			return true
		}
	}
	return false
}
