-- idrecon store, schema 5: the stored Azure snapshot as pages.

-- A full listing as pages of users in object-ID order, each page one JSON
-- array of [id, user_principal_name, mail, display_name, account_enabled,
-- employee_id, on_premises_sam_account_name, user_type] arrays. One row per
-- user cost SQLite ~3 s to write and ~2 s to read at a million users;
-- pages cost a fraction of that, and the snapshot is only ever read whole.
CREATE TABLE azure_user_pages (
    scope  TEXT    NOT NULL REFERENCES azure_snapshots (scope) ON DELETE CASCADE,
    page   INTEGER NOT NULL,
    count  INTEGER NOT NULL,
    users  TEXT    NOT NULL,
    PRIMARY KEY (scope, page)
);

-- What deltas changed since the pages were written, one row per user: its
-- final state (a JSON array as in the pages), or NULL when it was removed.
-- A row here wins over the pages. When the changes outgrow a share of the
-- snapshot, the pages are written anew and the changes cleared.
CREATE TABLE azure_user_changes (
    scope  TEXT NOT NULL REFERENCES azure_snapshots (scope) ON DELETE CASCADE,
    id     TEXT NOT NULL,
    user   TEXT,
    PRIMARY KEY (scope, id)
) WITHOUT ROWID;

-- Existing snapshots become pages of 5,000 users.
INSERT INTO azure_user_pages (scope, page, count, users)
SELECT scope, n / 5000, count(*),
       json_group_array(json_array(id, user_principal_name, mail, display_name,
           json(CASE WHEN account_enabled THEN 'true' ELSE 'false' END),
           employee_id, on_premises_sam_account_name, user_type))
FROM (SELECT *, row_number() OVER (PARTITION BY scope ORDER BY id) - 1 AS n
      FROM azure_users ORDER BY scope, id)
GROUP BY scope, n / 5000;

DROP TABLE azure_users;
