-- Summary of the source: cases, events, distinct teams and agents, time span; and what
-- the log records at all, which decides the KPIs it can support and the finding kinds
-- it can measure (opsdesk.analytics.kpis.unavailable_kpis,
-- opsdesk.analytics.findings.unmeasurable_kinds). SLA clock events are left out, as in
-- `ev`; no order is needed, so it reads the source rather than `ev`, which carries
-- only what the ordered queries need.
SELECT
    -- cases are keyed by the hash of their id everywhere (events.sql)
    COUNT(DISTINCT HASH(case_id)) AS cases,
    COUNT(*) AS events,
    COUNT(DISTINCT team) AS teams,
    COUNT(DISTINCT agent) AS agents,
    MIN("at") AS first_event,
    MAX("at") AS last_event,
    COUNT(*) FILTER (
        WHERE type = 'message.added' AND visibility = 'public'
        AND actor_kind IN ('agent', 'user', 'bot')
    ) AS public_replies,
    COUNT(*) FILTER (
        WHERE type = 'message.added' AND actor_kind = 'customer'
    ) AS customer_messages,
    COUNT(status) AS statuses,
    COUNT(*) FILTER (WHERE status IN ('solved', 'closed')) AS done_events,
    COUNT(customer) AS customer_ids,
    COUNT(category) AS categories,
    COUNT(csat) AS csat_values,
    COUNT(handle_seconds) AS handle_times,
    COUNT(*) FILTER (WHERE type = 'exception.requested') AS exception_requests,
    COUNT(*) FILTER (WHERE activity IS NOT NULL AND activity <> type) AS step_activities
FROM case_events
WHERE type NOT LIKE 'sla.%'
