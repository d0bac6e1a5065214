-- 0004: what a charge sent to WeChat, so a retry resends exactly that; when
-- it was last sent (an unpaid timeout and a close's wait for deductions
-- still in flight count from it); the CLOSING state; and re-checks of final
-- records. Times are INTEGER unix nanoseconds UTC; NULL is the zero time.

-- notify_url is the one deduction parameter that came from papayd's
-- configuration rather than from the charge; '' on rows of an older papayd
-- (their retries send the configured URL, as before).
ALTER TABLE charges ADD COLUMN notify_url     TEXT NOT NULL DEFAULT '';
-- NULL: never sent. Rows of an older papayd were sent when created.
ALTER TABLE charges ADD COLUMN last_send_time INTEGER;
UPDATE charges SET last_send_time = create_time;

-- A record is due for the reconciler when its next_check_time is set and
-- past: open records (PENDING, PROCESSING, CLOSING) on the backoff, and
-- final records (and EXPIRED agreements) for their re-checks a while after
-- they became final (check_attempts then counts the re-checks). Final
-- records of an older papayd are not re-checked.
UPDATE charges SET next_check_time = NULL WHERE state NOT IN ('PENDING', 'PROCESSING');
DROP INDEX charges_due;
CREATE INDEX charges_due ON charges (next_check_time) WHERE next_check_time IS NOT NULL;

UPDATE agreements SET next_check_time = NULL WHERE state NOT IN ('PENDING', 'SIGNED');
DROP INDEX agreements_due;
CREATE INDEX agreements_due ON agreements (next_check_time) WHERE next_check_time IS NOT NULL;

-- The open charges of ListCharges' reconciler view include CLOSING.
DROP INDEX charges_open;
CREATE INDEX charges_open ON charges (create_time, id) WHERE state IN ('PENDING', 'PROCESSING', 'CLOSING');
