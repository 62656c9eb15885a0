-- One ordered pass over the log for the process-mining views: each event with its
-- position in the case, its activity, and the next activity and next team in the case.
-- Materialised once as `steps`; process_dfg, process_variants and process_handover read it.
CREATE TEMP TABLE steps AS
SELECT
    HASH(case_id) AS case_key,
    ROW_NUMBER() OVER w AS pos,
    COALESCE(activity, type) AS activity,
    team,
    LEAD(COALESCE(activity, type)) OVER w AS next_activity,
    LEAD(team IGNORE NULLS) OVER w AS next_team
FROM case_events
WINDOW w AS (PARTITION BY HASH(case_id) ORDER BY "at", seq)
