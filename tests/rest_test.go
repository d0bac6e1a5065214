package tests

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// restAgreement decodes a {"agreement": {...}} answer with the API's own
// JSON mapping, so a field the facade renames or drops fails the test.
func restAgreement(t *testing.T, raw json.RawMessage) *papayv1.Agreement {
	t.Helper()
	var a papayv1.Agreement
	if err := protojson.Unmarshal(raw, &a); err != nil {
		t.Fatalf("decode agreement %s: %v", raw, err)
	}
	return &a
}

func TestSigningFlowREST(t *testing.T) {
	t.Parallel()
	p := start(t, "")

	var pre struct {
		Agreement json.RawMessage `json:"agreement"`
		SessionID string          `json:"session_id"`
	}
	code := p.do(http.MethodPost, "/v1/agreements:presign", map[string]any{
		"plan_id": planID, "openid": "oUser-rest", "user_display_name": "Wong", "out_contract_code": "REST-0001",
	}, &pre)
	if code != http.StatusOK || pre.SessionID == "" {
		t.Fatalf("presign: HTTP %d session %q", code, pre.SessionID)
	}
	// JSON uses the proto field names.
	var raw map[string]any
	if err := json.Unmarshal(pre.Agreement, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["out_contract_code"] != "REST-0001" || raw["state"] != "AGREEMENT_STATE_PENDING" {
		t.Fatalf("presign agreement JSON = %s", pre.Agreement)
	}

	contractID := p.userSigns(pre.SessionID, nil)
	var got struct {
		Agreement json.RawMessage `json:"agreement"`
	}
	eventually(t, "SIGNED over REST", func() bool {
		if c := p.do(http.MethodGet, "/v1/agreements/out-contract-code/REST-0001?plan_id=4001", nil, &got); c != http.StatusOK {
			t.Fatalf("get by code: HTTP %d", c)
		}
		return restAgreement(t, got.Agreement).GetState() == papayv1.AgreementState_AGREEMENT_STATE_SIGNED
	})
	if c := p.do(http.MethodGet, "/v1/agreements/"+url.PathEscape(contractID), nil, &got); c != http.StatusOK {
		t.Fatalf("get by contract id: HTTP %d", c)
	}
	if a := restAgreement(t, got.Agreement); a.GetOutContractCode() != "REST-0001" || a.GetContractId() != contractID {
		t.Fatalf("get by contract id = %v", a)
	}

	var list struct {
		Agreements []json.RawMessage `json:"agreements"`
	}
	if c := p.do(http.MethodGet, "/v1/agreements?openid=oUser-rest&state=AGREEMENT_STATE_SIGNED", nil, &list); c != http.StatusOK || len(list.Agreements) != 1 {
		t.Fatalf("list: HTTP %d, %d agreements", c, len(list.Agreements))
	}

	if c := p.do(http.MethodPost, "/v1/agreements/"+contractID+":terminate", map[string]any{"termination_note": "moving away"}, &got); c != http.StatusOK {
		t.Fatalf("terminate: HTTP %d", c)
	}
	if a := restAgreement(t, got.Agreement); a.GetState() != papayv1.AgreementState_AGREEMENT_STATE_TERMINATED ||
		a.GetTerminationMode() != papayv1.TerminationMode_TERMINATION_MODE_MERCHANT {
		t.Fatalf("terminated = %v", a)
	}
}

// restError is the gateway's JSON error body (google.rpc.Status).
type restError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Type            string `json:"@type"`
		Reason          string `json:"reason"`
		FieldViolations []struct {
			Field string `json:"field"`
		} `json:"field_violations"`
	} `json:"details"`
}

func (e restError) reason() string {
	for _, d := range e.Details {
		if d.Reason != "" {
			return d.Reason
		}
	}
	return ""
}

func (e restError) fields() []string {
	var fs []string
	for _, d := range e.Details {
		for _, v := range d.FieldViolations {
			fs = append(fs, v.Field)
		}
	}
	return fs
}

func TestRESTErrors(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
		reason             string
		field              string
	}{
		{"missing plan", http.MethodPost, "/v1/agreements:presign", map[string]any{"openid": "o"}, 400, "INVALID_ARGUMENT", "plan_id"},
		{"unknown contract", http.MethodGet, "/v1/agreements/NOPE", nil, 404, "AGREEMENT_NOT_FOUND", ""},
		{"plan mismatch", http.MethodGet, "/v1/agreements/out-contract-code/NOPE?plan_id=1", nil, 404, "AGREEMENT_NOT_FOUND", ""},
		{"bad page size", http.MethodGet, "/v1/agreements?page_size=9999", nil, 400, "INVALID_ARGUMENT", "page_size"},
		{"bad page token", http.MethodGet, "/v1/agreements?page_token=garbage!", nil, 400, "INVALID_PAGE_TOKEN", "page_token"},
		{"terminate without note", http.MethodPost, "/v1/agreements/W1:terminate", map[string]any{}, 400, "INVALID_ARGUMENT", "termination_note"},
		{"unknown charge", http.MethodGet, "/v1/charges/T1", nil, 404, "CHARGE_NOT_FOUND", ""},
		{"charge without amount", http.MethodPost, "/v1/charges", map[string]any{"out_trade_no": "T1", "contract_id": "W1", "description": "d"}, 400, "INVALID_ARGUMENT", "amount.total"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e restError
			if got := p.do(tc.method, tc.path, tc.body, &e); got != tc.status {
				t.Fatalf("HTTP %d, want %d (%+v)", got, tc.status, e)
			}
			if e.Message == "" {
				t.Fatalf("error body has no message: %+v", e)
			}
			if tc.reason != "" && e.reason() != tc.reason {
				t.Fatalf("reason %q, want %q", e.reason(), tc.reason)
			}
			if tc.field != "" && (len(e.fields()) == 0 || e.fields()[0] != tc.field) {
				t.Fatalf("field violations %v, want %s", e.fields(), tc.field)
			}
		})
	}
}

// TestRESTHealth: GET /v1/health is grpc.health.v1 Check for REST callers,
// through the same gateway and interceptors as the API.
func TestRESTHealth(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	var ok struct {
		Status string `json:"status"`
	}
	if got := p.do(http.MethodGet, "/v1/health", nil, &ok); got != http.StatusOK || ok.Status != "SERVING" {
		t.Fatalf("GET /v1/health: HTTP %d %+v, want 200 SERVING", got, ok)
	}
	if got := p.do(http.MethodGet, "/v1/health?service=papay.v1.ChargeService", nil, &ok); got != http.StatusOK || ok.Status != "SERVING" {
		t.Fatalf("GET /v1/health?service=papay.v1.ChargeService: HTTP %d %+v, want 200 SERVING", got, ok)
	}
	var e restError
	if got := p.do(http.MethodGet, "/v1/health?service=nope", nil, &e); got != http.StatusNotFound || e.Message == "" {
		t.Fatalf("GET /v1/health?service=nope: HTTP %d %+v, want 404 with a message", got, e)
	}
}
