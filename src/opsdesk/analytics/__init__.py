"""Analytics: KPIs and the friction diagnostic over an event log, ours or an imported one."""
