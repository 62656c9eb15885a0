-- Directly-follows graph: how often activity B directly follows activity A in a case.
SELECT activity AS source, next_activity AS target, COUNT(*) AS frequency
FROM steps
WHERE next_activity IS NOT NULL
GROUP BY activity, next_activity
ORDER BY frequency DESC, source, target
