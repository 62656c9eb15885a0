-- Case-level friction: one row per (kind, affected case) in `finding_cases`, priced
-- against comparable cases without the pattern (the baseline). Each (kind, category)
-- takes the first baseline that has at least $min_cases unaffected cases:
--   same_category: the unaffected cases of the same category;
--   whole_log:     else the unaffected cases of the whole log (every category);
--   none:          else (every case of the log has the pattern) nothing: extra 0.
-- Within the chosen baseline a case is compared with the unaffected cases of its own
-- priority when there are at least $min_cases of them, else with all of them. Extra =
-- the case's elapsed hours (touches) minus the baseline median, floored at 0. A repeat
-- contact is priced whole (baseline repeat_case): it would not exist had the first
-- case held. Only kinds listed in `measurable_kinds` are looked for.
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
    -- every case once per kind: `affected` = it has the pattern; only the affected cases
    -- of a category that reports the kind (`reported`) make a finding
    SELECT
        'ping_pong' AS kind, case_id, category, priority, elapsed_h, touches,
        ping_pong AS affected, TRUE AS reported, ping_pong_pair AS detail
    FROM cases
    UNION ALL
    SELECT
        'handoff_chain' AS kind, case_id, category, priority, elapsed_h, touches,
        teams >= 3 AS affected, TRUE AS reported, CAST(teams AS VARCHAR) || ' teams' AS detail
    FROM cases
    UNION ALL
    SELECT
        'rework' AS kind, case_id, category, priority, elapsed_h, touches,
        reopened OR repeated_steps > 0 AS affected, TRUE AS reported,
        CASE WHEN reopened THEN 'reopened' ELSE 'repeated step' END AS detail
    FROM cases
    UNION ALL
    SELECT
        'repeat_contact' AS kind, case_id, category, priority, elapsed_h, touches,
        repeat_contact AS affected, TRUE AS reported, NULL AS detail
    FROM cases
    UNION ALL
    -- a case with an exception is no baseline anywhere; only heavy categories report
    SELECT
        'exception_heavy' AS kind, c.case_id, c.category, c.priority, c.elapsed_h, c.touches,
        c.exceptions > 0 AS affected, e.category IS NOT NULL AS reported, NULL AS detail
    FROM cases AS c
    LEFT JOIN exception_heavy AS e ON e.category = c.category
    UNION ALL
    SELECT
        'key_person' AS kind, c.case_id, c.category, c.priority, c.elapsed_h, c.touches,
        COALESCE(c.agent = k.agent, FALSE) AS affected, TRUE AS reported, k.agent AS detail
    FROM cases AS c
    LEFT JOIN key_person AS k ON k.category = c.category
    UNION ALL
    SELECT
        'path_deviation' AS kind, case_id, category, priority, elapsed_h, touches,
        off_path > 0 OR out_of_order > 0 AS affected, TRUE AS reported,
        CASE WHEN off_path > 0 THEN 'step not on the path' ELSE 'steps out of order' END
            AS detail
    FROM cases
    WHERE $has_model
    UNION ALL
    SELECT
        'pending_misuse' AS kind, case_id, category, priority, elapsed_h, touches,
        silent_pending > 0 AS affected, TRUE AS reported,
        'pending ended without a customer reply' AS detail
    FROM cases
),
measured AS (
    SELECT * FROM flags WHERE kind IN (SELECT kind FROM measurable_kinds)
),
-- per (kind, category): affected cases that would make a finding, and unaffected cases
sizes AS (
    SELECT
        kind,
        category,
        COUNT(*) FILTER (WHERE affected AND reported) AS affected_n,
        COUNT(*) FILTER (WHERE NOT affected) AS unaffected_n
    FROM measured
    GROUP BY kind, category
),
log_sizes AS (
    SELECT kind, SUM(unaffected_n) AS unaffected_n FROM sizes GROUP BY kind
),
-- the baseline of each finding (a kind in a category with at least $min_cases affected
-- cases): its own unaffected cases when there are enough, else the whole log's
chosen AS (
    SELECT
        s.kind,
        s.category,
        s.unaffected_n,
        CASE
            WHEN s.kind = 'repeat_contact' THEN 'repeat_case'
            WHEN s.unaffected_n >= $min_cases THEN 'same_category'
            WHEN l.unaffected_n >= $min_cases THEN 'whole_log'
            ELSE 'none'
        END AS baseline,
        CASE
            WHEN s.kind = 'repeat_contact' THEN NULL
            WHEN s.unaffected_n >= $min_cases THEN s.unaffected_n
            ELSE l.unaffected_n
        END AS baseline_cases
    FROM sizes AS s
    INNER JOIN log_sizes AS l ON l.kind = s.kind
    WHERE s.affected_n >= $min_cases
),
-- medians of the unaffected cases, only where a finding is priced on them: by category
-- and priority and by category for same_category, by priority and overall for whole_log
category_medians AS (
    SELECT
        kind,
        category,
        priority,
        GROUPING(priority) AS any_priority,
        COUNT(*) AS n,
        MEDIAN(elapsed_h) AS hours,
        MEDIAN(touches) AS touches
    FROM (
        SELECT m.kind, m.category, m.priority, m.elapsed_h, CAST(m.touches AS DOUBLE) AS touches
        FROM measured AS m
        INNER JOIN chosen AS c ON c.kind = m.kind AND c.category = m.category
        WHERE NOT m.affected AND c.baseline = 'same_category'
    ) AS unaffected
    GROUP BY GROUPING SETS ((kind, category, priority), (kind, category))
),
log_medians AS (
    SELECT
        kind,
        priority,
        GROUPING(priority) AS any_priority,
        COUNT(*) AS n,
        MEDIAN(elapsed_h) AS hours,
        MEDIAN(touches) AS touches
    FROM (
        SELECT m.kind, m.priority, m.elapsed_h, CAST(m.touches AS DOUBLE) AS touches
        FROM measured AS m
        WHERE
            NOT m.affected
            AND m.kind IN (SELECT kind FROM chosen WHERE baseline = 'whole_log')
    ) AS unaffected
    GROUP BY GROUPING SETS ((kind, priority), (kind))
),
priced AS (
    SELECT
        f.kind,
        f.category,
        f.case_id,
        f.elapsed_h,
        CAST(f.touches AS DOUBLE) AS touches,
        f.detail,
        ch.baseline,
        ch.baseline_cases,
        CASE ch.baseline
            WHEN 'same_category' THEN CASE WHEN cp.n >= $min_cases THEN cp.hours ELSE cc.hours END
            WHEN 'whole_log' THEN CASE WHEN lp.n >= $min_cases THEN lp.hours ELSE ll.hours END
        END AS base_hours,
        CASE ch.baseline
            WHEN 'same_category' THEN
                CASE WHEN cp.n >= $min_cases THEN cp.touches ELSE cc.touches END
            WHEN 'whole_log' THEN CASE WHEN lp.n >= $min_cases THEN lp.touches ELSE ll.touches END
        END AS base_touches
    FROM measured AS f
    INNER JOIN chosen AS ch ON ch.kind = f.kind AND ch.category = f.category
    LEFT JOIN category_medians AS cp
        ON cp.kind = f.kind AND cp.category = f.category AND cp.priority = f.priority
        AND cp.any_priority = 0
    LEFT JOIN category_medians AS cc
        ON cc.kind = f.kind AND cc.category = f.category AND cc.any_priority = 1
    LEFT JOIN log_medians AS lp
        ON lp.kind = f.kind AND lp.priority = f.priority AND lp.any_priority = 0
    LEFT JOIN log_medians AS ll ON ll.kind = f.kind AND ll.any_priority = 1
    WHERE f.affected AND f.reported
)
SELECT
    p.kind,
    'category=' || p.category AS segment,
    p.case_id,
    s.cases AS segment_cases,
    CASE
        WHEN p.baseline = 'repeat_case' THEN p.elapsed_h
        ELSE GREATEST(p.elapsed_h - COALESCE(p.base_hours, p.elapsed_h), 0.0)
    END AS extra_hours,
    CASE
        WHEN p.baseline = 'repeat_case' THEN p.touches
        ELSE GREATEST(p.touches - COALESCE(p.base_touches, p.touches), 0.0)
    END AS extra_touches,
    p.detail,
    p.baseline,
    p.baseline_cases
FROM priced AS p
INNER JOIN category_sizes AS s ON s.category = p.category
