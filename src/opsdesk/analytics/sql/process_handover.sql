-- Handover of work between teams: consecutive events of a case whose owning team differs
-- (PM4Py's handover-of-work with beta = 0, teams as the resource).
SELECT from_team, to_team, COUNT(*) AS handovers
FROM (
    SELECT
        team AS from_team,
        LEAD(team) OVER (PARTITION BY case_id ORDER BY "at", seq) AS to_team
    FROM case_events
) AS steps
WHERE to_team IS NOT NULL AND from_team IS NOT NULL AND to_team <> from_team
GROUP BY from_team, to_team
ORDER BY handovers DESC, from_team, to_team
