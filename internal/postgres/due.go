package postgres

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/papayd/papayd/internal/service"
)

// The due scans read the records whose next check time is set and not
// after @now, earliest first (ties in id order), at most @limit of them:
// open records, and final ones awaiting a re-check. Their WHERE repeats the
// condition of the partial index (*_due: it holds only scheduled records),
// so the planner can use it (PostgreSQL has no INDEXED BY: plan_test.go
// checks that it can). The index gives next_check_time order; the id that
// breaks ties is sorted within each run of equal times (an incremental
// sort), never across the whole scan.
const (
	dueChargesSQL = `SELECT id, ` + chargeColumns + `
FROM charges
WHERE next_check_time IS NOT NULL AND next_check_time <= @now
ORDER BY next_check_time, id LIMIT @limit`

	dueAgreementsSQL = `SELECT id, ` + agreementColumns + `
FROM agreements
WHERE next_check_time IS NOT NULL AND next_check_time <= @now
ORDER BY next_check_time, id LIMIT @limit`

	dueRefundsSQL = `SELECT id, ` + refundColumns + `
FROM refunds
WHERE next_check_time IS NOT NULL AND next_check_time <= @now
ORDER BY next_check_time, id LIMIT @limit`
)

// DueCharges returns up to limit charges whose NextCheckTime is set and
// not after now, earliest first (ties in the order recorded). It reads the
// partial index charges_due, which holds the scheduled charges only. limit
// must be positive.
func (r reader) DueCharges(ctx context.Context, now time.Time, limit int) ([]service.Charge, error) {
	cs, err := queryDue(ctx, r.q, dueChargesSQL, now, limit, scanCharge)
	if err != nil {
		return nil, fmt.Errorf("due charges: %w", err)
	}
	return cs, nil
}

// DueAgreements returns up to limit agreements whose NextCheckTime is set
// and not after now, earliest first (ties in the order recorded). It reads
// the partial index agreements_due, which holds the scheduled agreements
// only. limit must be positive.
func (r reader) DueAgreements(ctx context.Context, now time.Time, limit int) ([]service.Agreement, error) {
	as, err := queryDue(ctx, r.q, dueAgreementsSQL, now, limit, scanAgreement)
	if err != nil {
		return nil, fmt.Errorf("due agreements: %w", err)
	}
	return as, nil
}

// DueRefunds returns up to limit refunds whose NextCheckTime is set and
// not after now, earliest first (ties in the order recorded). It reads the
// partial index refunds_due, which holds the scheduled refunds only. limit
// must be positive.
func (r reader) DueRefunds(ctx context.Context, now time.Time, limit int) ([]service.Refund, error) {
	rs, err := queryDue(ctx, r.q, dueRefundsSQL, now, limit, scanRefund)
	if err != nil {
		return nil, fmt.Errorf("due refunds: %w", err)
	}
	return rs, nil
}

// queryDue runs a due scan. A now before every storable time (the zero
// time included) finds nothing; one after every storable time finds every
// scheduled row.
func queryDue[T any](ctx context.Context, q querier, query string, now time.Time, limit int,
	scan func(pgx.Row) (T, int64, error)) ([]T, error) {
	if limit < 1 {
		return nil, fmt.Errorf("limit %d is not positive", limit)
	}
	var bound int64
	switch {
	case now.Before(minTime):
		return nil, nil
	case now.After(maxTime):
		bound = math.MaxInt64
	default:
		bound = now.UnixNano()
	}
	return queryRows(ctx, q, query, []any{pgx.NamedArgs{"now": bound, "limit": limit}}, scan)
}
