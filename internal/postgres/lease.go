package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/papayd/papayd/internal/service"
)

// The claims of ClaimDue. Each is one UPDATE whose subquery picks the rows
// due at @now (as the due scans, on the same partial index *_due) that
// nobody holds, or whose lease expired, or that @owner holds already, and
// locks them FOR UPDATE SKIP LOCKED: a row another replica's claim has
// locked is skipped, not waited for, so concurrent claims take disjoint
// sets. A row another claim leased and committed after this statement's
// snapshot is re-checked under READ COMMITTED when locked, and dropped
// since its lease is no longer free. RETURNING does not keep the
// subquery's order: claimRows sorts.
const (
	claimFreeSQL = `(lease_until IS NULL OR lease_until <= @now OR lease_owner = @owner)`

	claimChargesSQL = `UPDATE charges SET lease_owner = @owner, lease_until = @until
WHERE id IN (SELECT id FROM charges
	WHERE next_check_time IS NOT NULL AND next_check_time <= @now AND ` + claimFreeSQL + `
	ORDER BY next_check_time, id LIMIT @limit FOR UPDATE SKIP LOCKED)
RETURNING id, ` + chargeColumns

	claimAgreementsSQL = `UPDATE agreements SET lease_owner = @owner, lease_until = @until
WHERE id IN (SELECT id FROM agreements
	WHERE next_check_time IS NOT NULL AND next_check_time <= @now AND ` + claimFreeSQL + `
	ORDER BY next_check_time, id LIMIT @limit FOR UPDATE SKIP LOCKED)
RETURNING id, ` + agreementColumns

	claimRefundsSQL = `UPDATE refunds SET lease_owner = @owner, lease_until = @until
WHERE id IN (SELECT id FROM refunds
	WHERE next_check_time IS NOT NULL AND next_check_time <= @now AND ` + claimFreeSQL + `
	ORDER BY next_check_time, id LIMIT @limit FOR UPDATE SKIP LOCKED)
RETURNING id, ` + refundColumns

	claimIntentsSQL = `UPDATE intents SET lease_owner = @owner, lease_until = @until
WHERE id IN (SELECT id FROM intents WHERE ` + claimFreeSQL + `
	ORDER BY id FOR UPDATE SKIP LOCKED)
RETURNING id, kind, key, note, create_time`
)

// ClaimDue claims, in one READ COMMITTED transaction, every open intent
// and up to limit due charges, agreements and refunds each (due as in
// DueCharges and the others) that no other owner holds a lease on at now,
// and leases them to l.Owner until now + l.TTL (lease_owner, lease_until).
// Rows l.Owner holds are claimed again, and their lease extended. It
// returns them in the order of OpenIntents and the due scans. A row another
// replica is claiming at the same moment, or has locked in a transaction,
// is skipped, not waited for. limit must be positive.
func (db *DB) ClaimDue(ctx context.Context, now time.Time, limit int, l service.Lease) (service.Due, error) {
	if limit < 1 {
		return service.Due{}, fmt.Errorf("claim due: limit %d is not positive", limit)
	}
	args := pgx.NamedArgs{"owner": l.Owner, "now": nanos(now), "until": nanos(now.Add(l.TTL)), "limit": limit}
	var d service.Due
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(ptx pgx.Tx) error {
		d = service.Due{}
		var err error
		if d.Intents, err = claimRows(ctx, ptx, claimIntentsSQL, args, scanIntent,
			func(service.Intent) time.Time { return time.Time{} }); err != nil {
			return fmt.Errorf("claim open intents: %w", err)
		}
		if now.Before(minTime) { // before every storable time: nothing is due
			return nil
		}
		if d.Charges, err = claimRows(ctx, ptx, claimChargesSQL, args, scanCharge,
			func(c service.Charge) time.Time { return c.NextCheckTime }); err != nil {
			return fmt.Errorf("claim due charges: %w", err)
		}
		if d.Agreements, err = claimRows(ctx, ptx, claimAgreementsSQL, args, scanAgreement,
			func(a service.Agreement) time.Time { return a.NextCheckTime }); err != nil {
			return fmt.Errorf("claim due agreements: %w", err)
		}
		if d.Refunds, err = claimRows(ctx, ptx, claimRefundsSQL, args, scanRefund,
			func(r service.Refund) time.Time { return r.NextCheckTime }); err != nil {
			return fmt.Errorf("claim due refunds: %w", err)
		}
		return nil
	})
	if err != nil {
		return service.Due{}, fmt.Errorf("claim due: %w", err)
	}
	return d, nil
}

