package sandbox_test

import (
	"net/http"
	"testing"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// TestLedgerViews: the listings a reconciliation compares with papayd's records.
func TestLedgerViews(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	a := e.signedContract(t, "CL00", "oLedger0", e.sinkURL)
	b := e.signedContract(t, "CL01", "oLedger1", e.sinkURL)
	if _, err := e.sb.UserTerminate(b.ContractID); err != nil {
		t.Fatal(err)
	}
	e.configure(t, a.OpenID, sandbox.PayerConfig{Balance: ptr[int64](15000)})
	paid := e.mustDeduct(t, e.deductBody(a.ContractID, "L000", e.sinkURL))
	_, err := e.deduct(t, e.deductBody(a.ContractID, "L001", e.sinkURL))
	apiError(t, err, http.StatusForbidden, sandbox.CodeNotEnough)
	e.mustDeduct(t, e.deductBody(a.ContractID, "L000", e.sinkURL)) // replay

	contracts := e.sb.Contracts()
	if len(contracts) != 2 || contracts[0].ContractID != a.ContractID || contracts[0].OutContractCode != "CL00" ||
		contracts[0].State != sandbox.StateSigned || contracts[1].ContractID != b.ContractID ||
		contracts[1].State != sandbox.StateTerminated || contracts[1].TerminationMode != sandbox.TerminatedByUser {
		t.Errorf("contracts %+v", contracts)
	}
	orders := e.sb.Orders()
	if len(orders) != 2 {
		t.Fatalf("orders %+v", orders)
	}
	if o := orders[0]; o.OutTradeNo != "L000" || o.TransactionID != paid.TransactionID || o.TradeState != sandbox.TradeSuccess ||
		o.Total != 10000 || o.Currency != "HKD" || o.Deductions != 1 || o.Requests != 2 {
		t.Errorf("first order %+v", o)
	}
	if o := orders[1]; o.OutTradeNo != "L001" || o.TradeState != sandbox.TradePayError || o.Deductions != 0 {
		t.Errorf("second order %+v", o)
	}

	status, out := e.control(t, http.MethodGet, "/sandbox/v1/contracts", nil)
	list, _ := out["contracts"].([]any)
	if status != http.StatusOK || len(list) != 2 {
		t.Fatalf("GET contracts: %d %v", status, out)
	}
	if c := list[1].(map[string]any); c["contract_id"] != b.ContractID || c["state"] != "TERMINATED" ||
		c["termination_mode"] != "USER" || c["out_contract_code"] != "CL01" {
		t.Errorf("contract %v", c)
	}
}
