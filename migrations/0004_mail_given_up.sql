-- A failed mail that will not be retried any more (a newer report
-- superseded it): set when idrecon gives up on it; mail_status stays
-- 'failed' and mail_error says why it was given up.
ALTER TABLE runs ADD COLUMN mail_given_up_at TEXT;
DROP INDEX runs_mail_failed;
CREATE INDEX runs_mail_failed ON runs (id) WHERE mail_status = 'failed' AND mail_given_up_at IS NULL;
