package db

import (
	"context"
	"fmt"
)

// Stats counts records by kind and state, for metrics.
type Stats struct {
	Charges    map[string]int64 // by state
	Agreements map[string]int64 // by state
	Refunds    map[string]int64 // by state
	Anomalies  int64
	Intents    int64 // open
}

const statsChargesSQL = `SELECT state, COUNT(*) FROM charges GROUP BY state`
const statsAgreementsSQL = `SELECT state, COUNT(*) FROM agreements GROUP BY state`
const statsRefundsSQL = `SELECT state, COUNT(*) FROM refunds GROUP BY state`
const statsAnomaliesSQL = `SELECT COUNT(*) FROM anomalies`
const statsIntentsSQL = `SELECT COUNT(*) FROM intents`

// Stats reads the record counts. It scans the state indexes, so callers
// should not ask more often than every few seconds on a large database.
func (d *DB) Stats(ctx context.Context) (Stats, error) {
	s := Stats{Charges: map[string]int64{}, Agreements: map[string]int64{}, Refunds: map[string]int64{}}
	for _, q := range []struct {
		sql string
		dst map[string]int64
	}{{statsChargesSQL, s.Charges}, {statsAgreementsSQL, s.Agreements}, {statsRefundsSQL, s.Refunds}} {
		rows, err := d.read.QueryContext(ctx, q.sql)
		if err != nil {
			return Stats{}, fmt.Errorf("stats: %w", err)
		}
		for rows.Next() {
			var state string
			var n int64
			if err := rows.Scan(&state, &n); err != nil {
				rows.Close()
				return Stats{}, fmt.Errorf("stats: %w", err)
			}
			q.dst[state] = n
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return Stats{}, fmt.Errorf("stats: %w", err)
		}
	}
	if err := d.read.QueryRowContext(ctx, statsAnomaliesSQL).Scan(&s.Anomalies); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	if err := d.read.QueryRowContext(ctx, statsIntentsSQL).Scan(&s.Intents); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	return s, nil
}
