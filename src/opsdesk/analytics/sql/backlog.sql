-- Backlog: cases open (status not solved/closed) at the end of each UTC day between the
-- first and the last event. A case is open from its first event, or from a reopen, until
-- the event that solves or closes it; reopens count again.
WITH flips AS (
    SELECT case_id, pos, event_at, NOT is_done AS is_open
    FROM ev
    WHERE pos = 1 OR is_done <> prev_done
),
spans AS (
    SELECT
        CAST(event_at AS DATE) AS start_day,
        CAST(LEAD(event_at) OVER (PARTITION BY case_id ORDER BY pos) AS DATE) AS end_day,
        is_open
    FROM flips
),
deltas AS (
    SELECT start_day AS day, 1 AS delta FROM spans WHERE is_open
    UNION ALL
    SELECT end_day AS day, -1 AS delta FROM spans WHERE is_open AND end_day IS NOT NULL
),
daily AS (
    SELECT day, SUM(delta) AS delta FROM deltas GROUP BY day
),
bounds AS (
    SELECT
        MIN(CAST(event_at AS DATE)) AS first_day,
        MAX(CAST(event_at AS DATE)) AS last_day
    FROM ev
),
days AS (
    SELECT CAST(d AS DATE) AS day
    FROM bounds, UNNEST(generate_series(first_day, last_day, INTERVAL 1 DAY)) AS g(d)
)
SELECT
    days.day,
    SUM(COALESCE(daily.delta, 0)) OVER (
        ORDER BY days.day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS open_cases
FROM days
LEFT JOIN daily ON daily.day = days.day
ORDER BY days.day
