-- 0005: a notification is processed exactly once per (sp_mchid, sub_mchid,
-- id), the merchants its resource names and WeChat's id: WeChat does not
-- document notification ids as unique across merchants. SQLite cannot
-- change a primary key, so the table is rebuilt. Rows of an older papayd
-- take their merchants from their stored resource, so a redelivery after
-- the upgrade is still recognised.

CREATE TABLE notifications_0005 (
    id                TEXT NOT NULL,
    sp_mchid          TEXT NOT NULL,
    sub_mchid         TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    summary           TEXT NOT NULL,
    create_time       INTEGER,
    receive_time      INTEGER,
    outcome           TEXT NOT NULL,
    out_contract_code TEXT NOT NULL,
    contract_id       TEXT NOT NULL,
    resource          BLOB, -- the decrypted resource: stored, never logged
    out_trade_no      TEXT NOT NULL DEFAULT '',
    transaction_id    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (sp_mchid, sub_mchid, id)
) STRICT;

INSERT INTO notifications_0005 (id, sp_mchid, sub_mchid, event_type, summary, create_time, receive_time,
    outcome, out_contract_code, contract_id, resource, out_trade_no, transaction_id)
SELECT id,
    CASE WHEN json_valid(CAST(resource AS TEXT))
        THEN COALESCE(json_extract(CAST(resource AS TEXT), '$.sp_mchid'), json_extract(CAST(resource AS TEXT), '$.mchid'), '')
        ELSE '' END,
    CASE WHEN json_valid(CAST(resource AS TEXT))
        THEN COALESCE(json_extract(CAST(resource AS TEXT), '$.sub_mchid'), '')
        ELSE '' END,
    event_type, summary, create_time, receive_time, outcome, out_contract_code, contract_id, resource,
    out_trade_no, transaction_id
FROM notifications;

DROP TABLE notifications;
ALTER TABLE notifications_0005 RENAME TO notifications;

CREATE INDEX notifications_out_contract_code ON notifications (out_contract_code);
CREATE INDEX notifications_contract_id       ON notifications (contract_id);
CREATE INDEX notifications_out_trade_no      ON notifications (out_trade_no);
