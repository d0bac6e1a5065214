package sandbox

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// controlError is the body of a control API error.
type controlError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// newControlMux routes the control API. ServeMux wildcards are whole segments, so the
// custom verbs ("{id}:sign") are split off by hand.
func (s *Sandbox) newControlMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sandbox/v1/sessions/{session_id}", s.controlGetSession)
	mux.HandleFunc("POST /sandbox/v1/sessions/{action}", s.controlSessionAction)
	mux.HandleFunc("GET /sandbox/v1/contracts", s.controlContracts)
	mux.HandleFunc("GET /sandbox/v1/contracts/{contract_id}", s.controlGetContract)
	mux.HandleFunc("POST /sandbox/v1/contracts/{action}", s.controlContractAction)
	mux.HandleFunc("GET /sandbox/v1/notifications", s.controlNotifications)
	mux.HandleFunc("GET /sandbox/v1/payers/{openid}", s.controlGetPayer)
	mux.HandleFunc("POST /sandbox/v1/payers/{action}", s.controlPayerAction)
	mux.HandleFunc("GET /sandbox/v1/orders", s.controlOrders)
	mux.HandleFunc("GET /sandbox/v1/orders/{out_trade_no}", s.controlGetOrder)
	mux.HandleFunc("GET /sandbox/v1/orders/{out_trade_no}/refunds", s.controlOrderRefunds)
	mux.HandleFunc("GET /sandbox/v1/refunds", s.controlRefunds)
	mux.HandleFunc("GET /sandbox/v1/refunds/{out_refund_no}", s.controlGetRefund)
	mux.HandleFunc("POST /sandbox/v1/refunds/{action}", s.controlRefundAction)
	mux.HandleFunc("GET /sandbox/v1/faults", s.controlGetFaults)
	mux.HandleFunc("POST /sandbox/v1/faults", s.controlSetFaults)
	mux.HandleFunc("DELETE /sandbox/v1/faults", s.controlClearFaults)
	mux.HandleFunc("GET /sandbox/v1/platform", s.controlGetPlatform)
	mux.HandleFunc("POST /sandbox/v1/platform:rotate", s.controlRotatePlatform)
	mux.HandleFunc("POST /sandbox/v1/platform:retire", s.controlRetirePlatform)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, controlError{"NOT_FOUND", "no such control endpoint: " + r.Method + " " + r.URL.Path})
	})
	return mux
}

func (s *Sandbox) controlGetSession(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.Session(r.PathValue("session_id"))
	if !ok {
		writeControlError(w, ErrSessionNotFound)
		return
	}
	writeJSON(w, http.StatusOK, sess)
}

// controlSessionAction serves POST /sandbox/v1/sessions/{id}:sign and {id}:decline.
func (s *Sandbox) controlSessionAction(w http.ResponseWriter, r *http.Request) {
	id, verb := cutVerb(r.PathValue("action"))
	switch verb {
	case "sign":
		var u User
		if !decodeOptional(w, r, &u) {
			return
		}
		c, err := s.SignSession(id, u)
		if err != nil {
			writeControlError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"contract_id": c.ContractID, "out_contract_code": c.OutContractCode,
			"plan_id": c.PlanID, "openid": c.OpenID,
		})
	case "decline":
		if err := s.DeclineSession(id); err != nil {
			writeControlError(w, err)
			return
		}
		sess, _ := s.Session(id)
		writeJSON(w, http.StatusOK, sess)
	default:
		writeJSON(w, http.StatusNotFound, controlError{"NOT_FOUND", "use {session_id}:sign or {session_id}:decline"})
	}
}

func (s *Sandbox) controlGetContract(w http.ResponseWriter, r *http.Request) {
	c, ok := s.Contract(r.PathValue("contract_id"))
	if !ok {
		writeControlError(w, ErrContractNotFound)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// controlContractAction serves POST /sandbox/v1/contracts/{id}:terminate with an optional
// body {"mode":"USER"|"PLATFORM"} (default USER).
func (s *Sandbox) controlContractAction(w http.ResponseWriter, r *http.Request) {
	id, verb := cutVerb(r.PathValue("action"))
	if verb != "terminate" {
		writeJSON(w, http.StatusNotFound, controlError{"NOT_FOUND", "use {contract_id}:terminate"})
		return
	}
	var req struct {
		Mode TerminationMode `json:"mode"`
	}
	if !decodeOptional(w, r, &req) {
		return
	}
	var (
		c   Contract
		err error
	)
	switch req.Mode {
	case "", TerminatedByUser:
		c, err = s.UserTerminate(id)
	case TerminatedByPlatform:
		c, err = s.PlatformTerminate(id)
	default:
		writeJSON(w, http.StatusBadRequest, controlError{"INVALID_ARGUMENT", "mode must be USER or PLATFORM"})
		return
	}
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Sandbox) controlNotifications(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string][]Delivery{"deliveries": s.Deliveries()})
}

func (s *Sandbox) controlGetPayer(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Payer(r.PathValue("openid")))
}

