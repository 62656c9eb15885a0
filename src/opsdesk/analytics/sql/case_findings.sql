-- Case-level friction: one row per (kind, affected case) in `finding_cases`, priced
-- against similar cases without the pattern. Similar = same kind, category and priority
-- (falling back to the same category); extra = the case's elapsed hours (touches) minus
-- the median of those unaffected cases, floored at 0. A repeat contact is priced whole:
-- the repeat case would not exist had the first one held.
-- Parameters: $min_cases, $has_model.
CREATE TEMP TABLE finding_cases AS
WITH category_sizes AS (
    SELECT
        category,
        COUNT(*) AS cases,
        COUNT(*) FILTER (WHERE exceptions > 0) AS exception_cases
    FROM cases
    GROUP BY category
),
totals AS (
    SELECT SUM(cases) AS cases, SUM(exception_cases) AS exception_cases FROM category_sizes
),
-- exception rate more than twice that of all other categories together
exception_heavy AS (
    SELECT c.category
    FROM category_sizes AS c
    CROSS JOIN totals AS t
    WHERE
        c.exception_cases >= $min_cases
        AND t.cases > c.cases
        AND c.exception_cases * (t.cases - c.cases)
        > 2 * (t.exception_cases - c.exception_cases) * c.cases
),
-- one agent handles more than half the cases of a category of at least 2 x $min_cases
key_person AS (
    SELECT h.category, h.agent
    FROM (
        SELECT category, agent, COUNT(*) AS handled
        FROM cases
        WHERE agent IS NOT NULL
        GROUP BY category, agent
    ) AS h
    INNER JOIN category_sizes AS c ON c.category = h.category
    WHERE c.cases >= 2 * $min_cases AND 2 * h.handled > c.cases
),
flags AS (
    SELECT
        'ping_pong' AS kind, case_id, category, priority, elapsed_h, touches,
        ping_pong AS affected, ping_pong_pair AS detail
    FROM cases
    UNION ALL
    SELECT
        'handoff_chain' AS kind, case_id, category, priority, elapsed_h, touches,
        teams >= 3 AS affected, CAST(teams AS VARCHAR) || ' teams' AS detail
    FROM cases
    UNION ALL
    SELECT
        'rework' AS kind, case_id, category, priority, elapsed_h, touches,
        reopened OR repeated_steps > 0 AS affected,
        CASE WHEN reopened THEN 'reopened' ELSE 'repeated step' END AS detail
    FROM cases
    UNION ALL
    SELECT
        'repeat_contact' AS kind, case_id, category, priority, elapsed_h, touches,
        repeat_contact AS affected, NULL AS detail
    FROM cases
    UNION ALL
    SELECT
        'exception_heavy' AS kind, c.case_id, c.category, c.priority, c.elapsed_h, c.touches,
        c.exceptions > 0 AS affected, NULL AS detail
    FROM cases AS c
    INNER JOIN exception_heavy AS e ON e.category = c.category
    UNION ALL
    SELECT
        'key_person' AS kind, c.case_id, c.category, c.priority, c.elapsed_h, c.touches,
        COALESCE(c.agent = k.agent, FALSE) AS affected, k.agent AS detail
    FROM cases AS c
    INNER JOIN key_person AS k ON k.category = c.category
    UNION ALL
    SELECT
        'path_deviation' AS kind, case_id, category, priority, elapsed_h, touches,
        off_path > 0 OR out_of_order > 0 AS affected,
        CASE WHEN off_path > 0 THEN 'step not on the path' ELSE 'steps out of order' END
            AS detail
    FROM cases
    WHERE $has_model
    UNION ALL
    SELECT
        'pending_misuse' AS kind, case_id, category, priority, elapsed_h, touches,
        silent_pending > 0 AS affected, 'pending ended without a customer reply' AS detail
    FROM cases
),
baseline_priority AS (
    SELECT
        kind,
        category,
        priority,
        MEDIAN(elapsed_h) AS hours,
        MEDIAN(CAST(touches AS DOUBLE)) AS touches
    FROM flags
    WHERE NOT affected
    GROUP BY kind, category, priority
),
baseline_category AS (
    SELECT
        kind,
        category,
        MEDIAN(elapsed_h) AS hours,
        MEDIAN(CAST(touches AS DOUBLE)) AS touches
    FROM flags
    WHERE NOT affected
    GROUP BY kind, category
)
SELECT
    f.kind,
    'category=' || f.category AS segment,
    f.case_id,
    s.cases AS segment_cases,
    CASE
        WHEN f.kind = 'repeat_contact' THEN f.elapsed_h
        ELSE GREATEST(f.elapsed_h - COALESCE(bp.hours, bc.hours, f.elapsed_h), 0.0)
    END AS extra_hours,
    CASE
        WHEN f.kind = 'repeat_contact' THEN CAST(f.touches AS DOUBLE)
        ELSE GREATEST(f.touches - COALESCE(bp.touches, bc.touches, f.touches), 0.0)
    END AS extra_touches,
    f.detail
FROM flags AS f
INNER JOIN category_sizes AS s ON s.category = f.category
LEFT JOIN baseline_priority AS bp
    ON bp.kind = f.kind AND bp.category = f.category AND bp.priority = f.priority
LEFT JOIN baseline_category AS bc ON bc.kind = f.kind AND bc.category = f.category
WHERE f.affected
QUALIFY COUNT(*) OVER (PARTITION BY f.kind, f.category) >= $min_cases
