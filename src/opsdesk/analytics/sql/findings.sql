-- One row per finding (kind, segment) from `finding_cases`.
SELECT
    kind,
    segment,
    MAX(segment_cases) AS segment_cases,
    COUNT(*) AS cases,
    SUM(extra_hours) AS extra_hours,
    SUM(extra_touches) AS extra_touches
FROM finding_cases
GROUP BY kind, segment
