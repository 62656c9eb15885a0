-- Summary of the source: cases, events, distinct teams and agents, time span.
SELECT
    COUNT(DISTINCT case_id) AS cases,
    COUNT(*) AS events,
    COUNT(DISTINCT team) AS teams,
    COUNT(DISTINCT agent) AS agents,
    MIN(event_at) AS first_event,
    MAX(event_at) AS last_event
FROM ev
