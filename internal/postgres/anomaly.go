package postgres

import (
	"context"
	"fmt"

	"github.com/papayd/papayd/internal/service"
)

const insertAnomalySQL = `INSERT INTO anomalies (time, kind, out_trade_no, notification_id, detail)
VALUES ($1, $2, $3, $4, $5)`

// InsertAnomaly records a disagreement papayd will not resolve silently.
// Anomalies are appended, never deduplicated. The store has no reader for
// them, as internal/db has none: an operator reads the table.
func (t *tx) InsertAnomaly(ctx context.Context, a service.Anomaly) error {
	_, err := t.q.Exec(ctx, insertAnomalySQL, timeArg(a.Time), a.Kind, a.OutTradeNo, a.NotificationID, a.Detail)
	if err != nil {
		return fmt.Errorf("insert anomaly %s for %s: %w", a.Kind, a.OutTradeNo, err)
	}
	return nil
}
