package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"

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
func scanAgreement(row rowScanner) (a service.Agreement, id int64, err error) {
	err = row.Scan(&id,
		&a.OutContractCode, &a.ContractID, &a.PlanID, &a.SubMchID, &a.SPAppID, &a.SubAppID,
		&a.OpenID, &a.UserDisplayName, &a.Channel, &a.State, &a.TerminationMode, &a.TerminationNote,
		timeDest{&a.SignedTime}, timeDest{&a.TerminatedTime}, timeDest{&a.SessionExpireTime},
		&a.UserClientIP, &a.ReturnURL, &a.ReturnAppID,
		&a.Session.SessionID, &a.Session.SignURL, &a.Session.ShowCodeURL,
		timeDest{&a.CreateTime}, timeDest{&a.UpdateTime}, timeDest{&a.NextCheckTime}, &a.CheckAttempts)
	return a, id, err
}

// agreementArgs binds a to the named parameters of the insert and update.
func agreementArgs(a service.Agreement) []any {
	return []any{
		sql.Named("out_contract_code", a.OutContractCode), sql.Named("contract_id", a.ContractID),
		sql.Named("plan_id", a.PlanID), sql.Named("sub_mchid", a.SubMchID),
		sql.Named("sp_appid", a.SPAppID), sql.Named("sub_appid", a.SubAppID),
		sql.Named("openid", a.OpenID), sql.Named("user_display_name", a.UserDisplayName),
		sql.Named("channel", string(a.Channel)), sql.Named("state", string(a.State)),
		sql.Named("termination_mode", string(a.TerminationMode)), sql.Named("termination_note", a.TerminationNote),
		sql.Named("signed_time", timeArg(a.SignedTime)), sql.Named("terminated_time", timeArg(a.TerminatedTime)),
		sql.Named("session_expire_time", timeArg(a.SessionExpireTime)),
		sql.Named("user_client_ip", a.UserClientIP), sql.Named("return_url", a.ReturnURL),
		sql.Named("return_appid", a.ReturnAppID), sql.Named("session_id", a.Session.SessionID),
		sql.Named("sign_url", a.Session.SignURL), sql.Named("show_code_url", a.Session.ShowCodeURL),
		sql.Named("create_time", timeArg(a.CreateTime)), sql.Named("update_time", timeArg(a.UpdateTime)),
		sql.Named("next_check_time", timeArg(a.NextCheckTime)), sql.Named("check_attempts", a.CheckAttempts),
	}
}

const agreementByOutContractCodeSQL = `SELECT id, ` + agreementColumns + `
FROM agreements WHERE out_contract_code = ?`

// AgreementByOutContractCode returns the agreement with the merchant's
// out_contract_code, or service.ErrNotFound.
func (r reader) AgreementByOutContractCode(ctx context.Context, outContractCode string) (service.Agreement, error) {
	a, _, err := r.agreementByOutContractCode(ctx, outContractCode)
	return a, err
}

// agreementByOutContractCode is AgreementByOutContractCode with the row's
// id.
func (r reader) agreementByOutContractCode(ctx context.Context, outContractCode string) (service.Agreement, int64, error) {
	a, id, err := scanAgreement(r.q.QueryRowContext(ctx, agreementByOutContractCodeSQL, outContractCode))
	if errors.Is(err, sql.ErrNoRows) {
		err = service.ErrNotFound
	}
	if err != nil {
		return service.Agreement{}, 0, fmt.Errorf("agreement %s: %w", outContractCode, err)
	}
	return a, id, nil
}

// The second term repeats the partial unique index's condition, so SQLite
// uses that index; it also makes the empty contract id match nothing.
const agreementByContractIDSQL = `SELECT id, ` + agreementColumns + `
FROM agreements WHERE contract_id = ? AND contract_id <> ''`

// AgreementByContractID returns the agreement with WeChat's contract id, or
// service.ErrNotFound (always for the empty id).
func (r reader) AgreementByContractID(ctx context.Context, contractID string) (service.Agreement, error) {
	a, _, err := scanAgreement(r.q.QueryRowContext(ctx, agreementByContractIDSQL, contractID))
	if errors.Is(err, sql.ErrNoRows) {
		err = service.ErrNotFound
	}
	if err != nil {
		return service.Agreement{}, fmt.Errorf("agreement with contract id %s: %w", contractID, err)
	}
	return a, nil
}

const createAgreementSQL = `INSERT INTO agreements (` + agreementColumns + `) VALUES (
	:out_contract_code, :contract_id, :plan_id, :sub_mchid, :sp_appid, :sub_appid,
	:openid, :user_display_name, :channel, :state, :termination_mode, :termination_note,
	:signed_time, :terminated_time, :session_expire_time, :user_client_ip, :return_url, :return_appid,
	:session_id, :sign_url, :show_code_url, :create_time, :update_time, :next_check_time, :check_attempts)`

