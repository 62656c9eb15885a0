-- Up to $examples example cases per finding: the costliest (extra hours plus
-- $hours_per_touch hours per extra touch), ties broken by case id. Cases are keyed by a hash of their id
-- (events.sql); `cases` keeps the id itself for the chosen few.
WITH costs AS (
    SELECT
        f.kind,
        f.segment,
        f.case_id AS case_key,
        f.extra_hours + $hours_per_touch * f.extra_touches AS cost,
        -- the cut-off: the costliest $examples, with every case tied at the boundary
        RANK() OVER (
            PARTITION BY f.kind, f.segment
            ORDER BY f.extra_hours + $hours_per_touch * f.extra_touches DESC
        ) AS cost_rank
    FROM finding_cases AS f
),
candidates AS (
    SELECT kind, segment, case_key, cost FROM costs WHERE cost_rank <= $examples
),
names AS (
    SELECT case_id AS case_key, case_name AS name
    FROM cases
    WHERE case_id IN (SELECT case_key FROM candidates)
)
SELECT kind, segment, case_id
FROM (
    SELECT
        c.kind,
        c.segment,
        n.name AS case_id,
        ROW_NUMBER() OVER (PARTITION BY c.kind, c.segment ORDER BY c.cost DESC, n.name)
            AS rank_in_finding
    FROM candidates AS c
    INNER JOIN names AS n ON n.case_key = c.case_key
) AS ranked
WHERE rank_in_finding <= $examples
ORDER BY kind, segment, rank_in_finding