// controlPayerAction serves POST /sandbox/v1/payers/{openid}:configure with a PayerConfig
// body; unknown fields are rejected so that a misspelt setting does not pass unnoticed.
func (s *Sandbox) controlPayerAction(w http.ResponseWriter, r *http.Request) {
	openID, verb := cutVerb(r.PathValue("action"))
	if verb != "configure" {
		writeJSON(w, http.StatusNotFound, controlError{"NOT_FOUND", "use {openid}:configure"})
		return
	}
	var cfg PayerConfig
	if !decodeStrict(w, r, &cfg, "a payer configuration") {
		return
	}
	p, err := s.ConfigurePayer(openID, cfg)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// controlOrders serves GET /sandbox/v1/orders: the whole ledger.
func (s *Sandbox) controlOrders(w http.ResponseWriter, _ *http.Request) {
	orders := s.Orders()
	deductions := 0
	for _, o := range orders {
		deductions += o.Deductions
	}
	writeJSON(w, http.StatusOK, map[string]any{"orders": orders, "deductions": deductions})
}

// controlGetOrder serves GET /sandbox/v1/orders/{out_trade_no}[?sub_mchid=].
func (s *Sandbox) controlGetOrder(w http.ResponseWriter, r *http.Request) {
	no, subMchID := r.PathValue("out_trade_no"), r.URL.Query().Get("sub_mchid")
	var (
		o     Order
		found bool
	)
	if subMchID == "" {
		o, found = s.Order(no)
	} else {
		for _, each := range s.Orders() {
			if each.OutTradeNo == no && each.SubMchID == subMchID {
				o, found = each, true
			}
		}
	}
	if !found {
		writeControlError(w, ErrOrderNotFound)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// controlContracts serves GET /sandbox/v1/contracts: every contract, oldest first.
func (s *Sandbox) controlContracts(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string][]Contract{"contracts": s.Contracts()})
}

func (s *Sandbox) controlGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.faultsView())
}

// controlSetFaults serves POST /sandbox/v1/faults with a Faults body; unknown fields are
// rejected.
func (s *Sandbox) controlSetFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if !decodeStrict(w, r, &f, "a fault configuration") {
		return
	}
	if err := s.SetFaults(f); err != nil {
		writeJSON(w, http.StatusBadRequest, controlError{"INVALID_ARGUMENT", err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, s.faultsView())
}

func (s *Sandbox) controlClearFaults(w http.ResponseWriter, _ *http.Request) {
	s.ClearFaults()
	writeJSON(w, http.StatusOK, s.faultsView())
}

func (s *Sandbox) controlGetPlatform(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.platformView())
}

func (s *Sandbox) controlRotatePlatform(w http.ResponseWriter, _ *http.Request) {
	if _, err := s.RotatePlatformCertificate(); err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.platformView())
}

func (s *Sandbox) controlRetirePlatform(w http.ResponseWriter, _ *http.Request) {
	retired := s.RetireOldCertificates()
	v := s.platformView()
	v.Retired = retired
	writeJSON(w, http.StatusOK, v)
}

// decodeStrict decodes a JSON body into v, rejecting unknown fields; it answers 400
// and returns false on failure.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any, what string) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err == nil && len(strings.TrimSpace(string(body))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		err = dec.Decode(v)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, controlError{"INVALID_ARGUMENT", "the body must be " + what + ": " + err.Error()})
		return false
	}
	return true
}

// cutVerb splits "ID:verb" at the last colon.
func cutVerb(action string) (id, verb string) {
	i := strings.LastIndexByte(action, ':')
	if i < 0 {
		return action, ""
	}
	return action[:i], action[i+1:]
}

// decodeOptional decodes an optional JSON body into v; it answers 400 and returns false
// on malformed JSON.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err == nil && len(strings.TrimSpace(string(body))) > 0 {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, controlError{"INVALID_ARGUMENT", "the body must be a JSON object"})
		return false
	}
	return true
}

// writeControlError maps the user-action errors to statuses.
func writeControlError(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, "INTERNAL"
	switch {
	case errors.Is(err, ErrSessionNotFound), errors.Is(err, ErrContractNotFound), errors.Is(err, ErrOrderNotFound),
		errors.Is(err, ErrRefundNotFound):
		status, code = http.StatusNotFound, "NOT_FOUND"
	case errors.Is(err, ErrSessionExpired):
		status, code = http.StatusGone, "SESSION_EXPIRED"
	case errors.Is(err, ErrSessionClosed):
		status, code = http.StatusConflict, "SESSION_CLOSED"
	case errors.Is(err, ErrContractExists):
		status, code = http.StatusConflict, "CONTRACT_EXISTS"
	case errors.Is(err, ErrContractTerminated):
		status, code = http.StatusConflict, "CONTRACT_TERMINATED"
	case errors.Is(err, ErrUserMismatch):
		status, code = http.StatusForbidden, "USER_MISMATCH"
	case errors.Is(err, ErrInvalidPayerConfig), errors.Is(err, ErrInvalidResolution):
		status, code = http.StatusBadRequest, "INVALID_ARGUMENT"
	case errors.Is(err, ErrRefundNotAbnormal):
		status, code = http.StatusConflict, "REFUND_NOT_ABNORMAL"
	}
	writeJSON(w, status, controlError{code, err.Error()})
}
