-- idrecon store, schema 1.
-- Enums are stored as their snake_case names; times as RFC 3339 text (UTC).

-- One row per run. A run starts as 'running' (begin_run) and gets its
-- outcome, source counts and summary counts when it finishes (finish_run).
CREATE TABLE runs (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    schema_version       INTEGER NOT NULL,
    trigger_kind         TEXT    NOT NULL CHECK (trigger_kind IN ('manual', 'schedule')),
    mode                 TEXT    NOT NULL CHECK (mode IN ('report', 'apply')),
    status               TEXT    NOT NULL CHECK (status IN ('running', 'completed', 'aborted', 'failed')),
    abort_reason         TEXT,
    started_at           TEXT    NOT NULL,
    finished_at          TEXT,
    azure_users          INTEGER NOT NULL DEFAULT 0,
    azure_complete       INTEGER NOT NULL DEFAULT 0,
    azure_delta          INTEGER,
    ifs_users            INTEGER NOT NULL DEFAULT 0,
    ifs_complete         INTEGER NOT NULL DEFAULT 0,
    ifs_delta            INTEGER,
    flow_users           INTEGER NOT NULL DEFAULT 0,
    flow_complete        INTEGER NOT NULL DEFAULT 0,
    flow_delta           INTEGER,
    people               INTEGER NOT NULL DEFAULT 0,
    ok                   INTEGER NOT NULL DEFAULT 0,
    findings_total       INTEGER NOT NULL DEFAULT 0,
    findings_new         INTEGER NOT NULL DEFAULT 0,
    findings_persisting  INTEGER NOT NULL DEFAULT 0,
    findings_resolved    INTEGER NOT NULL DEFAULT 0,
    -- NULL: no mail attempted for this run.
    mail_status          TEXT CHECK (mail_status IN ('sent', 'failed')),
    mail_error           TEXT,
    mail_at              TEXT
);

CREATE INDEX runs_status ON runs (status, id);
CREATE INDEX runs_mail_failed ON runs (id) WHERE mail_status = 'failed';

-- Summary.by_kind (dimension 'kind') and Summary.by_cause (dimension 'cause').
CREATE TABLE run_counts (
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    dimension  TEXT    NOT NULL CHECK (dimension IN ('kind', 'cause')),
    name       TEXT    NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (run_id, dimension, name)
) WITHOUT ROWID;

-- Report.advice, in order.
CREATE TABLE run_advice (
    run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    text    TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- Report.findings, in order. finding_key is Finding::key(), for
-- new / persisting / resolved across runs.
CREATE TABLE findings (
    run_id                 INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq                    INTEGER NOT NULL,
    finding_key            TEXT    NOT NULL,
    kind                   TEXT    NOT NULL,
    cause                  TEXT,
    status                 TEXT    NOT NULL,
    aad_id                 TEXT,
    upn                    TEXT,
    display_name           TEXT,
    ifs_identity           TEXT,
    ifs_directory_id       TEXT,
    flow_user_id           TEXT,
    expected_flow_user_id  TEXT,
    action                 TEXT    NOT NULL,
    action_status          TEXT,
    detail                 TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- Report.actions, in order.
CREATE TABLE run_actions (
    run_id            INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq               INTEGER NOT NULL,
    kind              TEXT    NOT NULL,
    flow_user_id      TEXT    NOT NULL,
    new_flow_user_id  TEXT,
    status            TEXT    NOT NULL,
    error             TEXT,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- The run lock: at most one row. A lease that is not renewed expires.
CREATE TABLE run_lock (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    pid          INTEGER NOT NULL,
    host         TEXT    NOT NULL,
    label        TEXT    NOT NULL,
    acquired_at  TEXT    NOT NULL,
    expires_at   TEXT    NOT NULL
);

-- The stored Azure listing per scope ('users' or 'group:<id>') and the
-- Graph delta link that continues it.
CREATE TABLE azure_snapshots (
    scope       TEXT PRIMARY KEY,
    delta_link  TEXT,
    updated_at  TEXT NOT NULL
);

CREATE TABLE azure_users (
    scope                         TEXT    NOT NULL REFERENCES azure_snapshots (scope) ON DELETE CASCADE,
    id                            TEXT    NOT NULL,
    user_principal_name           TEXT    NOT NULL,
    mail                          TEXT,
    display_name                  TEXT,
    account_enabled               INTEGER NOT NULL,
    employee_id                   TEXT,
    on_premises_sam_account_name  TEXT,
    user_type                     TEXT,
    PRIMARY KEY (scope, id)
) WITHOUT ROWID;

-- The action journal: written before an action is sent (pending) and after
-- it returns (applied / failed), so a killed run resumes without repeating
-- or losing an action.
CREATE TABLE action_journal (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id            INTEGER NOT NULL REFERENCES runs (id),
    seq               INTEGER NOT NULL,
    kind              TEXT    NOT NULL,
    flow_user_id      TEXT    NOT NULL,
    new_flow_user_id  TEXT,
    action_status     TEXT    NOT NULL,
    action_error      TEXT,
    state             TEXT    NOT NULL CHECK (state IN ('pending', 'applied', 'failed')),
    error             TEXT,
    created_at        TEXT    NOT NULL,
    finished_at       TEXT
);

CREATE INDEX action_journal_run ON action_journal (run_id, seq);
CREATE INDEX action_journal_pending ON action_journal (id) WHERE state = 'pending';
