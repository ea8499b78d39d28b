-- SQLite has kept `embedding_versions` since 0003; PostgreSQL gains it in its 0006. This file
-- keeps the two migration folders paired.
SELECT 1;
