-- The last payload /sync served (LZ4-compressed JSON), for the deletion guard and
-- `hr-bridge preview`. One row, id = 1, replaced as a compare-and-set on its digest.
CREATE TABLE sync_snapshot (
    id             integer PRIMARY KEY,
    taken_at       text NOT NULL,
    payload_digest text NOT NULL,
    user_count     bigint NOT NULL,
    group_count    bigint NOT NULL,
    payload        bytea NOT NULL
);
