package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/papayd/papayd/internal/service"
)

const insertNotificationSQL = `INSERT INTO notifications
	(id, sp_mchid, sub_mchid, event_type, summary, create_time, receive_time, outcome, out_contract_code,
	contract_id, out_trade_no, transaction_id, out_refund_no, resource)
VALUES (@id, @sp_mchid, @sub_mchid, @event_type, @summary, @create_time, @receive_time, @outcome,
	@out_contract_code, @contract_id, @out_trade_no, @transaction_id, @out_refund_no, @resource)`

// InsertNotification records a processed notification, its decrypted
// resource included (nil is NULL). It returns service.ErrConflict when its
// key (n.SpMchID, n.SubMchID, n.ID) is already recorded.
func (t *tx) InsertNotification(ctx context.Context, n service.NotificationRecord) error {
	_, err := t.q.Exec(ctx, insertNotificationSQL, pgx.NamedArgs{
		"id": n.ID, "sp_mchid": n.SpMchID, "sub_mchid": n.SubMchID,
		"event_type": n.EventType, "summary": n.Summary,
		"create_time": timeArg(n.CreateTime), "receive_time": timeArg(n.ReceiveTime),
		"outcome": string(n.Outcome), "out_contract_code": n.OutContractCode, "contract_id": n.ContractID,
		"out_trade_no": n.OutTradeNo, "transaction_id": n.TransactionID, "out_refund_no": n.OutRefundNo,
		"resource": n.Resource,
	})
	if err != nil {
		return fmt.Errorf("insert notification %s: %w", n.ID, conflictOr(err))
	}
	return nil
}

// notificationRecordedSQL reads the primary key (sp_mchid, sub_mchid, id).
const notificationRecordedSQL = `SELECT EXISTS (SELECT 1 FROM notifications
WHERE sp_mchid = $1 AND sub_mchid = $2 AND id = $3)`

// NotificationRecorded reports whether the notification with key is
// recorded.
func (t *tx) NotificationRecorded(ctx context.Context, key service.NotificationKey) (bool, error) {
	var seen bool
	if err := t.q.QueryRow(ctx, notificationRecordedSQL, key.SpMchID, key.SubMchID, key.ID).Scan(&seen); err != nil {
		return false, fmt.Errorf("notification %s: %w", key.ID, err)
	}
	return seen, nil
}
