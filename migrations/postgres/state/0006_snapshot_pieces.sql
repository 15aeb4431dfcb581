-- The snapshot's compressed payload moves to pieces of at most 1 MiB: at a million
-- employees the frame is about 45 MB, and one column value of that size had to be
-- held whole (and copied by the driver) to write or read it. Pieces stream.
CREATE TABLE sync_snapshot_pieces (
    seq   integer PRIMARY KEY,
    piece bytea NOT NULL
);
INSERT INTO sync_snapshot_pieces (seq, piece) SELECT 0, payload FROM sync_snapshot WHERE id = 1;
ALTER TABLE sync_snapshot DROP COLUMN payload;
