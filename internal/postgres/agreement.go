package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/papayd/papayd/internal/pagetoken"
	"github.com/papayd/papayd/internal/service"
)

// agreementColumns are the columns of service.Agreement, in the order
// scanAgreement reads them after the id.
const agreementColumns = `out_contract_code, contract_id, plan_id, sub_mchid, sp_appid, sub_appid,
	openid, user_display_name, channel, state, termination_mode, termination_note,
	signed_time, terminated_time, session_expire_time, user_client_ip, return_url, return_appid,
	session_id, sign_url, show_code_url, create_time, update_time, next_check_time, check_attempts`

// scanAgreement reads a row of `id, ` + agreementColumns.
func scanAgreement(row pgx.Row) (a service.Agreement, id int64, err error) {
	err = row.Scan(&id,
		&a.OutContractCode, &a.ContractID, &a.PlanID, &a.SubMchID, &a.SPAppID, &a.SubAppID,
		&a.OpenID, &a.UserDisplayName, &a.Channel, &a.State, &a.TerminationMode, &a.TerminationNote,
		timeDest{&a.SignedTime}, timeDest{&a.TerminatedTime}, timeDest{&a.SessionExpireTime},
		&a.UserClientIP, &a.ReturnURL, &a.ReturnAppID,
		&a.Session.SessionID, &a.Session.SignURL, &a.Session.ShowCodeURL,
		timeDest{&a.CreateTime}, timeDest{&a.UpdateTime}, timeDest{&a.NextCheckTime}, &a.CheckAttempts)
	return a, id, err
}

// agreementArgs binds a to the named parameters of the insert.
func agreementArgs(a service.Agreement) pgx.NamedArgs {
	return pgx.NamedArgs{
		"out_contract_code": a.OutContractCode, "contract_id": a.ContractID,
		"plan_id": a.PlanID, "sub_mchid": a.SubMchID, "sp_appid": a.SPAppID, "sub_appid": a.SubAppID,
		"openid": a.OpenID, "user_display_name": a.UserDisplayName,
		"channel": string(a.Channel), "state": string(a.State),
		"termination_mode": string(a.TerminationMode), "termination_note": a.TerminationNote,
		"signed_time": timeArg(a.SignedTime), "terminated_time": timeArg(a.TerminatedTime),
		"session_expire_time": timeArg(a.SessionExpireTime),
		"user_client_ip":      a.UserClientIP, "return_url": a.ReturnURL, "return_appid": a.ReturnAppID,
		"session_id": a.Session.SessionID, "sign_url": a.Session.SignURL, "show_code_url": a.Session.ShowCodeURL,
		"create_time": timeArg(a.CreateTime), "update_time": timeArg(a.UpdateTime),
		"next_check_time": timeArg(a.NextCheckTime), "check_attempts": a.CheckAttempts,
	}
}

const agreementByOutContractCodeSQL = `SELECT id, ` + agreementColumns + `
FROM agreements WHERE out_contract_code = $1`

// AgreementByOutContractCode returns the agreement with the merchant's
// out_contract_code, or service.ErrNotFound.
func (r reader) AgreementByOutContractCode(ctx context.Context, outContractCode string) (service.Agreement, error) {
	a, _, err := scanAgreement(r.q.QueryRow(ctx, agreementByOutContractCodeSQL, outContractCode))
	if err != nil {
		return service.Agreement{}, fmt.Errorf("agreement %s: %w", outContractCode, notFoundOr(err))
	}
	return a, nil
}

// The second term repeats the partial unique index's condition, so the
// planner can use that index; it also makes the empty contract id match
// nothing.
const agreementByContractIDSQL = `SELECT id, ` + agreementColumns + `
FROM agreements WHERE contract_id = $1 AND contract_id <> ''`

// AgreementByContractID returns the agreement with WeChat's contract id, or
// service.ErrNotFound (always for the empty id).
func (r reader) AgreementByContractID(ctx context.Context, contractID string) (service.Agreement, error) {
	a, _, err := scanAgreement(r.q.QueryRow(ctx, agreementByContractIDSQL, contractID))
	if err != nil {
		return service.Agreement{}, fmt.Errorf("agreement with contract id %s: %w", contractID, notFoundOr(err))
	}
	return a, nil
}

