-- idrecon store, schema 6: a run's findings as chunks.
--
-- One row per finding cost SQLite ~1 s per run at 130k findings, and a
-- run's findings are only ever read whole (a report) or as their keys (the
-- next run's new / persisting / resolved). A chunk holds up to 1,000
-- findings in report order: `keys` is the JSON array of their
-- Finding::key(), `findings` the JSON array of [kind, cause, status,
-- aad_id, upn, display_name, ifs_identity, ifs_directory_id, flow_user_id,
-- expected_flow_user_id, action, action_status, detail] arrays, enums by
-- their snake_case names as before.
CREATE TABLE finding_chunks (
    run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    chunk     INTEGER NOT NULL,
    keys      TEXT    NOT NULL,
    findings  TEXT    NOT NULL,
    PRIMARY KEY (run_id, chunk)
);

INSERT INTO finding_chunks (run_id, chunk, keys, findings)
SELECT run_id, seq / 1000, json_group_array(finding_key),
       json_group_array(json_array(kind, cause, status, aad_id, upn, display_name,
           ifs_identity, ifs_directory_id, flow_user_id, expected_flow_user_id,
           action, action_status, detail))
FROM (SELECT * FROM findings ORDER BY run_id, seq)
GROUP BY run_id, seq / 1000;

DROP TABLE findings;
