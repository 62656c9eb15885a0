-- The process-mining views of the log (the view `case_events`) in one statement:
-- the directly-follows graph, the variants and the handover of work between teams.
-- One row per result: view ('dfg' | 'handover' | 'variant'), source, target, n.
--   dfg:      source activity -> target activity directly after it in a case, n times
--   handover: the case passed from team source to team target, n times (consecutive
--             team-carrying events whose team differs: PM4Py's handover of work with
--             beta = 0, teams as the resource)
--   variant:  source is the case's activity sequence joined by ' > ', n cases follow it
-- The activity of an event is its `activity`, else its `type`. SLA clock events
-- (sla.*) are bookkeeping, not steps of the case, and are left out.
--
-- One ordered pass over the log (`steps`, the only sort) feeds all three. Activities,
-- teams and cases travel through it as 64-bit hashes (sorting and grouping on them is
-- far cheaper than on text) and get their names back once aggregated. A case's variant
-- is keyed by XOR-ing a hash of each (position, activity) pair, which needs no per-case
-- sort (two different sequences share a key with odds of about variants^2 / 2^65); the
-- readable sequence is built for one example case per key, from its activity keys in
-- order, then named through a map of the few distinct activities.
WITH steps AS MATERIALIZED (
    SELECT
        case_key,
        activity_key,
        team_key,
        ROW_NUMBER() OVER w AS pos,
        LEAD(team_key IGNORE NULLS) OVER w AS next_team_key
    FROM (
        SELECT
            HASH(case_id) AS case_key,
            "at",
            seq,
            HASH(COALESCE(activity, type)) AS activity_key,
            CASE WHEN team IS NOT NULL THEN HASH(team) END AS team_key
        FROM case_events
        WHERE type NOT LIKE 'sla.%'
    ) AS events
    WINDOW w AS (PARTITION BY case_key ORDER BY "at", seq)
),

activities AS (
    SELECT DISTINCT HASH(COALESCE(activity, type)) AS activity_key, COALESCE(activity, type) AS name
    FROM case_events
    WHERE type NOT LIKE 'sla.%'
),

teams AS (
    SELECT DISTINCT HASH(team) AS team_key, team AS name
    FROM case_events
    WHERE team IS NOT NULL AND type NOT LIKE 'sla.%'
),

traces AS (
    SELECT
        case_key,
        BIT_XOR(HASH(XOR(activity_key, CAST(pos AS UBIGINT)))) AS variant_key
    FROM steps
    GROUP BY case_key
),

kinds AS (
    SELECT variant_key, COUNT(*) AS cases, MIN(case_key) AS example
    FROM traces
    GROUP BY variant_key
),

variant_steps AS (
    -- the steps of each variant's example case: the only rows that need their order
    SELECT k.variant_key, k.cases, s.pos, s.activity_key
    FROM kinds AS k
    INNER JOIN steps AS s ON s.case_key = k.example
),

-- consecutive pairs of a case: within the example cases, weighted by the cases that
-- follow the same variant, so the graph is summed per variant rather than per event
follows AS (
    SELECT
        a.activity_key AS source_key,
        b.activity_key AS target_key,
        SUM(a.cases) AS n
    FROM variant_steps AS a
    INNER JOIN variant_steps AS b ON b.variant_key = a.variant_key AND b.pos = a.pos + 1
    GROUP BY a.activity_key, b.activity_key
),

handovers AS (
    SELECT team_key, next_team_key, COUNT(*) AS n
    FROM steps
    WHERE next_team_key <> team_key
    GROUP BY team_key, next_team_key
)

SELECT 'dfg' AS view, s.name AS source, t.name AS target, f.n
FROM follows AS f
INNER JOIN activities AS s ON s.activity_key = f.source_key
INNER JOIN activities AS t ON t.activity_key = f.target_key
UNION ALL
SELECT 'handover' AS view, s.name AS source, t.name AS target, h.n
FROM handovers AS h
INNER JOIN teams AS s ON s.team_key = h.team_key
INNER JOIN teams AS t ON t.team_key = h.next_team_key
UNION ALL
SELECT
    'variant' AS view,
    ARRAY_TO_STRING(LIST_TRANSFORM(l.keys, lambda k: names.m[k]), ' > ') AS source,
    NULL AS target,
    l.cases AS n
FROM (
    SELECT LIST(activity_key ORDER BY pos) AS keys, MIN(cases) AS cases
    FROM variant_steps
    GROUP BY variant_key
) AS l
CROSS JOIN (SELECT MAP(LIST(activity_key), LIST(name)) AS m FROM activities) AS names
