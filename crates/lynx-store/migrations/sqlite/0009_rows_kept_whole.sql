-- Schema version 9 (PostgreSQL: rows of a few kilobytes stored uncompressed). SQLite never compresses
-- a row, so there is nothing to change here; the file keeps both engines' versions in step.
SELECT 1;
