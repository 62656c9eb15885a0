-- Directly-follows graph: how often activity B directly follows activity A in a case.
-- Reads the view `case_events` (CASE_EVENTS); ties in time keep log order (seq).
SELECT source, target, COUNT(*) AS frequency
FROM (
    SELECT
        COALESCE(activity, type) AS source,
        LEAD(COALESCE(activity, type)) OVER (PARTITION BY case_id ORDER BY "at", seq) AS target
    FROM case_events
) AS pairs
WHERE target IS NOT NULL
GROUP BY source, target
ORDER BY frequency DESC, source, target
