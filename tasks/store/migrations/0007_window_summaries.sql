-- mlmon schema, version 7: mergeable per-shard summaries of big windows (tasks/summary.py), so that a
-- longer window (a week) is computed by merging stored shorter ones (days, hours) without reading
-- MongoDB again. Written by the sharded path (flows/sharded.py); not read by Grafana.

CREATE TABLE IF NOT EXISTS mlmon.window_summaries (
    model        text        NOT NULL,
    shard_start  timestamptz NOT NULL,
    shard_end    timestamptz NOT NULL,
    plan_key     text        NOT NULL,
    n_rows       bigint      NOT NULL,
    summary      bytea       NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, shard_start, shard_end),
    CHECK (shard_end > shard_start)
);

COMMENT ON TABLE mlmon.window_summaries IS
    'One mergeable summary per (model, time shard): fine-bin counts per numerical column, category counts, '
    'moments, a KLL latency sketch, error and confusion counts (tasks/summary.py). Merged to judge any '
    'window made of stored shards; not for Grafana.';
COMMENT ON COLUMN mlmon.window_summaries.plan_key IS
    'Reference hash + summary settings the shard was binned against: only summaries with the same key merge.';
COMMENT ON COLUMN mlmon.window_summaries.n_rows IS 'Rows of the shard (accepted documents).';
COMMENT ON COLUMN mlmon.window_summaries.summary IS
    'The summary: zlib-compressed JSON (mlmon.tasks.summary.to_bytes), versioned; never pickle.';
COMMENT ON COLUMN mlmon.window_summaries.model IS 'Model name from the models config. Not used by Grafana.';
COMMENT ON COLUMN mlmon.window_summaries.shard_start IS 'Start (inclusive, UTC) of the shard. Not used by Grafana.';
COMMENT ON COLUMN mlmon.window_summaries.shard_end IS 'End (exclusive, UTC) of the shard. Not used by Grafana.';
COMMENT ON COLUMN mlmon.window_summaries.computed_at IS 'When the shard was summarised. Not used by Grafana.';
