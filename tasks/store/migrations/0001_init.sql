-- mlmon schema, version 1: one row per (model, window) in `runs`, and the window's metrics, check
-- verdicts, drift table and quarantined documents, all keyed by (model, window_start, window_end).
--
-- Applied once by tasks.store.store.migrate() inside a transaction; never edit this file once it has
-- shipped (its checksum is recorded in mlmon.schema_migrations): add 0002_<what>.sql instead.
--
-- Conventions, relied on by Grafana queries and by the writer:
--   * windows are half-open UTC intervals [window_start, window_end); filter with
--     $__timeFilter(window_start) and plot against window_start;
--   * feature = '' for window-level rows, segment = 'all' for the whole window
--     (otherwise '<field>=<value>');
--   * status is one of pass / warn / fail / error (runs also: running);
--   * a number that is NaN or +-Infinity in Python is stored as NULL (a gap in Grafana, ignored by
--     avg/max), never as 'NaN' / 'Infinity', which would poison every aggregate over it;
--   * there are no foreign keys: every table is replaced per window in one transaction by the
--     writer, and FK checks would slow the bulk COPY for no gain.

-- ---------------------------------------------------------------------------------------- runs
CREATE TABLE mlmon.runs (
    model             text        NOT NULL,
    window_start      timestamptz NOT NULL,
    window_end        timestamptz NOT NULL,
    status            text        NOT NULL,
    started_at        timestamptz,
    finished_at       timestamptz,
    computed_at       timestamptz,
    n_rows            bigint,
    n_quarantined     bigint,
    n_labelled        bigint,
    label_coverage    double precision,
    n_failed_checks   integer,
    reference_hash    text,
    report_path       text,
    flow_run_id       text,
    evidently_rows    bigint,
    message           text,
    labels_checked_at timestamptz,
    PRIMARY KEY (model, window_start, window_end),
    CONSTRAINT runs_window_order CHECK (window_end > window_start),
    CONSTRAINT runs_status CHECK (status IN ('running', 'pass', 'warn', 'fail', 'error')),
    CONSTRAINT runs_counts CHECK (
        n_rows >= 0 AND n_quarantined >= 0 AND n_labelled >= 0 AND n_failed_checks >= 0
        AND evidently_rows >= 0
    )
);
-- overview panels filter every model by time
CREATE INDEX runs_window_start ON mlmon.runs (window_start);

COMMENT ON TABLE mlmon.runs IS
    'One row per (model, window): the window''s verdict and counts. Grafana: overview / status-history panels; report links.';
COMMENT ON COLUMN mlmon.runs.model IS
    'Model name from the models config. Grafana: the $model variable (SELECT DISTINCT model FROM mlmon.runs).';
COMMENT ON COLUMN mlmon.runs.window_start IS
    'Start (inclusive, UTC) of the monitored window. Grafana: the time column; filter with $__timeFilter(window_start).';
COMMENT ON COLUMN mlmon.runs.window_end IS
    'End (exclusive, UTC) of the window. Grafana: staleness of the latest window (now() - window_end).';
COMMENT ON COLUMN mlmon.runs.status IS
    'Worst check status: pass / warn / fail / error; running while a flow works on the window; error when the run failed (the other tables then keep the last good results). Grafana: state-timeline value, colour mapping.';
COMMENT ON COLUMN mlmon.runs.started_at IS
    'When the flow run that produced this row started. Grafana: run duration (finished_at - started_at).';
COMMENT ON COLUMN mlmon.runs.finished_at IS
    'When the results were written (or the run was marked error); NULL while running. Grafana: run duration, "last run" stat.';
COMMENT ON COLUMN mlmon.runs.computed_at IS
    'When the results now in metrics/checks/drift/quarantine were computed; NULL if never. Grafana: shows how old the results behind an error row are.';
COMMENT ON COLUMN mlmon.runs.n_rows IS
    'Documents accepted into the window. Grafana: traffic / volume panel.';
COMMENT ON COLUMN mlmon.runs.n_quarantined IS
    'Documents rejected by the data contract (listed in mlmon.quarantine). Grafana: data-quality panel, share = n_quarantined / (n_rows + n_quarantined).';
COMMENT ON COLUMN mlmon.runs.n_labelled IS
    'Accepted documents with a joined ground-truth label. Grafana: label-coverage panel.';
COMMENT ON COLUMN mlmon.runs.label_coverage IS
    'n_labelled / n_rows (0..1); NULL for an empty window. Grafana: label-coverage gauge; decides whether performance panels are trustworthy.';
