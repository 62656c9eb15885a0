-- Agents whose share of owned open time spent in pending is more than twice the median
-- agent's (agents with at least $min_cases cases; outliers need $min_cases cases with
-- pending time). Extra hours per case = its pending time beyond the median share of its
-- open time under that agent, floored at 0 (baseline median_agent). Skipped unless
-- `measurable_kinds` lists pending_misuse.
INSERT INTO finding_cases
WITH spans AS (
    SELECT
        case_id,
        agent,
        COALESCE(SUM(next_t - t) FILTER (WHERE status = 'pending'), 0.0) AS pending_s,
        SUM(next_t - t) AS open_s
    FROM ev
    WHERE agent IS NOT NULL AND next_t IS NOT NULL AND NOT is_done
    GROUP BY case_id, agent
),
agents AS (
    SELECT
        agent,
        COUNT(*) AS cases,
        COUNT(*) FILTER (WHERE pending_s > 0) AS pending_cases,
        SUM(pending_s) / NULLIF(SUM(open_s), 0) AS share
    FROM spans
    GROUP BY agent
),
typical AS (
    SELECT MEDIAN(share) AS share FROM agents WHERE cases >= $min_cases
),
outliers AS (
    SELECT a.agent, a.cases, typical.share AS median_share
    FROM agents AS a
    CROSS JOIN typical
    WHERE a.cases >= $min_cases AND a.pending_cases >= $min_cases AND a.share > 2 * typical.share
)
SELECT
    'pending_misuse' AS kind,
    'agent=' || s.agent AS segment,
    s.case_id,
    o.cases AS segment_cases,
    GREATEST(s.pending_s - o.median_share * s.open_s, 0.0) / 3600.0 AS extra_hours,
    0.0 AS extra_touches,
    'pending share above twice the median agent' AS detail,
    'median_agent' AS baseline,
    CAST(NULL AS BIGINT) AS baseline_cases
FROM spans AS s
INNER JOIN outliers AS o ON o.agent = s.agent
WHERE s.pending_s > 0 AND 'pending_misuse' IN (SELECT kind FROM measurable_kinds)
