package sandbox_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/wechatpay-apiv3/wechatpay-go/core"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// contractObject is the contract JSON as a merchant decodes it.
type contractObject struct {
	SPMchID         string `json:"sp_mchid"`
	SubMchID        string `json:"sub_mchid"`
	SPAppID         string `json:"sp_appid"`
	SubAppID        string `json:"sub_appid"`
	ContractID      string `json:"contract_id"`
	PlanID          int64  `json:"plan_id"`
	OutContractCode string `json:"out_contract_code"`
	UserDisplayName string `json:"user_display_name"`
	OpenID          string `json:"openid"`
	State           string `json:"state"`
	SignedTime      string `json:"signed_time"`
	TerminatedTime  string `json:"terminated_time"`
	TerminationMode string `json:"termination_mode"`
	TerminationNote string `json:"termination_note"`
}

func (e *env) queryParams(extra ...string) string {
	v := url.Values{"sub_mchid": {e.creds.SubMchID}, "sp_appid": {e.creds.SPAppID}, "sub_appid": {e.creds.SubAppID}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return "?" + v.Encode()
}

func (e *env) getContract(t *testing.T, path string) (contractObject, error) {
	t.Helper()
	res, err := e.client.Get(context.Background(), e.apiURL+path)
	if err != nil {
		return contractObject{}, err
	}
	var c contractObject
	if err := core.UnMarshalResponse(res.Response, &c); err != nil {
		t.Fatal(err)
	}
	return c, nil
}

func TestQueryContract(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C600", "oQuery", e.sinkURL)
	want := contractObject{
		SPMchID: e.creds.MchID, SubMchID: e.creds.SubMchID, SPAppID: e.creds.SPAppID,
		SubAppID: e.creds.SubAppID, ContractID: c.ContractID, PlanID: planID,
		OutContractCode: "C600", UserDisplayName: "Zhang San", OpenID: "oQuery", State: "SIGNED",
		SignedTime: c.SignedTime.In(time.FixedZone("", 8*3600)).Format("2006-01-02T15:04:05+08:00"),
	}
	byID, err := e.getContract(t, contractsV3+"/"+c.ContractID+e.queryParams())
	if err != nil {
		t.Fatalf("query by id: %v", err)
	}
	if diff := cmp.Diff(want, byID); diff != "" {
		t.Errorf("by id (-want +got):\n%s", diff)
	}
	byCode, err := e.getContract(t, contractsV3+"/out-contract-code/C600"+e.queryParams("plan_id", strconv.Itoa(planID)))
	if err != nil {
		t.Fatalf("query by code: %v", err)
	}
	if diff := cmp.Diff(want, byCode); diff != "" {
		t.Errorf("by code (-want +got):\n%s", diff)
	}
}

func TestQueryContractNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{SubMchIDs: []string{"1900000110"}})
	c := e.signedContract(t, "C610", "oNF", e.sinkURL)
	e.presign(t, "miniprogram", e.presignBody("C611", "oPending", e.sinkURL))
	for name, path := range map[string]string{
		"unknown id":          contractsV3 + "/Wx00000000000000000000000000" + e.queryParams(),
		"other sub-merchant":  contractsV3 + "/" + c.ContractID + e.queryParams("sub_mchid", "1900000110"),
		"pending session":     contractsV3 + "/out-contract-code/C611" + e.queryParams("plan_id", strconv.Itoa(planID)),
		"other plan":          contractsV3 + "/out-contract-code/C610" + e.queryParams("plan_id", "124"),
		"never pre-signed":    contractsV3 + "/out-contract-code/C699" + e.queryParams("plan_id", strconv.Itoa(planID)),
		"code, other sub-mch": contractsV3 + "/out-contract-code/C610" + e.queryParams("plan_id", strconv.Itoa(planID), "sub_mchid", "1900000110"),
	} {
		_, err := e.getContract(t, path)
		if err == nil {
			t.Errorf("%s: found", name)
			continue
		}
		apiError(t, err, http.StatusNotFound, sandbox.CodeNotFound)
	}
}

func TestTerminateContract(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{TerminationNotifyURL: recv.URL})
	c := e.signedContract(t, "C620", "oTerm", e.sinkURL)
	terminate := func(id string) (*core.APIResult, error) {
		return e.client.Post(context.Background(), e.apiURL+contractsV3+"/"+id+"/terminate", map[string]any{
			"sp_appid": e.creds.SPAppID, "sub_mchid": e.creds.SubMchID, "sub_appid": e.creds.SubAppID,
			"termination_note": "User cancelled the subscription",
		})
	}
	res, err := terminate(c.ContractID)
	if err != nil {
		t.Fatalf("terminate: %v", err) // the SDK validated the signed 204
	}
	if res.Response.StatusCode != http.StatusNoContent || res.Response.ContentLength > 0 {
		t.Fatalf("status %d, length %d; want an empty 204", res.Response.StatusCode, res.Response.ContentLength)
	}

	n := recv.next(t)
	ended, _ := e.sb.Contract(c.ContractID)
	want := map[string]any{
		"sp_mchid": e.creds.MchID, "sub_mchid": e.creds.SubMchID, "sp_appid": e.creds.SPAppID,
		"sub_appid": e.creds.SubAppID, "out_contract_code": "C620", "plan_id": float64(planID),
		"contract_id": c.ContractID, "openid": "oTerm", "contract_termination_mode": "MERCHANT",
		"operate_time": ended.TerminatedTime.In(time.FixedZone("", 8*3600)).Format(time.RFC3339),
	}
	if diff := cmp.Diff(want, n.content); diff != "" {
		t.Errorf("PAPAY.TERMINATE payload (-want +got):\n%s", diff)
	}
	if n.req.EventType != sandbox.EventTerminate || n.req.ResourceType != "encrypt-resource" ||
		n.req.Resource.OriginalType != "papay" || n.req.Resource.AssociatedData != "papay" {
		t.Errorf("envelope %+v resource %+v", n.req, n.req.Resource)
	}

	got, err := e.getContract(t, contractsV3+"/"+c.ContractID+e.queryParams())
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "TERMINATED" || got.TerminationMode != "MERCHANT" ||
		got.TerminationNote != "User cancelled the subscription" || got.TerminatedTime == "" {
		t.Errorf("after terminate: %+v", got)
	}
	_, err = terminate(c.ContractID)
	apiError(t, err, http.StatusForbidden, sandbox.CodeContractNotExist)
	_, err = terminate("Wx00000000000000000000000000")
	apiError(t, err, http.StatusForbidden, sandbox.CodeContractNotExist)
}

func TestTerminateOtherSubMerchantsContract(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{SubMchIDs: []string{"1900000110"}})
	c := e.signedContract(t, "C630", "oOther", e.sinkURL)
	_, err := e.client.Post(context.Background(), e.apiURL+contractsV3+"/"+c.ContractID+"/terminate", map[string]any{
		"sp_appid": e.creds.SPAppID, "sub_mchid": "1900000110", "termination_note": "not mine",
	})
	apiError(t, err, http.StatusForbidden, sandbox.CodeContractNotExist)
	if got, _ := e.sb.Contract(c.ContractID); got.State != sandbox.StateSigned {
		t.Errorf("state %s, want SIGNED", got.State)
	}
}
