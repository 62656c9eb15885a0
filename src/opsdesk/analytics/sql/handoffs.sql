-- Team -> team transfers for the handoff map: ticket.transferred events that changed
-- the owning team (the from side is the last owning team before the event).
SELECT
    prev_team AS from_team,
    team AS to_team,
    COUNT(*) AS transfers
FROM ev
WHERE
    is_transfer
    AND team IS NOT NULL
    AND prev_team IS NOT NULL
    AND team <> prev_team
GROUP BY prev_team, team
ORDER BY transfers DESC, from_team, to_team
