package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/health"

	"github.com/papayd/papayd"
	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/rpc"
)

// openAPIDoc is the part of the served document the tests read.
type openAPIDoc struct {
	Swagger string `json:"swagger"`
	Info    struct {
		Title       string `json:"title"`
		Version     string `json:"version"`
		Description string `json:"description"`
	} `json:"info"`
	Paths       map[string]map[string]openAPIOperation `json:"paths"`
	Definitions map[string]json.RawMessage             `json:"definitions"`
}

type openAPIOperation struct {
	OperationID string   `json:"operationId"`
	Tags        []string `json:"tags"`
	Parameters  []struct {
		Name     string `json:"name"`
		In       string `json:"in"`
		Required bool   `json:"required"`
	} `json:"parameters"`
	Responses map[string]struct {
		Schema struct {
			Ref string `json:"$ref"`
		} `json:"schema"`
	} `json:"responses"`
}

// servedOpenAPI is /openapi.json as papayd's HTTP port serves it, with
// the document papayd embeds.
func servedOpenAPI(t *testing.T) (openAPIDoc, []byte) {
	t.Helper()
	mux := NewMux(Routes{
		Gateway: http.NotFoundHandler(), Notify: http.NotFoundHandler(), Store: &fakeStore{}, OpenAPI: papayd.OpenAPI,
		Log: slog.New(slog.DiscardHandler), Guard: Guard{AllowedHosts: DefaultAllowedHosts("127.0.0.1:8080")},
	})
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/openapi.json", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("/openapi.json: HTTP %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var doc openAPIDoc
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("/openapi.json: %v", err)
	}
	return doc, rec.Body.Bytes()
}

