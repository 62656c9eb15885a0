-- Up to $examples example cases per finding: the costliest (extra hours plus a quarter
-- hour per extra touch), ties broken by case id.
SELECT kind, segment, case_id
FROM (
    SELECT
        kind,
        segment,
        case_id,
        ROW_NUMBER() OVER (
            PARTITION BY kind, segment
            ORDER BY extra_hours + 0.25 * extra_touches DESC, case_id
        ) AS rank_in_finding
    FROM finding_cases
) AS ranked
WHERE rank_in_finding <= $examples
ORDER BY kind, segment, rank_in_finding
