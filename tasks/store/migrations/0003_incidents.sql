-- mlmon schema, version 3: incidents, i.e. a window's failing and warning checks grouped by what broke
-- (tasks/incidents.py), one row per (model, window, incident).
--
-- An incident that persists across windows keeps its incident_key: its rows in consecutive windows
-- say when it was opened (opened_start), how many windows it has lasted, and how it changed in each
-- window (change_kind: opened / worsened / ongoing / improved / resolved). The incidents open after a
-- window are its rows whose change_kind is not 'resolved'. A window is replaced as a whole, like the
-- other window tables (re-runs never duplicate); retention deletes rows with their window.

CREATE TABLE mlmon.incidents (
    model                text        NOT NULL,
    window_start         timestamptz NOT NULL,
    window_end           timestamptz NOT NULL,
    incident_key         text        NOT NULL,
    kind                 text        NOT NULL,
    subject              text        NOT NULL,
    status               text        NOT NULL,
    change_kind          text        NOT NULL,
    sentence             text        NOT NULL,
    feature              text        NOT NULL DEFAULT '',
    segments             text        NOT NULL DEFAULT '',
    n_checks             integer     NOT NULL DEFAULT 0,
    opened_start         timestamptz NOT NULL,
    n_windows            integer     NOT NULL,
    announced            boolean     NOT NULL DEFAULT false,
    last_announced_start timestamptz,
    PRIMARY KEY (model, window_start, window_end, incident_key),
    CONSTRAINT incidents_window_order CHECK (window_end > window_start),
    CONSTRAINT incidents_status CHECK (status IN ('warn', 'fail', 'error')),
    CONSTRAINT incidents_change CHECK (change_kind IN ('opened', 'worsened', 'ongoing', 'improved', 'resolved')),
    CONSTRAINT incidents_n_windows CHECK (n_windows > 0)
);
CREATE INDEX incidents_model_window ON mlmon.incidents (model, window_start);

COMMENT ON TABLE mlmon.incidents IS
    'One row per (model, window, incident): what broke, in one sentence. Grafana: "open incidents" table and incident annotations.';
COMMENT ON COLUMN mlmon.incidents.model IS 'Model name from the models config.';
COMMENT ON COLUMN mlmon.incidents.window_start IS 'Start (inclusive, UTC) of the window. Grafana: time column.';
COMMENT ON COLUMN mlmon.incidents.window_end IS 'End (exclusive, UTC) of the window.';
COMMENT ON COLUMN mlmon.incidents.incident_key IS
    'Stable identity across windows: column:<feature>, prediction, service, model_quality, volume, logs, drift or check:<custom check>.';
COMMENT ON COLUMN mlmon.incidents.kind IS 'What broke: column, prediction, service, model_quality, volume, logs, drift, custom.';
COMMENT ON COLUMN mlmon.incidents.subject IS 'What broke, as people read it (a column name, "service", ...).';
COMMENT ON COLUMN mlmon.incidents.status IS 'Worst status of its checks in this window (warn / fail / error); for a resolved row, its last status.';
COMMENT ON COLUMN mlmon.incidents.change_kind IS
    'How it changed since the previous window: opened, worsened, ongoing, improved or resolved. Grafana: filter <> ''resolved'' for open incidents.';
COMMENT ON COLUMN mlmon.incidents.sentence IS 'One plain sentence with the evidence (the same as in the report, alert and Prefect artifact).';
COMMENT ON COLUMN mlmon.incidents.feature IS 'The column it is about ('''' when none); raw name as in mlmon.drift.feature.';
COMMENT ON COLUMN mlmon.incidents.segments IS 'Where: '''' (whole window), "in all segments", "only in plan=pro", ...';
COMMENT ON COLUMN mlmon.incidents.n_checks IS 'Checks (window and segments) folded into it.';
COMMENT ON COLUMN mlmon.incidents.opened_start IS 'Start of the window it was opened in. Grafana: "open since".';
COMMENT ON COLUMN mlmon.incidents.n_windows IS 'Consecutive windows it has been open, this one included.';
COMMENT ON COLUMN mlmon.incidents.announced IS 'Whether this window''s alert announced it (opened, worsened, reminder or resolved).';
COMMENT ON COLUMN mlmon.incidents.last_announced_start IS 'Start of the last window whose alert announced it (drives alerts.remind_every).';
