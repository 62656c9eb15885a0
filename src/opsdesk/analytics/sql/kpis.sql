-- KPIs overall and by category, team, channel, priority and ISO week of creation, from
-- the per-case summary `cases`. Times in hours; rates are shares of cases (0..1).
SELECT
    CASE
        WHEN GROUPING(category) = 0 THEN 'category'
        WHEN GROUPING(team) = 0 THEN 'team'
        WHEN GROUPING(channel) = 0 THEN 'channel'
        WHEN GROUPING(priority) = 0 THEN 'priority'
        WHEN GROUPING(week) = 0 THEN 'week'
        ELSE 'overall'
    END AS dimension,
    COALESCE(category, team, channel, priority, week, 'all') AS value,
    COUNT(*) AS cases,
    MEDIAN(response_h) AS first_response_median_h,
    QUANTILE_CONT(response_h, 0.9) AS first_response_p90_h,
    MEDIAN(resolution_h) AS resolution_median_h,
    QUANTILE_CONT(resolution_h, 0.9) AS resolution_p90_h,
    AVG(CASE WHEN made_sla THEN 1.0 WHEN NOT made_sla THEN 0.0 END) AS sla_attainment,
    COUNT(made_sla) AS sla_cases,
    AVG(CASE WHEN reopened THEN 1.0 ELSE 0.0 END) AS reopen_rate,
    AVG(CAST(transfers AS DOUBLE)) AS transfers_per_case,
    AVG(CASE WHEN escalated THEN 1.0 ELSE 0.0 END) AS escalation_rate,
    AVG(CASE WHEN fcr THEN 1.0 ELSE 0.0 END) FILTER (WHERE solved) AS fcr_rate,
    AVG(CASE WHEN repeat_contact THEN 1.0 ELSE 0.0 END) AS repeat_contact_rate,
    SUM(csat_sum) / NULLIF(SUM(csat_n), 0) AS csat_mean,
    SUM(csat_n) AS csat_responses,
    AVG(handle_s) FILTER (WHERE handle_n > 0) AS aht_seconds,
    AVG(CASE WHEN exceptions > 0 THEN 1.0 ELSE 0.0 END) AS exception_rate
FROM cases
GROUP BY GROUPING SETS ((), (category), (team), (channel), (priority), (week))
ORDER BY dimension, cases DESC, value
