-- The last payload /sync served (LZ4-compressed JSON), for the deletion guard and
-- `hr-bridge preview`. One row, id = 1, replaced as a compare-and-set on its digest.
CREATE TABLE sync_snapshot (
    id             INT NOT NULL PRIMARY KEY,
    taken_at       VARCHAR(32) NOT NULL,
    payload_digest VARCHAR(64) NOT NULL,
    user_count     BIGINT NOT NULL,
    group_count    BIGINT NOT NULL,
    payload        LONGBLOB NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
