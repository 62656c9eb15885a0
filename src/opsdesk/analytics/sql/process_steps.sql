-- One ordered pass over the log for the process-mining views: each event with its
-- position in the case, its activity, and the next activity and next team in the case.
-- Materialised once as `steps`; process_dfg, process_variants and process_handover read it.
-- Cases are keyed by a 64-bit hash of their id: sorting on it is cheaper than on text.
CREATE TEMP TABLE steps AS
SELECT
    case_key,
    ROW_NUMBER() OVER w AS pos,
    activity,
    team,
    LEAD(activity) OVER w AS next_activity,
    LEAD(team IGNORE NULLS) OVER w AS next_team
FROM (
    SELECT HASH(case_id) AS case_key, "at", seq, COALESCE(activity, type) AS activity, team
    FROM case_events
) AS events
WINDOW w AS (PARTITION BY case_key ORDER BY "at", seq)
