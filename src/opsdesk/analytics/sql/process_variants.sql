-- Variants: the distinct activity sequences of cases, with how many cases follow each.
SELECT variant, COUNT(*) AS cases
FROM (
    SELECT STRING_AGG(activity, ' > ' ORDER BY pos) AS variant
    FROM steps
    GROUP BY case_key
) AS traces
GROUP BY variant
ORDER BY cases DESC, variant
