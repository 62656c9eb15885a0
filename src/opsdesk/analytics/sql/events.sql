-- Every event of the source (the view `case_events`, shaped like
-- opsdesk.analytics.schema.CASE_EVENTS), ordered within its case by (at, seq), with
-- the neighbouring state the case-level queries need. Materialised once as `ev`.
-- Times become epoch seconds (t) so durations stay portable arithmetic.
-- SLA clock events (type sla.*) are the system's bookkeeping, not work on the case:
-- they are left out here, so they count as no touch, split no gap and move no
-- elapsed time; cases.sql reads their SLA outcome from case_events directly.
CREATE TEMP TABLE ev AS
SELECT
    -- a 64-bit hash of the case id: sorting and grouping on it is far cheaper than on
    -- the text; case_names maps it back for the report
    HASH(case_id) AS case_id,
    "at" AS event_at,
    epoch("at") AS t,
    type,
    activity,
    team,
    agent,
    status,
    customer,
    channel,
    category,
    priority,
    actor_kind,
    visibility,
    made_sla,
    csat,
    handle_seconds,
    COALESCE(status IN ('solved', 'closed'), FALSE) AS is_done,
    COALESCE(LAG(status IN ('solved', 'closed')) OVER w, FALSE) AS prev_done,
    LAG(status) OVER w AS prev_status,
    ROW_NUMBER() OVER w AS pos,
    LEAD(epoch("at")) OVER w AS next_t,
    -- the last owning team before this event (nulls skipped)
    LAST_VALUE(team IGNORE NULLS) OVER (
        w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS prev_team,
    -- an agent has owned the case at or before this event
    COUNT(agent) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) > 0 AS agent_seen
FROM case_events
WHERE type NOT LIKE 'sla.%'
WINDOW w AS (PARTITION BY case_id ORDER BY "at", seq)
