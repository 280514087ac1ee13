-- Texts the system writes are stored as a message key with parameters, so pages render them in the
-- reader's language (issue 13); the English text stays in the old column for the API, exports and
-- rows written before this migration.
-- An incident's title: the key and parameters of its trigger's message (NULL: show `title` as written).
ALTER TABLE incidents ADD COLUMN title_key text CHECK (title_key IS NULL OR length(title_key) BETWEEN 1 AND 100);
ALTER TABLE incidents ADD COLUMN title_params jsonb CHECK (title_params IS NULL OR jsonb_typeof(title_params) = 'object');

-- Sites and assets have Arabic names beside their names; their descriptions get the same pair.
ALTER TABLE sites ADD COLUMN description_ar text CHECK (description_ar IS NULL OR length(description_ar) <= 2000);
ALTER TABLE assets ADD COLUMN description_ar text CHECK (description_ar IS NULL OR length(description_ar) <= 4000);
