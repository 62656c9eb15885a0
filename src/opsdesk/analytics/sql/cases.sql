-- The per-case summary every KPI and finding is derived from, materialised once as
-- `cases`. Reads `ev` (events.sql) and two tables the engine registers from the
-- operating model (empty without one):
--   path_steps(request_type, step, step_no)  -- standard path, step names lower-cased
--   escalation_teams(team)                   -- teams named in transfer_to_team actions
-- Parameters: $repeat_window_days, $has_model.
CREATE TEMP TABLE cases AS
WITH ordered AS (
    -- what the order of a case's events decides, from the ordered events
    SELECT
        ev.case_id,
        MIN(ev.event_at) AS created_at,
        MIN(ev.t) AS created_t,
        MAX(ev.t) AS last_t,
        COUNT(*) AS touches,
        MIN(ev.t) FILTER (WHERE ev.is_done) AS solved_t,
        MAX(ev.t) FILTER (WHERE ev.is_done AND NOT ev.prev_done) AS last_solved_t,
        ARG_MAX(ev.is_done, ev.pos) AS done_at_end,
        COUNT(*) FILTER (WHERE ev.is_transfer) AS transfers,
        COUNT(*) FILTER (
            WHERE ev.prev_done AND ev.status IN ('new', 'open', 'pending', 'on_hold')
        ) AS reopens,
        ARG_MIN(ev.team, ev.pos) FILTER (
            WHERE ev.is_done AND ev.team IS NOT NULL
        ) AS solved_team,
        ARG_MAX(ev.team, ev.pos) FILTER (WHERE ev.team IS NOT NULL) AS last_team,
        ARG_MIN(ev.agent, ev.pos) FILTER (
            WHERE ev.is_done AND ev.agent IS NOT NULL
        ) AS solved_agent,
        ARG_MAX(ev.agent, ev.pos) FILTER (WHERE ev.agent IS NOT NULL) AS last_agent
    FROM ev
    GROUP BY ev.case_id
),

-- The columns only the case as a whole needs, straight from the source (they stay out
-- of the sort in events.sql): "last" and "first" are by (at, seq), one number `o`.
-- Grouped by the id itself, which keeps it for the report (finding_examples.sql).
attributes AS (
    SELECT
        HASH(case_name) AS case_id,
        case_name,
        MIN(epoch("at")) FILTER (
            WHERE type = 'message.added'
            AND visibility = 'public'
            AND actor_kind IN ('agent', 'user', 'bot')
        ) AS response_t,
        COUNT(*) FILTER (WHERE type = 'exception.requested') AS exceptions,
        ARG_MAX(customer, o) FILTER (WHERE customer IS NOT NULL) AS customer,
        ARG_MAX(category, o) FILTER (WHERE category IS NOT NULL) AS category,
        ARG_MAX(priority, o) FILTER (WHERE priority IS NOT NULL) AS priority,
        ARG_MIN(channel, o) FILTER (WHERE channel IS NOT NULL) AS channel,
        ARG_MAX(made_sla, o) FILTER (WHERE made_sla IS NOT NULL) AS made_sla,
        SUM(csat) AS csat_sum,
        COUNT(csat) AS csat_n,
        SUM(handle_seconds) AS handle_s,
        COUNT(handle_seconds) AS handle_n
    FROM (
        SELECT
            case_id AS case_name,
            "at",
            type,
            actor_kind,
            visibility,
            customer,
            category,
            priority,
            channel,
            made_sla,
            csat,
            handle_seconds,
            -- (at, seq) as one number: microseconds in the high 64 bits, seq below
            CAST(epoch_us("at") AS HUGEINT) * 18446744073709551616 + seq AS o
        FROM case_events
        WHERE type NOT LIKE 'sla.%'
    ) AS events
    GROUP BY case_name
),

base AS (
    SELECT ordered.*, attributes.* EXCLUDE (case_id)
    FROM ordered
    INNER JOIN attributes ON attributes.case_id = ordered.case_id
),

-- The SLA outcome of cases with SLA clock events (our own log): the rows of the clock
-- events carry the case's made_sla as it stood after each (true from the first
-- activation, false from any breach on), so the case made its SLA iff all of them say so.
clocks AS (
    SELECT HASH(case_id) AS case_id, BOOL_AND(made_sla) AS made_sla
    FROM case_events
    WHERE type LIKE 'sla.%' AND made_sla IS NOT NULL
    GROUP BY HASH(case_id)
),

