-- Summary of the source: cases, events, distinct teams and agents, time span; and what
-- the log records at all, which decides the KPIs it can support and the finding kinds
-- it can measure (opsdesk.analytics.kpis.unavailable_kpis,
-- opsdesk.analytics.findings.unmeasurable_kinds).
SELECT
    COUNT(DISTINCT case_id) AS cases,
    COUNT(*) AS events,
    COUNT(DISTINCT team) AS teams,
    COUNT(DISTINCT agent) AS agents,
    MIN(event_at) AS first_event,
    MAX(event_at) AS last_event,
    COUNT(*) FILTER (
        WHERE type = 'message.added' AND visibility = 'public'
        AND actor_kind IN ('agent', 'user', 'bot')
    ) AS public_replies,
    COUNT(*) FILTER (
        WHERE type = 'message.added' AND actor_kind = 'customer'
    ) AS customer_messages,
    COUNT(status) AS statuses,
    COUNT(*) FILTER (WHERE is_done) AS done_events,
    COUNT(customer) AS customer_ids,
    COUNT(category) AS categories,
    COUNT(csat) AS csat_values,
    COUNT(handle_seconds) AS handle_times,
    COUNT(*) FILTER (WHERE type = 'exception.requested') AS exception_requests,
    COUNT(*) FILTER (WHERE activity IS NOT NULL AND activity <> type) AS step_activities
FROM ev
