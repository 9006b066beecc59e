-- mlmon schema, version 2: what was last announced about each (model, window), per channel, so that a
-- re-run that changes nothing sends nothing new (tasks/alerts.py).
--
-- A row is claimed (inserted, or updated when the failed-check fingerprint changed) in the same
-- transaction that sends the alert: a failed send rolls the claim back, so the next run tries again,
-- and two runs of one window cannot both send. A window that passes again deletes its rows (after
-- sending "resolved"), so a later failure alerts anew. Retention deletes rows with their window.

CREATE TABLE mlmon.alerts (
    model        text        NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    channel      text        NOT NULL,
    fingerprint  text        NOT NULL,
    status       text        NOT NULL,
    n_failed     integer     NOT NULL,
    sent_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, window_start, window_end, channel),
    CONSTRAINT alerts_window_order CHECK (window_end > window_start),
    CONSTRAINT alerts_status CHECK (status IN ('warn', 'fail', 'error')),
    CONSTRAINT alerts_n_failed CHECK (n_failed > 0)
);
CREATE INDEX alerts_sent_at ON mlmon.alerts (sent_at);

COMMENT ON TABLE mlmon.alerts IS
    'The alert last sent per (model, window, channel); used to deduplicate alerts. Grafana: "alerts sent" annotations.';
COMMENT ON COLUMN mlmon.alerts.model IS 'Model name from the models config.';
COMMENT ON COLUMN mlmon.alerts.window_start IS 'Start (inclusive, UTC) of the window the alert is about.';
COMMENT ON COLUMN mlmon.alerts.window_end IS 'End (exclusive, UTC) of the window the alert is about.';
COMMENT ON COLUMN mlmon.alerts.channel IS
    'Where it went: prefect-event (the mlmon.window.failed event) or webhook (the model''s direct webhook).';
COMMENT ON COLUMN mlmon.alerts.fingerprint IS
    'sha256 of the sorted (check, feature, segment, status) of the alerted checks: the same set is never sent twice.';
COMMENT ON COLUMN mlmon.alerts.status IS 'Worst status among the alerted checks: warn / fail / error.';
COMMENT ON COLUMN mlmon.alerts.n_failed IS 'Number of checks the alert listed.';
COMMENT ON COLUMN mlmon.alerts.sent_at IS 'When it was sent. Grafana: annotation time.';
