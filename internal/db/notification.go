package db

import (
	"context"
	"fmt"

	"github.com/papayd/papayd/internal/service"
)

const insertNotificationSQL = `INSERT INTO notifications
	(id, sp_mchid, sub_mchid, event_type, summary, create_time, receive_time, outcome, out_contract_code,
	contract_id, out_trade_no, transaction_id, out_refund_no, resource)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// InsertNotification records a processed notification, its decrypted
// resource included. It returns service.ErrConflict when its key (n.SpMchID,
// n.SubMchID, n.ID) is already recorded.
func (t *tx) InsertNotification(ctx context.Context, n service.NotificationRecord) error {
	_, err := t.q.ExecContext(ctx, insertNotificationSQL,
		n.ID, n.SpMchID, n.SubMchID, n.EventType, n.Summary, timeArg(n.CreateTime), timeArg(n.ReceiveTime), string(n.Outcome),
		n.OutContractCode, n.ContractID, n.OutTradeNo, n.TransactionID, n.OutRefundNo, n.Resource)
	if err != nil {
		return fmt.Errorf("insert notification %s: %w", n.ID, conflictOr(err))
	}
	return nil
}

const notificationRecordedSQL = `SELECT EXISTS (SELECT 1 FROM notifications
WHERE sp_mchid = ? AND sub_mchid = ? AND id = ?)`

// NotificationRecorded reports whether the notification with key is
// recorded.
func (t *tx) NotificationRecorded(ctx context.Context, key service.NotificationKey) (bool, error) {
	var seen bool
	if err := t.q.QueryRowContext(ctx, notificationRecordedSQL, key.SpMchID, key.SubMchID, key.ID).Scan(&seen); err != nil {
		return false, fmt.Errorf("notification %s: %w", key.ID, err)
	}
	return seen, nil
}
