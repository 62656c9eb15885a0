-- Variants: the distinct activity sequences of cases, with how many cases follow each.
SELECT variant, COUNT(*) AS cases
FROM (
    SELECT case_id, STRING_AGG(COALESCE(activity, type), ' > ' ORDER BY "at", seq) AS variant
    FROM case_events
    GROUP BY case_id
) AS traces
GROUP BY variant
ORDER BY cases DESC, variant