// CreateAgreement inserts a. It returns service.ErrConflict when its
// out_contract_code, or its non-empty contract id, is already recorded.
// a.CreateTime must not be zero: it orders the pages of ListAgreements.
func (t *tx) CreateAgreement(ctx context.Context, a service.Agreement) error {
	t.touchAgreement(a.OutContractCode)
	t.agreement.forget()
	res, err := t.q.ExecContext(ctx, createAgreementSQL, agreementArgs(a)...)
	if err != nil {
		return fmt.Errorf("insert agreement %s: %w", a.OutContractCode, conflictOr(err))
	}
	// Every column was given: the row is a as stored (see CreateCharge).
	if id, err := res.LastInsertId(); err == nil {
		if stored, err := storedAgreement(a); err == nil {
			t.agreement.keep(stored, id)
		}
	}
	return nil
}

// agreementLife are the columns an agreement's life changes, each with its
// stored value in an agreement: UpdateAgreement writes them. The fields
// fixed when it is created (plan, merchant, channel, the request's client
// details and create_time) are not written again: SQLite rewrites the
// entry of every index a SET column belongs to, changed or not, and
// create_time is in every list index.
var agreementLife = []column[service.Agreement]{
	{"contract_id", func(a *service.Agreement) (driver.Value, error) { return a.ContractID, nil }},
	{"openid", func(a *service.Agreement) (driver.Value, error) { return a.OpenID, nil }},
	{"user_display_name", func(a *service.Agreement) (driver.Value, error) { return a.UserDisplayName, nil }},
	{"state", func(a *service.Agreement) (driver.Value, error) { return string(a.State), nil }},
	{"termination_mode", func(a *service.Agreement) (driver.Value, error) { return string(a.TerminationMode), nil }},
	{"termination_note", func(a *service.Agreement) (driver.Value, error) { return a.TerminationNote, nil }},
	{"signed_time", func(a *service.Agreement) (driver.Value, error) { return timeArg(a.SignedTime).Value() }},
	{"terminated_time", func(a *service.Agreement) (driver.Value, error) { return timeArg(a.TerminatedTime).Value() }},
	{"session_expire_time", func(a *service.Agreement) (driver.Value, error) { return timeArg(a.SessionExpireTime).Value() }},
	{"session_id", func(a *service.Agreement) (driver.Value, error) { return a.Session.SessionID, nil }},
	{"sign_url", func(a *service.Agreement) (driver.Value, error) { return a.Session.SignURL, nil }},
	{"show_code_url", func(a *service.Agreement) (driver.Value, error) { return a.Session.ShowCodeURL, nil }},
	{"update_time", func(a *service.Agreement) (driver.Value, error) { return timeArg(a.UpdateTime).Value() }},
	{"next_check_time", func(a *service.Agreement) (driver.Value, error) { return timeArg(a.NextCheckTime).Value() }},
	{"check_attempts", func(a *service.Agreement) (driver.Value, error) { return int64(a.CheckAttempts), nil }},
}

// updateAgreementSQL is the update of every agreementLife column of an agreement the function has
// not read, found by its out_contract_code.
var updateAgreementSQL = updateAllQuery("agreements", "out_contract_code", agreementLife)

// UpdateAgreement overwrites the fields an agreement's life changes (see
// agreementLife) of the agreement with a.OutContractCode; the fields
// fixed at creation keep their recorded values. It returns
// service.ErrNotFound when there is none and
// service.ErrConflict when a.ContractID belongs to another agreement. When
// this function read the agreement before, only the columns that changed
// are written (see update.go), and the row stored answers its next read.
func (t *tx) UpdateAgreement(ctx context.Context, a service.Agreement) error {
	t.touchAgreement(a.OutContractCode)
	prev, id, known := t.agreement.get(a.OutContractCode)
	t.agreement.forget()
	var read *service.Agreement
	if known {
		read = &prev
	}
	if err := updateRow(ctx, t.q, "agreements", "out_contract_code", a.OutContractCode, agreementLife, read, id, &a); err != nil {
		return fmt.Errorf("update agreement %s: %w", a.OutContractCode, conflictOr(err))
	}
	if known {
		if stored, err := updatedAgreement(prev, a); err == nil {
			t.agreement.keep(stored, id)
		}
	}
	return nil
}

// updatedAgreement is the row an update stores for a over prev, the row as
// stored before it: prev's fields fixed at creation, a's others.
func updatedAgreement(prev, a service.Agreement) (service.Agreement, error) {
	s := prev
	s.ContractID, s.OpenID, s.UserDisplayName, s.State = a.ContractID, a.OpenID, a.UserDisplayName, a.State
	s.TerminationMode, s.TerminationNote = a.TerminationMode, a.TerminationNote
	s.SignedTime, s.TerminatedTime, s.SessionExpireTime = a.SignedTime, a.TerminatedTime, a.SessionExpireTime
	s.Session.SessionID, s.Session.SignURL, s.Session.ShowCodeURL = a.Session.SessionID, a.Session.SignURL, a.Session.ShowCodeURL
	s.UpdateTime, s.NextCheckTime, s.CheckAttempts = a.UpdateTime, a.NextCheckTime, a.CheckAttempts
	return storedAgreement(s)
}

