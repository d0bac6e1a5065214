package postgres

import (
	"context"
	"fmt"
)

// Stats counts records by kind and state, for metrics. It has the fields
// of internal/db's Stats, which this package does not import (one store
// does not depend on the other). The metrics package reads db.Stats today
// (metrics.StatsSource); to read either store it will need an interface
// over both, e.g. one that returns a type of its own, with an adapter per
// store.
type Stats struct {
	Charges    map[string]int64 // by state
	Agreements map[string]int64 // by state
	Refunds    map[string]int64 // by state
	Anomalies  int64
	Intents    int64 // open
}

const (
	statsChargesSQL    = `SELECT state, count(*) FROM charges GROUP BY state`
	statsAgreementsSQL = `SELECT state, count(*) FROM agreements GROUP BY state`
	statsRefundsSQL    = `SELECT state, count(*) FROM refunds GROUP BY state`
	statsAnomaliesSQL  = `SELECT count(*) FROM anomalies`
	statsIntentsSQL    = `SELECT count(*) FROM intents`
)

// Stats reads the record counts: each kind's by state (a state without
// records is absent from its map, and every map is non-nil), the
// anomalies and the open intents. Each count is its own statement, so the
// counts may come from different snapshots. count(*) reads every row (or
// every entry of an index), so callers should not ask more often than
// every few seconds on a large database.
func (db *DB) Stats(ctx context.Context) (Stats, error) {
	s := Stats{Charges: map[string]int64{}, Agreements: map[string]int64{}, Refunds: map[string]int64{}}
	for _, q := range []struct {
		sql string
		dst map[string]int64
	}{{statsChargesSQL, s.Charges}, {statsAgreementsSQL, s.Agreements}, {statsRefundsSQL, s.Refunds}} {
		if err := countByState(ctx, db.q, q.sql, q.dst); err != nil {
			return Stats{}, fmt.Errorf("stats: %w", err)
		}
	}
	if err := db.q.QueryRow(ctx, statsAnomaliesSQL).Scan(&s.Anomalies); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	if err := db.q.QueryRow(ctx, statsIntentsSQL).Scan(&s.Intents); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	return s, nil
}

// countByState runs query, whose rows are (state, count), into dst.
func countByState(ctx context.Context, q querier, query string, dst map[string]int64) error {
	rows, err := q.Query(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return err
		}
		dst[state] = n
	}
	return rows.Err()
}
