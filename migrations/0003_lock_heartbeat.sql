-- Lock ownership by process instance (a random UUID per process) and a
-- heartbeat the running holder renews: a lock whose heartbeat went stale
-- may be taken over whatever its PID says (in a container idrecon is
-- always PID 1). A lock row left by an older version has no instance and
-- its heartbeat starts at its acquisition time.
ALTER TABLE run_lock ADD COLUMN instance_id TEXT NOT NULL DEFAULT '';
ALTER TABLE run_lock ADD COLUMN heartbeat_at TEXT;
UPDATE run_lock SET heartbeat_at = acquired_at;
