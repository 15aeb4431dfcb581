-- The last payload /sync served (LZ4-compressed JSON), for the deletion guard and
-- `hr-bridge preview`. One row, id = 1, replaced as a compare-and-set on its digest.
CREATE TABLE sync_snapshot (
    id             INTEGER PRIMARY KEY,
    taken_at       TEXT NOT NULL,
    payload_digest TEXT NOT NULL,
    user_count     INTEGER NOT NULL,
    group_count    INTEGER NOT NULL,
    payload        BLOB NOT NULL
);
