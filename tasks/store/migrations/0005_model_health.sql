-- mlmon schema, version 5: model-health families (tasks/checks/families.py) store their checks and
-- metrics in the same narrow tables as every other check, under their own category. No table changes.

COMMENT ON COLUMN mlmon.checks.category IS
    'drift / quality / performance / health / custom (registered window checks: KPIs, custom metrics) / '
    'model-health families: outliers, multivariate_drift, explanations, fairness, estimated_performance, '
    'versions. Grafana: group or filter panels by category.';