COMMENT ON COLUMN mlmon.runs.n_failed_checks IS
    'Checks with status fail or error in this window. Grafana: overview "failed checks" stat and bar chart.';
COMMENT ON COLUMN mlmon.runs.reference_hash IS
    'Hash of the reference dataset the window was compared with. Grafana: annotate when the reference changed.';
COMMENT ON COLUMN mlmon.runs.report_path IS
    'HTML report of the window, relative to the reports root (or a URL). Grafana: data link ${__data.fields.report_path} in table panels.';
COMMENT ON COLUMN mlmon.runs.flow_run_id IS
    'Prefect flow-run id that last wrote this row. Grafana: data link to the Prefect UI for debugging.';
COMMENT ON COLUMN mlmon.runs.evidently_rows IS
    'Rows the Evidently report saw (a seeded sample when smaller than n_rows); NULL = Evidently not run. Grafana: table column next to the report link.';
COMMENT ON COLUMN mlmon.runs.message IS
    'One line: the failed checks of the window, or the error of a failed run. Grafana: tooltip / table column on status panels.';
COMMENT ON COLUMN mlmon.runs.labels_checked_at IS
    'When the labels behind this window''s performance metrics were last looked up (the computation time for a full run). Grafana: "labels as of" column; the late-label job re-evaluates windows whose labels_checked_at is old.';

-- ------------------------------------------------------------------------------------- metrics
CREATE TABLE mlmon.metrics (
    model        text             NOT NULL,
    window_start timestamptz      NOT NULL,
    window_end   timestamptz      NOT NULL,
    metric       text             NOT NULL,
    feature      text             NOT NULL DEFAULT '',
    segment      text             NOT NULL DEFAULT 'all',
    value        double precision,
    PRIMARY KEY (model, window_start, window_end, metric, feature, segment)
);
-- Grafana time series: WHERE model = $model AND metric = '...' AND $__timeFilter(window_start)
CREATE INDEX metrics_series ON mlmon.metrics (model, metric, window_start);

COMMENT ON TABLE mlmon.metrics IS
    'One number per (model, window, metric, feature, segment). Grafana: every time-series panel.';
COMMENT ON COLUMN mlmon.metrics.model IS 'Model name. Grafana: WHERE model = ''$model''.';
COMMENT ON COLUMN mlmon.metrics.window_start IS
    'Window start (UTC). Grafana: the time column; $__timeFilter(window_start).';
COMMENT ON COLUMN mlmon.metrics.window_end IS 'Window end (exclusive, UTC). Grafana: rarely needed; part of the key.';
COMMENT ON COLUMN mlmon.metrics.metric IS
    'Stable snake_case metric name (e.g. drift_effect, missing_share, latency_p95). Grafana: WHERE metric = ''...''; the $metric variable.';
COMMENT ON COLUMN mlmon.metrics.feature IS
    'Column the metric is about; '''' for window-level metrics. Grafana: series name (metric AS "metric", feature AS series).';
COMMENT ON COLUMN mlmon.metrics.segment IS
    '''all'' for the whole window, else ''<field>=<value>''. Grafana: WHERE segment = ''all'' or the $segment variable.';
COMMENT ON COLUMN mlmon.metrics.value IS
    'The value; NULL when it was NaN or infinite (shown as a gap). Grafana: the plotted value.';

-- -------------------------------------------------------------------------------------- checks
CREATE TABLE mlmon.checks (
    model        text             NOT NULL,
    window_start timestamptz      NOT NULL,
    window_end   timestamptz      NOT NULL,
    check_name   text             NOT NULL,
    category     text             NOT NULL,
    feature      text             NOT NULL DEFAULT '',
    segment      text             NOT NULL DEFAULT 'all',
    status       text             NOT NULL,
    value        double precision,
    threshold    double precision,
    message      text             NOT NULL DEFAULT '',
    PRIMARY KEY (model, window_start, window_end, check_name, feature, segment),
    CONSTRAINT checks_status CHECK (status IN ('pass', 'warn', 'fail', 'error'))
);
-- Grafana: one check's status/value over time
CREATE INDEX checks_series ON mlmon.checks (model, check_name, window_start);

COMMENT ON TABLE mlmon.checks IS
    'One verdict per (model, window, check, feature, segment). Grafana: "what failed" tables, status timelines per check.';