// storedAgreement is a as a read of its row returns it: each time through
// its column's Valuer and Scanner (UTC, nanoseconds); the other fields are
// stored as they are.
func storedAgreement(a service.Agreement) (service.Agreement, error) {
	if err := asStored(timeField(&a.SignedTime), timeField(&a.TerminatedTime), timeField(&a.SessionExpireTime),
		timeField(&a.CreateTime), timeField(&a.UpdateTime), timeField(&a.NextCheckTime)); err != nil {
		return service.Agreement{}, err
	}
	return a, nil
}

// AgreementByOutContractCode is reader.AgreementByOutContractCode,
// answered from the row this function last read or wrote when it is that
// agreement's.
func (t *tx) AgreementByOutContractCode(ctx context.Context, outContractCode string) (service.Agreement, error) {
	return t.agreement.read(outContractCode, func() (service.Agreement, int64, error) {
		return t.reader.agreementByOutContractCode(ctx, outContractCode)
	})
}

const deleteAgreementSQL = `DELETE FROM agreements WHERE out_contract_code = ?`

// DeleteAgreement removes the agreement with outContractCode. It returns
// service.ErrNotFound when there is none.
func (t *tx) DeleteAgreement(ctx context.Context, outContractCode string) error {
	t.touchAgreement(outContractCode)
	t.agreement.forget()
	res, err := t.q.ExecContext(ctx, deleteAgreementSQL, outContractCode)
	if err == nil {
		err = oneRow(res)
	}
	if err != nil {
		return fmt.Errorf("delete agreement %s: %w", outContractCode, err)
	}
	return nil
}

// oneRow returns service.ErrNotFound when res changed no row.
func oneRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return service.ErrNotFound
	}
	return nil
}

// listAgreementsSQL starts one page: rows after the cursor in the order
// (create_time DESC, id DESC), which the agreements_* indexes serve. The
// filter terms and the order are appended by ListAgreements.
const (
	listAgreementsSQL = `SELECT id, ` + agreementColumns + `
FROM agreements WHERE (create_time, id) < (:after_time, :after_id)`
	listByOpenIDSQL   = ` AND openid = :openid`
	listByPlanIDSQL   = ` AND plan_id = :plan_id`
	listByStateSQL    = ` AND state = :state`
	listBySubMchIDSQL = ` AND sub_mchid = :sub_mchid`
	listOrderSQL      = ` ORDER BY create_time DESC, id DESC LIMIT :limit`
	// A page of several sub-merchants is one page per sub-merchant (each a
	// range of the sub_mchid index, at most :limit rows), merged. An IN list
	// would read every row of those sub-merchants and sort them all.
	listBranchSQL       = `SELECT * FROM (%s AND sub_mchid = :sub_mchid_%d` + listOrderSQL + `)`
	listUnionSQL        = "\nUNION ALL "
	maxListBranches     = 64 // more sub-merchants: one IN list (SQLite allows 500 compound terms)
	listBySubMchIDInSQL = ` AND sub_mchid IN (%s)`
)

// ListAgreements returns one page of the agreements f selects, newest
// first, and the token of the next page ("" on the last). f.PageSize must
// be positive. A token this package did not issue, or issued for another
// filter, is service.ErrInvalidPageToken.
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
	args := []any{sql.Named("after_time", after.CreateTime), sql.Named("after_id", after.ID)}
	if f.OpenID != "" {
		query += listByOpenIDSQL
		args = append(args, sql.Named("openid", f.OpenID))
	}
	if f.PlanID != 0 {
		query += listByPlanIDSQL
		args = append(args, sql.Named("plan_id", f.PlanID))
	}
	if f.State != "" {
		query += listByStateSQL
		args = append(args, sql.Named("state", string(f.State)))
	}
	if f.SubMchID != "" {
		query += listBySubMchIDSQL
		args = append(args, sql.Named("sub_mchid", f.SubMchID))
	}
	query, args = pageQuery(query, f.SubMchIDs, args)

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
// restricted to the sub-merchants in, if any, then ordered and limited.
func pageQuery(where string, in []string, args []any) (string, []any) {
	switch {
	case len(in) == 0:
		return where + listOrderSQL, args
	case len(in) > maxListBranches:
		params := make([]string, len(in))
		for i, id := range in {
			params[i] = fmt.Sprintf(":sub_mchid_%d", i)
			args = append(args, sql.Named(fmt.Sprintf("sub_mchid_%d", i), id))
		}
		return where + fmt.Sprintf(listBySubMchIDInSQL, strings.Join(params, ", ")) + listOrderSQL, args
	}
	branches := make([]string, len(in))
	for i, id := range in {
		branches[i] = fmt.Sprintf(listBranchSQL, where, i)
		args = append(args, sql.Named(fmt.Sprintf("sub_mchid_%d", i), id))
	}
	return strings.Join(branches, listUnionSQL) + listOrderSQL, args
}

// agreementPageRow reads a row of a page of agreements and its cursor.
func agreementPageRow(row rowScanner) (service.Agreement, cursor, error) {
	a, id, err := scanAgreement(row)
	return a, cursor{CreateTime: a.CreateTime.UnixNano(), ID: id}, err
}
