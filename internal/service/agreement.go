package service

import "time"

// Channel is where the user signs an agreement.
type Channel string

// The signing channels of WeChat Pay Global.
const (
	ChannelMiniProgram Channel = "MINI_PROGRAM"
	ChannelApp         Channel = "APP"
	ChannelH5          Channel = "H5"
	ChannelJSAPI       Channel = "JSAPI"
	ChannelWeb         Channel = "WEB"
)

// needsOpenID reports whether WeChat requires the user's openid on the channel.
func (c Channel) needsOpenID() bool {
	return c == ChannelMiniProgram || c == ChannelApp || c == ChannelJSAPI
}

// AgreementState is the local state of an agreement.
type AgreementState string

// The agreement states. PENDING -> SIGNED -> TERMINATED; PENDING -> EXPIRED
// when the signing session ends unsigned; EXPIRED -> SIGNED when WeChat
// reports a signature after all (WeChat is the source of truth). A session
// the user declined stays PENDING until it expires: WeChat sends no
// notification of a refusal, and its contract query cannot tell a declined
// session from one the user has not answered yet.
const (
	AgreementPending    AgreementState = "PENDING"
	AgreementSigned     AgreementState = "SIGNED"
	AgreementTerminated AgreementState = "TERMINATED"
	AgreementExpired    AgreementState = "EXPIRED"
)

// TerminationMode says who ended an agreement. Values WeChat sends that are
// not listed here are kept as given.
type TerminationMode string

// The termination modes known to WeChat Pay Global.
const (
	TerminatedByUser     TerminationMode = "USER"
	TerminatedByMerchant TerminationMode = "MERCHANT"
	TerminatedByPlatform TerminationMode = "PLATFORM"
	TerminatedByExpiry   TerminationMode = "EXPIRED"
)

// Agreement is an auto-debit contract as papayd records it.
type Agreement struct {
	OutContractCode string
	ContractID      string
	PlanID          int64
	Merchant
	OpenID          string
	UserDisplayName string
	Channel         Channel
	State           AgreementState
	TerminationMode TerminationMode
	TerminationNote string
	SignedTime      time.Time
	TerminatedTime  time.Time

	// The signing session, as asked for and as WeChat answered.
	SessionExpireTime time.Time
	UserClientIP      string
	ReturnURL         string
	ReturnAppID       string
	Session           PresignResult

	CreateTime time.Time
	UpdateTime time.Time

	// Reconciliation: when the reconciler next asks WeChat about it, and how
	// many times it asked so far (for the backoff).
	NextCheckTime time.Time
	CheckAttempts int
}

// sign applies "the user signed contract id" to the agreement. It reports
// whether anything changed. A terminated agreement stays terminated: a late
// signing notification cannot revive it.
func (a *Agreement) sign(contractID, openID string, at time.Time) bool {
	at = wechatTime(at)
	switch a.State {
	case AgreementPending, AgreementExpired:
		a.State = AgreementSigned
		a.ContractID = contractID
		if openID != "" {
			a.OpenID = openID
		}
		a.SignedTime = at
		return true
	case AgreementSigned:
		changed := false
		if a.ContractID == "" {
			a.ContractID, changed = contractID, true
		}
		if a.SignedTime.IsZero() && !at.IsZero() {
			a.SignedTime, changed = at, true
		}
		return changed
	}
	return false
}

// terminate applies "the agreement ended". The first termination wins, so a
// PAPAY.TERMINATE that follows the merchant's own TerminateAgreement changes
// nothing.
func (a *Agreement) terminate(contractID string, mode TerminationMode, note string, at time.Time) bool {
	if a.State == AgreementTerminated {
		return false
	}
	a.State = AgreementTerminated
	if a.ContractID == "" {
		a.ContractID = contractID
	}
	a.TerminationMode = mode
	if note != "" {
		a.TerminationNote = note
	}
	a.TerminatedTime = wechatTime(at)
	a.NextCheckTime, a.CheckAttempts = time.Time{}, 0 // final: WeChat is not asked again
	return true
}

// wechatTime is t at the precision of WeChat's own times (whole seconds,
// RFC 3339), so that a time papayd records in place of WeChat's (its clock
// when WeChat gave none, or before WeChat's notification arrived) reads the
// same as WeChat's would.
func wechatTime(t time.Time) time.Time { return t.Truncate(time.Second) }

// applyRemote applies a SIGNED or TERMINATED contract WeChat reports, as a
// refresh or a presign retry learns it. It reports whether anything changed.
func (a *Agreement) applyRemote(rc RemoteContract, now time.Time) bool {
	switch rc.State {
	case string(AgreementSigned):
		return a.sign(rc.ContractID, rc.OpenID, rc.SignedTime)
	case string(AgreementTerminated):
		signed := false
		if a.State == AgreementPending || a.State == AgreementExpired {
			signed = a.sign(rc.ContractID, rc.OpenID, rc.SignedTime)
		}
		at := rc.TerminatedTime
		if at.IsZero() {
			at = now
		}
		return a.terminate(rc.ContractID, rc.TerminationMode, rc.TerminationNote, at) || signed
	}
	return false
}

// expire marks a pending agreement whose signing session ended unsigned.
func (a *Agreement) expire(now time.Time) bool {
	if a.State != AgreementPending || a.SessionExpireTime.IsZero() || now.Before(a.SessionExpireTime) {
		return false
	}
	a.State = AgreementExpired
	return true
}

// AgreementFilter selects agreements for ListAgreements. Zero fields do not
// filter.
type AgreementFilter struct {
	OpenID   string
	PlanID   int64
	State    AgreementState
	SubMchID string
	// SubMchIDs, when not empty, limits the list to these sub-merchants
	// (the caller's, see Caller.SubMchIDs); with SubMchID the two
	// intersect, so a SubMchID outside the set selects nothing.
	SubMchIDs []string
	PageSize  int
	PageToken string
}
