-- Every event of the source (the view `case_events`, shaped like
-- opsdesk.analytics.schema.CASE_EVENTS), ordered within its case by (at, seq), with
-- the neighbouring state the case-level queries need. Materialised once as `ev`.
-- Times become epoch seconds (t) so durations stay portable arithmetic.
-- SLA clock events (type sla.*) are the system's bookkeeping, not work on the case:
-- they are left out here, so they count as no touch, split no gap and move no
-- elapsed time; cases.sql reads their SLA outcome from case_events directly.
-- The window's sort carries every column, so the wide text ones (type, activity,
-- actor_kind, visibility) travel as the few flags the later queries test instead.
-- `pos` only orders the events of a case (1 for the first): the queries compare it,
-- never count with it. A file diagnosed straight from disk skips this statement: the
-- importer builds the same `ev` from its own window (importers/tabular.py,
-- _diagnostic_events), where `pos` is not dense.
CREATE TEMP TABLE ev AS
SELECT
    case_id,
    event_at,
    epoch(event_at) AS t,
    is_transfer,
    is_customer_message,
    step_activity,
    team,
    agent,
    status,
    step_category,
    is_done,
    COALESCE(LAG(is_done) OVER w, FALSE) AS prev_done,
    LAG(status) OVER w AS prev_status,
    ROW_NUMBER() OVER w AS pos,
    LEAD(epoch(event_at)) OVER w AS next_t,
    -- the last owning team before this event (nulls skipped)
    LAST_VALUE(team IGNORE NULLS) OVER (
        w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS prev_team,
    -- an agent has owned the case at or before this event
    COUNT(agent) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) > 0 AS agent_seen
FROM (
    SELECT
        -- a 64-bit hash of the case id: sorting and grouping on it is far cheaper than
        -- on the text; finding_examples.sql maps it back for the chosen few
        HASH(case_id) AS case_id,
        seq,
        "at" AS event_at,
        type = 'ticket.transferred' AS is_transfer,
        type = 'message.added' AND actor_kind = 'customer' AS is_customer_message,
        -- a step of the standard path: an activity other than the event type (a
        -- converter that copies the type carries no step information), compared
        -- trimmed and lower-cased
        CASE WHEN activity <> type THEN LOWER(TRIM(activity)) END AS step_activity,
        -- the request type at a step, for comparing it with that type's path
        CASE WHEN activity <> type THEN category END AS step_category,
        team,
        agent,
        status,
        COALESCE(status IN ('solved', 'closed'), FALSE) AS is_done
    FROM case_events
    WHERE type NOT LIKE 'sla.%'
) AS events
WINDOW w AS (PARTITION BY case_id ORDER BY event_at, seq)