const createAgreementSQL = `INSERT INTO agreements (` + agreementColumns + `) VALUES (
	@out_contract_code, @contract_id, @plan_id, @sub_mchid, @sp_appid, @sub_appid,
	@openid, @user_display_name, @channel, @state, @termination_mode, @termination_note,
	@signed_time, @terminated_time, @session_expire_time, @user_client_ip, @return_url, @return_appid,
	@session_id, @sign_url, @show_code_url, @create_time, @update_time, @next_check_time, @check_attempts)`

// CreateAgreement inserts a. It returns service.ErrConflict when its
// out_contract_code, or its non-empty contract id, is already recorded.
// a.CreateTime must not be zero: it orders the pages of ListAgreements.
func (t *tx) CreateAgreement(ctx context.Context, a service.Agreement) error {
	if _, err := t.q.Exec(ctx, createAgreementSQL, agreementArgs(a)); err != nil {
		return fmt.Errorf("insert agreement %s: %w", a.OutContractCode, conflictOr(err))
	}
	return nil
}

// updateAgreementSQL writes what an agreement's life changes. The fields
// fixed when it is created (plan, merchant, channel, the request's client
// details and create_time) are not written, as in internal/db.
const updateAgreementSQL = `UPDATE agreements SET
	contract_id = @contract_id, openid = @openid, user_display_name = @user_display_name,
	state = @state, termination_mode = @termination_mode,
	termination_note = @termination_note, signed_time = @signed_time,
	terminated_time = @terminated_time, session_expire_time = @session_expire_time,
	session_id = @session_id, sign_url = @sign_url, show_code_url = @show_code_url,
	update_time = @update_time, next_check_time = @next_check_time, check_attempts = @check_attempts
WHERE out_contract_code = @out_contract_code`

// updateAgreementArgs are the arguments of updateAgreementSQL.
func updateAgreementArgs(a service.Agreement) pgx.NamedArgs {
	return pgx.NamedArgs{
		"out_contract_code": a.OutContractCode, "contract_id": a.ContractID,
		"openid": a.OpenID, "user_display_name": a.UserDisplayName, "state": string(a.State),
		"termination_mode": string(a.TerminationMode), "termination_note": a.TerminationNote,
		"signed_time": timeArg(a.SignedTime), "terminated_time": timeArg(a.TerminatedTime),
		"session_expire_time": timeArg(a.SessionExpireTime),
		"session_id":          a.Session.SessionID, "sign_url": a.Session.SignURL, "show_code_url": a.Session.ShowCodeURL,
		"update_time": timeArg(a.UpdateTime), "next_check_time": timeArg(a.NextCheckTime),
		"check_attempts": a.CheckAttempts,
	}
}

// UpdateAgreement overwrites the fields an agreement's life changes (see
// updateAgreementSQL) of the agreement with a.OutContractCode; the fields
// fixed at creation keep their recorded values. It returns
// service.ErrNotFound when there is none and service.ErrConflict when
// a.ContractID belongs to another agreement.
func (t *tx) UpdateAgreement(ctx context.Context, a service.Agreement) error {
	tag, err := t.q.Exec(ctx, updateAgreementSQL, updateAgreementArgs(a))
	if err == nil && tag.RowsAffected() == 0 {
		err = service.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("update agreement %s: %w", a.OutContractCode, conflictOr(err))
	}
	return nil
}

const deleteAgreementSQL = `DELETE FROM agreements WHERE out_contract_code = $1`

// DeleteAgreement removes the agreement with outContractCode. It returns
// service.ErrNotFound when there is none.
func (t *tx) DeleteAgreement(ctx context.Context, outContractCode string) error {
	tag, err := t.q.Exec(ctx, deleteAgreementSQL, outContractCode)
	if err == nil && tag.RowsAffected() == 0 {
		err = service.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete agreement %s: %w", outContractCode, err)
	}
	return nil
}

