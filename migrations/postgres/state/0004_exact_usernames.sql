-- Exact (byte for byte) username matching needs nothing here: text compares
-- exactly on this backend. Kept so that the three migration folders stay aligned.
SELECT 1;
