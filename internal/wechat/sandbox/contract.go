package sandbox

import (
	"io"
	"net/http"
	"time"
)

// ContractState is the state of a contract as the query APIs report it.
type ContractState string

// Contract states.
const (
	StateSigned     ContractState = "SIGNED"
	StateTerminated ContractState = "TERMINATED"
)

// TerminationMode says who ended a contract.
type TerminationMode string

// Termination modes the sandbox produces.
const (
	TerminatedByUser     TerminationMode = "USER"     // the user, inside WeChat
	TerminatedByMerchant TerminationMode = "MERCHANT" // the terminate API
	TerminatedByPlatform TerminationMode = "PLATFORM" // WeChat Pay itself
)

// Contract is a signed (or since terminated) auto-debit contract.
type Contract struct {
	SPMchID         string
	SubMchID        string
	SPAppID         string
	SubAppID        string
	ContractID      string
	PlanID          int64
	OutContractCode string
	UserDisplayName string
	OpenID          string
	State           ContractState
	SignedTime      time.Time
	TerminatedTime  time.Time
	TerminationMode TerminationMode
	TerminationNote string
}

// contractJSON is the contract object of the query APIs.
type contractJSON struct {
	SPMchID         string          `json:"sp_mchid"`
	SubMchID        string          `json:"sub_mchid"`
	SPAppID         string          `json:"sp_appid"`
	SubAppID        string          `json:"sub_appid,omitempty"`
	ContractID      string          `json:"contract_id"`
	PlanID          int64           `json:"plan_id"`
	OutContractCode string          `json:"out_contract_code"`
	UserDisplayName string          `json:"user_display_name,omitempty"`
	OpenID          string          `json:"openid"`
	State           ContractState   `json:"state"`
	SignedTime      string          `json:"signed_time,omitempty"`
	TerminatedTime  string          `json:"terminated_time,omitempty"`
	TerminationMode TerminationMode `json:"termination_mode,omitempty"`
	TerminationNote string          `json:"termination_note,omitempty"`
}

// MarshalJSON encodes the contract object exactly as the query APIs return it, times in
// RFC 3339 with +08:00.
func (c Contract) MarshalJSON() ([]byte, error) {
	return marshalJSON(contractJSON{
		SPMchID: c.SPMchID, SubMchID: c.SubMchID, SPAppID: c.SPAppID, SubAppID: c.SubAppID,
		ContractID: c.ContractID, PlanID: c.PlanID, OutContractCode: c.OutContractCode,
		UserDisplayName: c.UserDisplayName, OpenID: c.OpenID, State: c.State,
		SignedTime: wechatTime(c.SignedTime), TerminatedTime: wechatTime(c.TerminatedTime),
		TerminationMode: c.TerminationMode, TerminationNote: c.TerminationNote,
	})
}

// Contract returns a copy of the contract with this id.
func (s *Sandbox) Contract(contractID string) (Contract, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.contracts[contractID]
	if !ok {
		return Contract{}, false
	}
	return *c, true
}

// Contracts returns every contract, signed and terminated, oldest first (copies): with
// contract_id, out_contract_code, state and termination mode.
func (s *Sandbox) Contracts() []Contract {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Contract, len(s.contractList))
	for i, c := range s.contractList {
		out[i] = *c
	}
	return out
}

func (s *Sandbox) signedByCodeLocked(subMchID string, planID int64, code string) *Contract {
	c := s.contracts[s.byCode[codeKey{subMchID, planID, code}]]
	if c == nil || c.State != StateSigned {
		return nil
	}
	return c
}

func (s *Sandbox) signedByUserLocked(subMchID string, planID int64, openID string) *Contract {
	for _, c := range s.contracts {
		if c.State == StateSigned && c.SubMchID == subMchID && c.PlanID == planID && c.OpenID == openID {
			return c
		}
	}
	return nil
}

// checkQuery validates the query parameters shared by both contract queries.
func checkQuery(c *fieldChecker, q map[string][]string) (subMchID, spAppID string) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	subMchID, spAppID = get("sub_mchid"), get("sp_appid")
	c.str("sub_mchid", subMchID, 32, true)
	c.str("sp_appid", spAppID, 32, true)
	c.str("sub_appid", get("sub_appid"), 32, false)
	return subMchID, spAppID
}

// handleQueryByID serves GET /v3/global/papay/contracts/{contract_id}.
func (s *Sandbox) handleQueryByID(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("contract_id")
	path := fieldChecker{location: locPath}
	path.str("contract_id", id, 64, true)
	query := fieldChecker{location: locQuery}
	subMchID, spAppID := checkQuery(&query, r.URL.Query())
	if e := firstError(path.err, query.err); e != nil {
		writeAPIError(w, e)
		return
	}
	if e := s.authorize(subMchID, spAppID); e != nil {
		writeAPIError(w, e)
		return
	}
	c, ok := s.Contract(id)
	if !ok || c.SubMchID != subMchID {
		writeAPIError(w, notFound("the contract does not exist"))
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// handleQueryByCode serves GET /v3/global/papay/contracts/out-contract-code/{code}?plan_id=.
func (s *Sandbox) handleQueryByCode(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("out_contract_code")
	path := fieldChecker{location: locPath}
	path.str("out_contract_code", code, 32, true)
	query := fieldChecker{location: locQuery}
	q := r.URL.Query()
	planID := query.planIDString(q.Get("plan_id"))
	subMchID, spAppID := checkQuery(&query, q)
	if e := firstError(path.err, query.err); e != nil {
		writeAPIError(w, e)
		return
	}
	if e := s.authorize(subMchID, spAppID); e != nil {
		writeAPIError(w, e)
		return
	}
	s.mu.Lock()
	c, ok := s.contracts[s.byCode[codeKey{subMchID, planID, code}]]
	var out Contract
	if ok {
		out = *c
	}
	s.mu.Unlock()
	if !ok {
		writeAPIError(w, notFound("no contract was signed with this out_contract_code and plan_id"))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// terminateRequest is the body of the terminate API.
type terminateRequest struct {
	SPAppID         string `json:"sp_appid"`
	SubMchID        string `json:"sub_mchid"`
	SubAppID        string `json:"sub_appid"`
	TerminationNote string `json:"termination_note"`
}

// handleTerminate serves POST /v3/global/papay/contracts/{contract_id}/terminate: 204,
// then PAPAY.TERMINATE (mode MERCHANT) to the plan's termination URL.
func (s *Sandbox) handleTerminate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("contract_id")
	path := fieldChecker{location: locPath}
	path.str("contract_id", id, 64, true)
	if path.err != nil {
		writeAPIError(w, path.err)
		return
	}
	body, _ := io.ReadAll(r.Body) // already buffered by routeAPI
	var req terminateRequest
	if e := decodeBody(body, &req); e != nil {
		writeAPIError(w, e)
		return
	}
	c := fieldChecker{location: locBody}
	c.str("sp_appid", req.SPAppID, 32, true)
	c.str("sub_mchid", req.SubMchID, 32, true)
	c.str("sub_appid", req.SubAppID, 32, false)
	c.str("termination_note", req.TerminationNote, 256, true)
	e := c.err
	if e == nil {
		e = s.authorize(req.SubMchID, req.SPAppID)
	}
	if e == nil {
		_, err := s.terminate(id, req.SubMchID, TerminatedByMerchant, req.TerminationNote)
		if err != nil {
			e = contractNotExist()
		}
	}
	if e != nil {
		writeAPIError(w, e)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func firstError(errs ...*apiError) *apiError {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
