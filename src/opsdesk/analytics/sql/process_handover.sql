-- Handover of work between teams: consecutive team-carrying events of a case whose team
-- differs (PM4Py's handover-of-work with beta = 0, teams as the resource).
SELECT team AS from_team, next_team AS to_team, COUNT(*) AS handovers
FROM steps
WHERE team IS NOT NULL AND next_team IS NOT NULL AND next_team <> team
GROUP BY team, next_team
ORDER BY handovers DESC, from_team, to_team