COMMENT ON COLUMN mlmon.checks.model IS 'Model name. Grafana: WHERE model = ''$model''.';
COMMENT ON COLUMN mlmon.checks.window_start IS 'Window start (UTC). Grafana: time column; $__timeFilter(window_start).';
COMMENT ON COLUMN mlmon.checks.window_end IS 'Window end (exclusive, UTC). Grafana: part of the key.';
COMMENT ON COLUMN mlmon.checks.check_name IS
    'Stable snake_case check name (e.g. dataset_drift, missing_share, latency_p95). Named check_name because CHECK is reserved in SQL. Grafana: series / row label.';
COMMENT ON COLUMN mlmon.checks.category IS
    'drift / quality / performance / health. Grafana: group or filter panels by category.';
COMMENT ON COLUMN mlmon.checks.feature IS
    'Column the check is about; '''' for window-level checks. Grafana: row label next to check_name.';
COMMENT ON COLUMN mlmon.checks.segment IS '''all'' or ''<field>=<value>''. Grafana: WHERE segment = ''all'' or $segment.';
COMMENT ON COLUMN mlmon.checks.status IS
    'pass / warn / fail / error. Grafana: colour mapping; WHERE status IN (''fail'', ''error'') for alert tables.';
COMMENT ON COLUMN mlmon.checks.value IS
    'The number the verdict was based on; NULL if none or not finite. Grafana: plotted against threshold.';
COMMENT ON COLUMN mlmon.checks.threshold IS
    'The limit value was compared with; NULL if the check has none. Grafana: threshold line / table column.';
COMMENT ON COLUMN mlmon.checks.message IS
    'One human sentence explaining the verdict. Grafana: table column / tooltip.';

-- --------------------------------------------------------------------------------------- drift
CREATE TABLE mlmon.drift (
    model            text             NOT NULL,
    window_start     timestamptz      NOT NULL,
    window_end       timestamptz      NOT NULL,
    feature          text             NOT NULL,
    segment          text             NOT NULL DEFAULT 'all',
    kind             text             NOT NULL,
    test_method      text,
    statistic        double precision,
    p_value          double precision,
    p_adjusted       double precision,
    effect_method    text             NOT NULL,
    effect           double precision,
    effect_threshold double precision,
    n_reference      bigint           NOT NULL,
    n_current        bigint           NOT NULL,
    status           text             NOT NULL,
    message          text             NOT NULL DEFAULT '',
    PRIMARY KEY (model, window_start, window_end, feature, segment),
    CONSTRAINT drift_status CHECK (status IN ('pass', 'warn', 'fail', 'error')),
    CONSTRAINT drift_counts CHECK (n_reference >= 0 AND n_current >= 0)
);
-- Grafana: one feature's drift over time
CREATE INDEX drift_series ON mlmon.drift (model, feature, window_start);

COMMENT ON TABLE mlmon.drift IS
    'Per-column drift scores and decision, one row per (model, window, feature, segment). Grafana: drift heatmap / effect-over-time panels.';
COMMENT ON COLUMN mlmon.drift.model IS 'Model name. Grafana: WHERE model = ''$model''.';
COMMENT ON COLUMN mlmon.drift.window_start IS 'Window start (UTC). Grafana: time column; $__timeFilter(window_start).';
COMMENT ON COLUMN mlmon.drift.window_end IS 'Window end (exclusive, UTC). Grafana: part of the key.';
COMMENT ON COLUMN mlmon.drift.feature IS
    'The column tested (a feature, or the model''s prediction / score). Grafana: series name; the $feature variable.';
