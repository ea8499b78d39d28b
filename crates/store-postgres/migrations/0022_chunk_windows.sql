-- Parent-child retrieval: each chunk text's windows (the sentences of what the answer engine
-- reads of it) are embedded with it, stored as one blob of `n × dims` little-endian f32 beside
-- the chunk's vector. NULL: not computed yet (vectors from before this migration; the next
-- embedding run of the document fills them). `windows_of` is the content hash of the text
-- the windows were cut from (a Q&A pair's question and answer), so windows cut from another
-- chunk with the same question are never used for this one.
ALTER TABLE embeddings ADD COLUMN windows BYTEA;
ALTER TABLE embeddings ADD COLUMN windows_of TEXT;

-- Every ready document runs its embedding job once more, which embeds the windows of its
-- chunks (the chunks' own vectors are kept); until it has, its sentences are embedded per
-- question as before.
INSERT INTO jobs (id, tenant_id, kind, payload, unique_key, status, attempts, max_attempts,
                  run_at, created_at, updated_at)
SELECT gen_random_uuid(), d.tenant_id, 'EmbedChunks',
       jsonb_build_object('document_id', d.id::text, 'generation', d.generation),
       'EmbedChunks:' || d.id::text || ':' || d.generation || ':windows',
       'queued', 0, 3, now(), now(), now()
FROM documents d
WHERE d.status = 'ready' AND EXISTS (SELECT 1 FROM chunks c WHERE c.document_id = d.id);
