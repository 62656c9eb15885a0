-- What the affected cases of each finding have in common: counts per detail value
-- (ping-pong team pair, key person, gap reason, ...), most frequent first.
SELECT kind, segment, detail, COUNT(*) AS cases
FROM finding_cases
WHERE detail IS NOT NULL
GROUP BY kind, segment, detail
ORDER BY kind, segment, cases DESC, detail