// claimRows runs a claim and returns its rows ordered by due time, then
// id: the order of the due scans (and, with every due time zero, of
// OpenIntents).
func claimRows[T any](ctx context.Context, q querier, query string, args pgx.NamedArgs,
	scan func(pgx.Row) (T, int64, error), due func(T) time.Time) ([]T, error) {
	rows, err := q.Query(ctx, query, args)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type claimed struct {
		v  T
		id int64
	}
	var cs []claimed
	for rows.Next() {
		v, id, err := scan(rows)
		if err != nil {
			return nil, err
		}
		cs = append(cs, claimed{v, id})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(cs, func(a, b claimed) int {
		if c := due(a.v).Compare(due(b.v)); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	var out []T
	for _, c := range cs {
		out = append(out, c.v)
	}
	return out, nil
}

// nanos is t in unix nanoseconds, held to the range of int64: a bound for
// comparisons with time columns, which hold only that range.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// releaseClaimsSQL clears owner's leases in the four tables in one
// statement, through the partial indexes *_leased (which hold the leased
// rows only).
const releaseClaimsSQL = `WITH
	c AS (UPDATE charges SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1),
	a AS (UPDATE agreements SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1),
	r AS (UPDATE refunds SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1)
UPDATE intents SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1`

// ReleaseClaims ends every lease of owner that ClaimDue took, expired or
// not. The records' other columns are left as they are.
func (db *DB) ReleaseClaims(ctx context.Context, owner string) error {
	if _, err := db.pool.Exec(ctx, releaseClaimsSQL, owner); err != nil {
		return fmt.Errorf("release claims of %s: %w", owner, err)
	}
	return nil
}

// claimLeaseSQL takes the lease called @name: inserts it, or, when a row
// exists, takes it over if it expired at @now or renews it if @owner holds
// it. A row left as it is returns nothing. Concurrent claimers of one name
// serialize on the row (INSERT ... ON CONFLICT is atomic), so one wins.
const claimLeaseSQL = `INSERT INTO leases AS l (name, owner, until) VALUES (@name, @owner, @until)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
WHERE l.until <= @now OR l.owner = excluded.owner
RETURNING owner`

// ClaimLease takes the lease called name for l.Owner until now + l.TTL
// when nobody holds it, its holder's lease expired at now, or l.Owner holds
// it (a renewal), and reports whether l.Owner holds it now. The leases are
// the rows of the table leases; now is the caller's clock, not the
// database's.
func (db *DB) ClaimLease(ctx context.Context, name string, now time.Time, l service.Lease) (bool, error) {
	var owner string
	err := db.pool.QueryRow(ctx, claimLeaseSQL, pgx.NamedArgs{
		"name": name, "owner": l.Owner, "now": nanos(now), "until": nanos(now.Add(l.TTL)),
	}).Scan(&owner)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("claim lease %s: %w", name, err)
	}
	return true, nil
}

const releaseLeaseSQL = `DELETE FROM leases WHERE name = $1 AND owner = $2`

// ReleaseLease ends owner's lease called name (deletes its row); a lease
// owner does not hold is left as it is.
func (db *DB) ReleaseLease(ctx context.Context, name, owner string) error {
	if _, err := db.pool.Exec(ctx, releaseLeaseSQL, name, owner); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