// TestOpenAPIDocument: the served document names papayd, documents the
// error shape on every RPC operation, requires plan_id where the
// merchant's contract number is the key, and covers the paths that are
// not RPCs.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc, raw := servedOpenAPI(t)

	if doc.Swagger != "2.0" || doc.Info.Title != "papayd API" || doc.Info.Version != "v1" || doc.Info.Description == "" {
		t.Errorf("info: swagger %q, %+v", doc.Swagger, doc.Info)
	}

	rpcs := 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if !slices.Contains(op.Tags, "AgreementService") && !slices.Contains(op.Tags, "ChargeService") &&
				!slices.Contains(op.Tags, "RefundService") && !slices.Contains(op.Tags, "AuditService") {
				continue
			}
			rpcs++
			for _, code := range []string{"400", "401", "403", "404", "409", "429", "503", "default"} {
				if got := op.Responses[code].Schema.Ref; got != "#/definitions/Error" {
					t.Errorf("%s %s: response %s has schema %q, want the Error definition", method, path, code, got)
				}
			}
		}
	}
	if rpcs != 15 {
		t.Errorf("%d RPC operations documented, want 15 (12 RPCs, 3 of them with a second binding)", rpcs)
	}
	// Every operation needs the bearer key but the probes and WeChat's callback.
	var sec struct {
		SecurityDefinitions map[string]struct{ Type, In, Name string } `json:"securityDefinitions"`
		Security            []map[string][]string                      `json:"security"`
		Paths               map[string]map[string]struct {
			Security *[]map[string][]string `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &sec); err != nil {
		t.Fatal(err)
	}
	if d := sec.SecurityDefinitions["BearerKey"]; d.Type != "apiKey" || d.In != "header" || d.Name != "Authorization" ||
		len(sec.Security) != 1 || sec.Security[0]["BearerKey"] == nil {
		t.Errorf("security: %+v %+v", sec.SecurityDefinitions, sec.Security)
	}
	for _, path := range []string{"/healthz", "/readyz", "/v1/health", "/wechatpay/notify"} {
		for method, op := range sec.Paths[path] {
			if op.Security == nil || len(*op.Security) != 0 {
				t.Errorf("%s %s needs a key", method, path)
			}
		}
	}

	// The error shape: google.rpc.Status with ErrorInfo and BadRequest.
	var errSchema, detail struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(doc.Definitions["Error"], &errSchema); err != nil {
		t.Fatalf("Error definition: %v", err)
	}
	if err := json.Unmarshal(doc.Definitions["ErrorDetail"], &detail); err != nil {
		t.Fatalf("ErrorDetail definition: %v", err)
	}
	for _, p := range []string{"code", "message", "details"} {
		if _, ok := errSchema.Properties[p]; !ok {
			t.Errorf("Error lacks %s", p)
		}
	}
	for _, p := range []string{"@type", "reason", "domain", "field_violations"} {
		if _, ok := detail.Properties[p]; !ok {
			t.Errorf("ErrorDetail lacks %s", p)
		}
	}

	byCode := doc.Paths["/v1/agreements/out-contract-code/{out_contract_code}"]["get"]
	params := map[string]bool{}
	for _, p := range byCode.Parameters {
		params[p.In+" "+p.Name] = p.Required
	}
	if req, ok := params["query plan_id"]; !ok || !req {
		t.Errorf("out-contract-code route: plan_id required=%v present=%v; parameters %+v", req, ok, byCode.Parameters)
	}
	for _, stray := range []string{"query contract_id", "query out_contract_code"} {
		if _, ok := params[stray]; ok {
			t.Errorf("out-contract-code route documents %s", stray)
		}
	}

	// The two routes of GetRefund each document their own key only.
	for path, key := range map[string]string{
		"/v1/refunds/{out_refund_no}": "out_refund_no", "/v1/refunds/refund-id/{refund_id}": "refund_id",
	} {
		var got []string
		for _, p := range doc.Paths[path]["get"].Parameters {
			got = append(got, p.In+" "+p.Name)
		}
		if want := []string{"path " + key, "query refresh"}; !slices.Equal(got, want) {
			t.Errorf("GET %s parameters %v, want %v", path, got, want)
		}
	}

	for path, method := range map[string]string{"/healthz": "get", "/readyz": "get", "/v1/health": "get", "/wechatpay/notify": "post"} {
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("the document lacks %s %s", strings.ToUpper(method), path)
		}
	}
	if tags := doc.Paths["/wechatpay/notify"]["post"].Tags; !slices.Equal(tags, []string{"WeChatPay"}) {
		t.Errorf("/wechatpay/notify tags %v, want WeChatPay (called by WeChat Pay, not by internal callers)", tags)
	}

	// Every $ref resolves.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, found := doc.Definitions[strings.TrimPrefix(ref, "#/definitions/")]; !found || !strings.HasPrefix(ref, "#/definitions/") {
					t.Errorf("$ref %q does not resolve", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var all any
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	walk(all)
}

// TestOpenAPIPathsAreRouted: every documented operation reaches a handler
// on papayd's HTTP port (the gateway's RPCs answer UNIMPLEMENTED here),
// none is a routing 404 or 405.
func TestOpenAPIPathsAreRouted(t *testing.T) {
	t.Parallel()
	doc, _ := servedOpenAPI(t)
	gw, err := NewGateway(context.Background(), rpc.Local{Agreements: papayv1.UnimplementedAgreementServiceServer{},
		Charges: papayv1.UnimplementedChargeServiceServer{}, Refunds: papayv1.UnimplementedRefundServiceServer{}, Audit: papayv1.UnimplementedAuditServiceServer{}, Events: papayv1.UnimplementedEventServiceServer{},
		Webhooks: papayv1.UnimplementedWebhookServiceServer{}, Health: health.NewServer()})
	if err != nil {
		t.Fatal(err)
	}
	notify := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux := NewMux(Routes{
		Gateway: gw, Notify: notify, Store: &fakeStore{}, OpenAPI: papayd.OpenAPI,
		Log: slog.New(slog.DiscardHandler), Guard: Guard{AllowedHosts: DefaultAllowedHosts("127.0.0.1:8080")},
	})
	want := map[string]int{"/healthz": 200, "/readyz": 200, "/v1/health": 200, "/wechatpay/notify": http.StatusTeapot}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			url := path
			for _, p := range op.Parameters {
				if p.In == "path" {
					url = strings.ReplaceAll(url, "{"+p.Name+"}", "X")
				}
			}
			body := strings.NewReader("")
			if method == "post" {
				body = strings.NewReader("{}")
			}
			req := httptest.NewRequest(strings.ToUpper(method), "http://127.0.0.1:8080"+url, body)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			code, ok := want[path]
			if !ok {
				code = http.StatusNotImplemented
			}
			if rec.Code != code {
				t.Errorf("%s %s (%s): HTTP %d %s, want %d", strings.ToUpper(method), url, op.OperationID, rec.Code, rec.Body, code)
			}
		}
	}
}
