-- 0012: the notifications table keeps its primary key (sp_mchid,
-- sub_mchid, id), which the exactly-once check reads, and loses its
-- secondary indexes on out_contract_code, contract_id, out_trade_no and
-- out_refund_no: no query reads notifications by those columns, and each
-- cost a b-tree insert per recorded notification. The columns stay.

DROP INDEX IF EXISTS notifications_out_contract_code;
DROP INDEX IF EXISTS notifications_contract_id;
DROP INDEX IF EXISTS notifications_out_trade_no;
DROP INDEX IF EXISTS notifications_out_refund_no;