-- transfers to a team the operating model escalates to
escalations AS (
    SELECT ev.case_id, COUNT(*) AS transfers
    FROM ev
    INNER JOIN escalation_teams AS esc ON esc.team = ev.team
    WHERE ev.is_transfer
    GROUP BY ev.case_id
),

-- Ping-pong: the team sequence with consecutive repeats collapsed (nulls skipped)
-- contains X -> Y -> X.
team_runs AS (
    SELECT
        case_id,
        pos,
        team,
        LAG(team, 1) OVER (PARTITION BY case_id ORDER BY pos) AS team_1,
        LAG(team, 2) OVER (PARTITION BY case_id ORDER BY pos) AS team_2
    FROM ev
    WHERE team IS NOT NULL AND (prev_team IS NULL OR team <> prev_team)
),
ping_pong AS (
    SELECT
        case_id,
        COUNT(DISTINCT team) AS teams,
        ARG_MIN(LEAST(team, team_1) || ' <-> ' || GREATEST(team, team_1), pos) FILTER (
            WHERE team = team_2
        ) AS pair
    FROM team_runs
    GROUP BY case_id
),

-- Standard path: activities compared with the steps of the request type the case had
-- at the event. An activity equal to the event type carries no step information.
step_events AS (
    SELECT ev.case_id, ev.pos, ps.step_no
    FROM ev
    INNER JOIN (SELECT DISTINCT request_type FROM path_steps) AS pt
        ON pt.request_type = ev.step_category
    LEFT JOIN path_steps AS ps
        ON ps.request_type = ev.step_category AND ps.step = ev.step_activity
    WHERE ev.step_activity IS NOT NULL
),
first_steps AS (
    SELECT
        case_id,
        step_no,
        MAX(step_no) OVER (
            PARTITION BY case_id ORDER BY pos ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS max_before
    FROM (
        SELECT
            case_id,
            pos,
            step_no,
            ROW_NUMBER() OVER (PARTITION BY case_id, step_no ORDER BY pos) AS occurrence
        FROM step_events
        WHERE step_no IS NOT NULL
    ) AS numbered
    WHERE occurrence = 1
),
path AS (
    SELECT
        case_id,
        COUNT(*) FILTER (WHERE step_no IS NULL) AS off_path,
        COUNT(step_no) - COUNT(DISTINCT step_no) AS repeated_steps
    FROM step_events
    GROUP BY case_id
),
path_order AS (
    SELECT case_id, COUNT(*) FILTER (WHERE step_no < max_before) AS out_of_order
    FROM first_steps
    GROUP BY case_id
),

-- Pending periods: from the event that set status pending to the first later event
-- with another status. Silent: ended by a return to an active status with no customer
-- message.added after the period began (the ending event included).
pending_rows AS (
    SELECT
        case_id,
        pos,
        is_customer_message,
        status,
        status = 'pending' AND COALESCE(prev_status, '') <> 'pending' AS is_start
    FROM ev
    WHERE status = 'pending' OR prev_status = 'pending'
),
pending_numbered AS (
    SELECT
        *,
        SUM(CASE WHEN is_start THEN 1 ELSE 0 END) OVER (
            PARTITION BY case_id ORDER BY pos ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS period
    FROM pending_rows
),
pending_periods AS (
    SELECT
        case_id,
        period,
        BOOL_OR(COALESCE(status IN ('new', 'open', 'on_hold'), FALSE)) AS resumed,
        BOOL_OR(
            NOT is_start AND is_customer_message
        ) AS customer_replied
    FROM pending_numbered
    GROUP BY case_id, period
),
pending AS (
    SELECT case_id, COUNT(*) AS silent_pending
    FROM pending_periods
    WHERE resumed AND NOT customer_replied
    GROUP BY case_id
),

joined AS (
    SELECT
        base.case_id,
        base.case_name,
        base.customer,
        COALESCE(base.category, '(none)') AS category,
        COALESCE(base.priority, '(none)') AS priority,
        COALESCE(base.channel, '(none)') AS channel,
        COALESCE(base.solved_team, base.last_team, '(no team)') AS team,
        COALESCE(base.solved_agent, base.last_agent) AS agent,
        strftime(base.created_at, '%G-W%V') AS week,
        base.created_at,
        base.created_t,
        base.solved_t,
        base.last_t,
        base.solved_t IS NOT NULL AS solved,
        -- elapsed: to the final resolution (the last move into solved/closed) when the
        -- case ends solved or closed, else to its last event
        (
            CASE WHEN base.done_at_end THEN base.last_solved_t ELSE base.last_t END
            - base.created_t
        ) / 3600.0 AS elapsed_h,
        (base.solved_t - base.created_t) / 3600.0 AS resolution_h,
        (base.response_t - base.created_t) / 3600.0 AS response_h,
        base.touches,
        base.transfers,
        base.reopens > 0 AS reopened,
        base.exceptions,
        COALESCE(ping_pong.teams, 0) AS teams,
        CASE
            WHEN $has_model THEN escalations.case_id IS NOT NULL
            ELSE base.transfers >= 2
        END AS escalated,
        -- a case's own SLA clocks decide; else the last flag the source set on its rows
        COALESCE(clocks.made_sla, base.made_sla) AS made_sla,
        base.csat_sum,
        base.csat_n,
        base.handle_s,
        base.handle_n,
        ping_pong.pair IS NOT NULL AS ping_pong,
        ping_pong.pair AS ping_pong_pair,
        COALESCE(path.off_path, 0) AS off_path,
        COALESCE(path.repeated_steps, 0) AS repeated_steps,
        COALESCE(path_order.out_of_order, 0) AS out_of_order,
        COALESCE(pending.silent_pending, 0) AS silent_pending
    FROM base
    LEFT JOIN clocks ON clocks.case_id = base.case_id
    LEFT JOIN escalations ON escalations.case_id = base.case_id
    LEFT JOIN ping_pong ON ping_pong.case_id = base.case_id
    LEFT JOIN path ON path.case_id = base.case_id
    LEFT JOIN path_order ON path_order.case_id = base.case_id
    LEFT JOIN pending ON pending.case_id = base.case_id
),

-- Repeat contact: the same customer's previous case in the same category (by creation)
-- was still unsolved when this one was created, or was solved at most
-- $repeat_window_days days before it. Only the columns it needs go through the window's
-- sort (cases without a customer not at all); the flags join back.
neighbours AS (
    SELECT
        case_id,
        created_t,
        solved_t,
        LAG(case_id) OVER cw AS previous_case,
        LAG(solved_t) OVER cw AS previous_solved_t,
        LEAD(case_id) OVER cw AS next_case,
        LEAD(created_t) OVER cw AS next_created_t
    FROM base
    WHERE customer IS NOT NULL
    -- (case_id is the hash key here: a deterministic tie-break for cases opened at once)
    WINDOW cw AS (
        PARTITION BY customer, COALESCE(category, '(none)') ORDER BY created_t, case_id
    )
),
repeats AS (
    SELECT
        case_id,
        previous_case IS NOT NULL
        AND created_t <= COALESCE(previous_solved_t, created_t) + $repeat_window_days * 86400.0
            AS repeat_contact,
        next_case IS NOT NULL
        AND next_created_t <= COALESCE(solved_t, next_created_t) + $repeat_window_days * 86400.0
            AS repeated
    FROM neighbours
)
SELECT
    case_id,
    case_name,
    customer,
    category,
    priority,
    channel,
    team,
    agent,
    week,
    created_at,
    created_t,
    solved_t,
    last_t,
    solved,
    elapsed_h,
    resolution_h,
    response_h,
    touches,
    transfers,
    reopened,
    exceptions,
    teams,
    escalated,
    made_sla,
    csat_sum,
    csat_n,
    handle_s,
    handle_n,
    ping_pong,
    ping_pong_pair,
    off_path,
    repeated_steps,
    out_of_order,
    silent_pending,
    repeat_contact,
    repeated,
    -- first contact resolution: solved, never transferred or reopened, no repeat contact
    solved AND transfers = 0 AND NOT reopened AND NOT repeated AS fcr
FROM (
    SELECT
        joined.*,
        COALESCE(repeats.repeat_contact, FALSE) AS repeat_contact,
        COALESCE(repeats.repeated, FALSE) AS repeated
    FROM joined
    LEFT JOIN repeats ON repeats.case_id = joined.case_id
) AS flagged
