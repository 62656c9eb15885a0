-- Ownership gaps, per team: time between consecutive events of a case that is not
-- solved, closed or pending and has no owning team, has lost the agent it had, or is
-- on hold (waiting on an internal party). The gap belongs to the owning team, else the
-- last team that owned the case, else "(no team)". Extra hours = the gap time itself
-- (baseline gap_time: no comparison needed, nobody owned the case in that time).
-- Skipped unless `measurable_kinds` lists ownership_gap. Parameter: $min_cases.
INSERT INTO finding_cases
WITH gaps AS (
    SELECT
        case_id,
        COALESCE(team, prev_team, '(no team)') AS gap_team,
        CASE
            WHEN status = 'on_hold' THEN 'on hold'
            WHEN team IS NULL THEN 'no owning team'
            ELSE 'no owning agent'
        END AS reason,
        next_t - t AS seconds
    FROM ev
    WHERE
        next_t IS NOT NULL
        AND NOT is_done
        AND COALESCE(status, '') <> 'pending'
        AND (status = 'on_hold' OR team IS NULL OR (agent IS NULL AND agent_seen))
),
per_case AS (
    SELECT
        gap_team,
        case_id,
        SUM(seconds) AS seconds,
        ARG_MAX(reason, seconds) AS reason
    FROM gaps
    GROUP BY gap_team, case_id
    HAVING SUM(seconds) > 0
),
team_sizes AS (
    SELECT team, COUNT(DISTINCT case_id) AS cases
    FROM ev
    WHERE team IS NOT NULL
    GROUP BY team
    UNION ALL
    SELECT '(no team)' AS team, COUNT(DISTINCT case_id) AS cases
    FROM ev
)
SELECT
    'ownership_gap' AS kind,
    'team=' || p.gap_team AS segment,
    p.case_id,
    s.cases AS segment_cases,
    p.seconds / 3600.0 AS extra_hours,
    0.0 AS extra_touches,
    p.reason AS detail,
    'gap_time' AS baseline,
    CAST(NULL AS BIGINT) AS baseline_cases
FROM per_case AS p
INNER JOIN team_sizes AS s ON s.team = p.gap_team
WHERE 'ownership_gap' IN (SELECT kind FROM measurable_kinds)
QUALIFY COUNT(*) OVER (PARTITION BY p.gap_team) >= $min_cases
