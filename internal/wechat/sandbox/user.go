package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
)

// Errors of the user actions (SignSession, DeclineSession, UserTerminate,
// PlatformTerminate). The control API maps them to HTTP statuses.
var (
	ErrSessionNotFound    = errors.New("sandbox: session not found")
	ErrSessionExpired     = errors.New("sandbox: session expired")
	ErrSessionClosed      = errors.New("sandbox: session already signed or declined")
	ErrUserMismatch       = errors.New("sandbox: user does not match the session")
	ErrContractExists     = errors.New("sandbox: a signed contract already exists")
	ErrContractNotFound   = errors.New("sandbox: contract not found")
	ErrContractTerminated = errors.New("sandbox: contract already terminated")
)

// User is the WeChat user acting on a session.
type User struct {
	// OpenID of the user. Sessions of the mini program, APP and JSAPI channels already
	// name the user; H5 and WEB sessions take this one, or a generated openid.
	OpenID string `json:"openid,omitempty"`
	// ClientIP, if set, must equal the session's user_client_ip (H5 signing checks it).
	ClientIP string `json:"client_ip,omitempty"`
}

// SignSession is the user agreeing on the signing page: the session's contract is created
// (SIGNED) and PAPAY.SIGN is delivered to the session's success_notify_url.
//
// Errors: ErrSessionNotFound, ErrSessionExpired, ErrSessionClosed (already signed or
// declined), ErrUserMismatch (other openid or client IP than the session's),
// ErrContractExists (the out_contract_code or the user holds a SIGNED contract for the
// plan, e.g. through another session).
func (s *Sandbox) SignSession(sessionID string, u User) (Contract, error) {
	now := s.now()
	s.mu.Lock()
	sess, err := s.pendingSessionLocked(sessionID)
	if err != nil {
		s.mu.Unlock()
		return Contract{}, err
	}
	openID := sess.OpenID
	if u.OpenID != "" && openID != "" && u.OpenID != openID {
		s.mu.Unlock()
		return Contract{}, fmt.Errorf("session %s: openid: %w", sessionID, ErrUserMismatch)
	}
	if u.ClientIP != "" && sess.UserClientIP != "" && u.ClientIP != sess.UserClientIP {
		s.mu.Unlock()
		return Contract{}, fmt.Errorf("session %s: client ip: %w", sessionID, ErrUserMismatch)
	}
	if openID == "" {
		openID = u.OpenID
	}
	if openID == "" {
		openID = newOpenID()
	}
	if s.signedByCodeLocked(sess.SubMchID, sess.PlanID, sess.OutContractCode) != nil ||
		s.signedByUserLocked(sess.SubMchID, sess.PlanID, openID) != nil {
		s.mu.Unlock()
		return Contract{}, fmt.Errorf("session %s: %w", sessionID, ErrContractExists)
	}
	c := &Contract{
		SPMchID: s.creds.MchID, SubMchID: sess.SubMchID, SPAppID: sess.SPAppID,
		SubAppID: sess.SubAppID, PlanID: sess.PlanID, OutContractCode: sess.OutContractCode,
		UserDisplayName: sess.UserDisplayName, OpenID: openID, State: StateSigned, SignedTime: now,
	}
	for {
		c.ContractID = newContractID(now)
		if _, taken := s.contracts[c.ContractID]; !taken {
			break
		}
	}
	s.contracts[c.ContractID] = c
	s.contractList = append(s.contractList, c)
	s.byCode[codeKey{c.SubMchID, c.PlanID, c.OutContractCode}] = c.ContractID
	sess.State, sess.ContractID = SessionSigned, c.ContractID
	out := *c
	s.mu.Unlock()

	s.notify(sess.SuccessNotifyURL, EventSign, out.Resource(EventSign), slog.String("contract_id", out.ContractID))
	return out, nil
}

// DeclineSession is the user refusing to sign. WeChat Pay sends no notification.
//
// Errors: ErrSessionNotFound, ErrSessionExpired, ErrSessionClosed.
func (s *Sandbox) DeclineSession(sessionID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, err := s.pendingSessionLocked(sessionID)
	if err != nil {
		return err
	}
	sess.State = SessionDeclined
	return nil
}

func (s *Sandbox) pendingSessionLocked(sessionID string) (*Session, error) {
	sess, ok := s.sessions[sessionID]
	switch {
	case !ok:
		return nil, fmt.Errorf("session %s: %w", sessionID, ErrSessionNotFound)
	case sess.State != SessionPending:
		return nil, fmt.Errorf("session %s is %s: %w", sessionID, sess.State, ErrSessionClosed)
	case !s.now().Before(sess.ExpiresAt):
		return nil, fmt.Errorf("session %s: %w", sessionID, ErrSessionExpired)
	}
	return sess, nil
}

// UserTerminate is the user ending the contract inside WeChat: TERMINATED with mode USER,
// then PAPAY.TERMINATE to the plan's termination URL.
//
// Errors: ErrContractNotFound, ErrContractTerminated.
func (s *Sandbox) UserTerminate(contractID string) (Contract, error) {
	return s.terminate(contractID, "", TerminatedByUser, "")
}

// PlatformTerminate is WeChat Pay ending the contract (mode PLATFORM), with
// PAPAY.TERMINATE like UserTerminate.
//
// Errors: ErrContractNotFound, ErrContractTerminated.
func (s *Sandbox) PlatformTerminate(contractID string) (Contract, error) {
	return s.terminate(contractID, "", TerminatedByPlatform, "")
}

// terminate ends a SIGNED contract and notifies. A non-empty subMchID must match the
// contract's, otherwise the contract counts as not found.
func (s *Sandbox) terminate(contractID, subMchID string, mode TerminationMode, note string) (Contract, error) {
	now := s.now()
	s.mu.Lock()
	c, ok := s.contracts[contractID]
	if !ok || (subMchID != "" && c.SubMchID != subMchID) {
		s.mu.Unlock()
		return Contract{}, fmt.Errorf("contract %s: %w", contractID, ErrContractNotFound)
	}
	if c.State != StateSigned {
		s.mu.Unlock()
		return Contract{}, fmt.Errorf("contract %s: %w", contractID, ErrContractTerminated)
	}
	c.State, c.TerminatedTime, c.TerminationMode, c.TerminationNote = StateTerminated, now, mode, note
	out := *c
	s.mu.Unlock()

	s.notify(s.terminationURLFor(out.PlanID), EventTerminate, out.Resource(EventTerminate),
		slog.String("contract_id", out.ContractID))
	return out, nil
}