// listAgreementsSQL starts one page: rows after the cursor in the order
// (create_time DESC, id DESC), which the agreements_* indexes serve. The
// filter terms and the order are appended by ListAgreements.
const (
	listAgreementsSQL = `SELECT id, ` + agreementColumns + `
FROM agreements WHERE (create_time, id) < (@after_time, @after_id)`
	listByOpenIDSQL   = ` AND openid = @openid`
	listByPlanIDSQL   = ` AND plan_id = @plan_id`
	listByStateSQL    = ` AND state = @state`
	listBySubMchIDSQL = ` AND sub_mchid = @sub_mchid`
	listOrderSQL      = ` ORDER BY create_time DESC, id DESC LIMIT @limit`
	// A page of several sub-merchants is one page per sub-merchant (each a
	// range of the sub_mchid index, at most @limit rows), merged. One
	// = ANY term would read every row of those sub-merchants and sort them.
	listBranchSQL       = `SELECT * FROM (%s AND sub_mchid = @sub_mchid_%d` + listOrderSQL + `) AS b%[2]d`
	listUnionSQL        = "\nUNION ALL "
	maxListBranches     = 64 // more sub-merchants: one = ANY term, as internal/db's IN list
	listBySubMchIDInSQL = ` AND sub_mchid = ANY(@sub_mchids)`
)

// ListAgreements returns one page of the agreements f selects, newest
// first, and the token of the next page ("" on the last). f.PageSize must
// be positive. A token this package (or internal/db) did not issue, or
// issued for another filter, is service.ErrInvalidPageToken.
func (r reader) ListAgreements(ctx context.Context, f service.AgreementFilter) ([]service.Agreement, string, error) {
	var none bool
	f.SubMchID, f.SubMchIDs, none = subMchIDScope(f.SubMchID, f.SubMchIDs)
	filter := pagetoken.Agreements(f)
	after, err := pagetoken.Decode(f.PageToken, filter)
	if err != nil {
		return nil, "", fmt.Errorf("list agreements: %w", err)
	}
	if none {
		return nil, "", nil
	}
	query := listAgreementsSQL
	args := pgx.NamedArgs{"after_time": after.CreateTime, "after_id": after.ID}
	if f.OpenID != "" {
		query += listByOpenIDSQL
		args["openid"] = f.OpenID
	}
	if f.PlanID != 0 {
		query += listByPlanIDSQL
		args["plan_id"] = f.PlanID
	}
	if f.State != "" {
		query += listByStateSQL
		args["state"] = string(f.State)
	}
	if f.SubMchID != "" {
		query += listBySubMchIDSQL
		args["sub_mchid"] = f.SubMchID
	}
	query = pageQuery(query, f.SubMchIDs, args)

	as, next, err := queryPage(ctx, r.q, query, args, f.PageSize, filter, agreementPageRow)
	if err != nil {
		return nil, "", fmt.Errorf("list agreements: %w", err)
	}
	return as, next, nil
}

// subMchIDScope is the sub-merchant restriction of a list filter: the
// explicit sub_mchid one and the allowed set, intersected. It returns the
// sub_mchid to match with equality ("": none), the set to match otherwise
// (sorted, distinct, at least two: one is an equality), and none when the
// intersection is empty. The page token is bound to what it returns.
func subMchIDScope(one string, set []string) (eq string, in []string, none bool) {
	if len(set) == 0 {
		return one, nil, false
	}
	set = slices.Compact(slices.Sorted(slices.Values(set)))
	switch {
	case one != "" && !slices.Contains(set, one):
		return one, set, true
	case one != "":
		return one, nil, false
	case len(set) == 1:
		return set[0], nil, false
	}
	return "", set, false
}

// pageQuery finishes the page query where (a SELECT and its WHERE terms):
// restricted to the sub-merchants in, if any, then ordered and limited. It
// adds the parameters it uses to args.
func pageQuery(where string, in []string, args pgx.NamedArgs) string {
	switch {
	case len(in) == 0:
		return where + listOrderSQL
	case len(in) > maxListBranches:
		args["sub_mchids"] = in
		return where + listBySubMchIDInSQL + listOrderSQL
	}
	branches := make([]string, len(in))
	for i, id := range in {
		branches[i] = fmt.Sprintf(listBranchSQL, where, i)
		args[fmt.Sprintf("sub_mchid_%d", i)] = id
	}
	return strings.Join(branches, listUnionSQL) + listOrderSQL
}

// agreementPageRow reads a row of a page of agreements and its cursor.
func agreementPageRow(row pgx.Row) (service.Agreement, cursor, error) {
	a, id, err := scanAgreement(row)
	return a, cursor{CreateTime: a.CreateTime.UnixNano(), ID: id}, err
}
