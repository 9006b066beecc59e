-- mlmon schema, version 4: registered window checks (business KPIs, custom metrics) are stored like any
-- check, with category 'custom' (tasks/checks/registry.py); their values are metrics named after the
-- check. No table changes: the category column has no constraint; only its documentation grows.

COMMENT ON COLUMN mlmon.checks.category IS
    'drift / quality / performance / health / custom (registered window checks: KPIs, custom metrics). '
    'Grafana: group or filter panels by category.';
