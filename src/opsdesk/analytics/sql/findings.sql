-- One row per finding (kind, segment) from `finding_cases`, with its baseline (the same
-- on every case of a finding).
SELECT
    kind,
    segment,
    MAX(segment_cases) AS segment_cases,
    COUNT(*) AS cases,
    SUM(extra_hours) AS extra_hours,
    SUM(extra_touches) AS extra_touches,
    MIN(baseline) AS baseline,
    MAX(baseline_cases) AS baseline_cases
FROM finding_cases
GROUP BY kind, segment