COMMENT ON COLUMN mlmon.drift.segment IS '''all'' or ''<field>=<value>''. Grafana: WHERE segment = ''all'' or $segment.';
COMMENT ON COLUMN mlmon.drift.kind IS 'numerical / categorical. Grafana: split panels by kind.';
COMMENT ON COLUMN mlmon.drift.test_method IS
    'Statistical test giving the p-value (e.g. ks, chisquare); NULL when the decision uses the effect size only. Grafana: table column.';
COMMENT ON COLUMN mlmon.drift.statistic IS 'Test statistic; NULL if none or not finite. Grafana: table column.';
COMMENT ON COLUMN mlmon.drift.p_value IS 'Raw p-value of the test; NULL if no test. Grafana: table column, log-scale panel.';
COMMENT ON COLUMN mlmon.drift.p_adjusted IS
    'p-value after the multiple-testing correction over the window''s columns; NULL if no test. Grafana: compared with the alpha in tables.';
COMMENT ON COLUMN mlmon.drift.effect_method IS
    'Effect-size measure (e.g. wasserstein, jensen_shannon, psi). Grafana: legend / table column.';
COMMENT ON COLUMN mlmon.drift.effect IS
    'Effect size; NULL if not computable or not finite. Grafana: the drift-over-time value, heatmap cell.';
COMMENT ON COLUMN mlmon.drift.effect_threshold IS
    'Effect size above which the column counts as drifted. Grafana: threshold line.';
COMMENT ON COLUMN mlmon.drift.n_reference IS 'Non-missing reference values compared. Grafana: table column (sample size).';
COMMENT ON COLUMN mlmon.drift.n_current IS 'Non-missing window values compared. Grafana: table column (sample size).';
COMMENT ON COLUMN mlmon.drift.status IS
    'fail = drifted, warn = too little data, pass = no drift, error = could not compute. Grafana: colour mapping, state timeline per feature.';
COMMENT ON COLUMN mlmon.drift.message IS 'One human sentence explaining the decision. Grafana: tooltip / table column.';

-- ---------------------------------------------------------------------------------- quarantine
CREATE TABLE mlmon.quarantine (
    model        text        NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    seq          integer     NOT NULL,
    doc_id       text        NOT NULL,
    reason       text        NOT NULL,
    field        text        NOT NULL,
    detail       text        NOT NULL,
    document     text        NOT NULL,
    PRIMARY KEY (model, window_start, window_end, seq),
    CONSTRAINT quarantine_seq CHECK (seq >= 0)
);

COMMENT ON TABLE mlmon.quarantine IS
    'Documents rejected by the data contract, kept for inspection. Grafana: "quarantined by reason" bar chart and a drill-down table.';
COMMENT ON COLUMN mlmon.quarantine.model IS 'Model name. Grafana: WHERE model = ''$model''.';
COMMENT ON COLUMN mlmon.quarantine.window_start IS 'Window start (UTC). Grafana: time column; $__timeFilter(window_start).';
COMMENT ON COLUMN mlmon.quarantine.window_end IS 'Window end (exclusive, UTC). Grafana: part of the key.';
COMMENT ON COLUMN mlmon.quarantine.seq IS
    'Position of the document in the window''s quarantine list (0, 1, ...): keeps the key unique when ids repeat. Grafana: ORDER BY in drill-down tables.';
COMMENT ON COLUMN mlmon.quarantine.doc_id IS 'The document''s _id as text. Grafana: table column, to find it in MongoDB.';
COMMENT ON COLUMN mlmon.quarantine.reason IS
    'Reason code (missing_field, wrong_type, non_finite, ...). Grafana: GROUP BY reason in bar charts.';
COMMENT ON COLUMN mlmon.quarantine.field IS 'Logical field (or dotted path) at fault. Grafana: GROUP BY field; table column.';
COMMENT ON COLUMN mlmon.quarantine.detail IS
    'Human detail; untrusted text from the logs (escape it when rendering). Grafana: table column.';
COMMENT ON COLUMN mlmon.quarantine.document IS
    'The raw document as (truncated) JSON; untrusted text. Grafana: drill-down table cell.';

-- ------------------------------------------------------------------------------------- views
CREATE VIEW mlmon.latest_runs AS
SELECT DISTINCT ON (r.model)
    r.*,
    CASE r.status WHEN 'pass' THEN 0 WHEN 'warn' THEN 1 WHEN 'fail' THEN 2 WHEN 'error' THEN 3 END AS severity,
    extract(epoch FROM now() - r.window_end)::double precision AS seconds_since_window_end
FROM mlmon.runs AS r
ORDER BY r.model, r.window_start DESC, r.window_end DESC;

COMMENT ON VIEW mlmon.latest_runs IS
    'The latest window of every model (whatever its status, running included). Grafana: overview table / stat panels, one row per model.';
COMMENT ON COLUMN mlmon.latest_runs.severity IS
    'Status as a number: pass 0, warn 1, fail 2, error 3, running NULL. Grafana: max(severity) = worst model; colour thresholds.';
COMMENT ON COLUMN mlmon.latest_runs.seconds_since_window_end IS
    'Seconds since the latest window ended. Grafana: freshness stat; alert when no new window arrives.';

CREATE VIEW mlmon.latest_checks AS
SELECT c.*
FROM mlmon.checks AS c
JOIN mlmon.latest_runs AS l USING (model, window_start, window_end);

COMMENT ON VIEW mlmon.latest_checks IS
    'Every check of each model''s latest window. Grafana: overview "failing now" table (WHERE status IN (''fail'', ''error'')).';
