"""Fixed vocabulary the operating model refers to: priorities, channels, permissions."""

from __future__ import annotations

# Ordered lowest to highest: `raise_priority` and SLA tables rely on this order.
PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")

CHANNELS: tuple[str, ...] = ("email", "chat", "phone", "api", "bot", "voice", "web")

#: Customer tiers, from the default to the most looked-after.
CUSTOMER_TIERS: tuple[str, ...] = ("standard", "gold", "vip")

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# "*" grants everything, including permissions added in later releases.
ALL_PERMISSIONS = "*"

PERMISSION_MEANINGS: dict[str, str] = {
    "tickets.read": "See tickets and their timelines.",
    "tickets.write": "Reply to, update and resolve tickets.",
    "tickets.transfer": "Transfer a ticket to another team or agent, with a reason.",
    "tickets.assign": "Assign tickets to agents in a team.",
    "tickets.all_teams": "Reach every team's tickets and customers, not only one's own "
    "teams' and one's own tickets (what the other permissions allow, everywhere).",
    "customers.read": "See customer profiles and contact history.",
    "customers.write": "Edit customer profiles and identities.",
    "customers.merge": "Merge two customer records into one identity.",
    "customers.erase": "Erase a customer's personal data on request (irreversible).",
    "exceptions.request": "Request an exception to a standard path.",
    "exceptions.approve": "Approve or deny exceptions (still limited by approver_roles).",
    "messages.write": "Send messages to customers on any channel.",
    "messages.customer": "Post a customer's or a bot's message as it arrived on a channel "
    "(channel and bot connectors; never people).",
    "events.read": "Read the raw event log.",
    "kpis.read": "See KPI dashboards and friction findings.",
    "qa.review": "Score interactions and calibrate auto-QA.",
    "automations.manage": "Create, dry-run, enable and kill automations.",
    "workforce.manage": "Edit forecasts, staffing and intraday moves.",
    "model.read": "Read the operating model and its versions.",
    "model.apply": "Apply a new operating model version.",
    "users.read": "See every user account (without it: the members of one's own teams).",
    "users.manage": "Create users and change their roles.",
    "tokens.create": "Create API tokens.",
    "audit.read": "Read the audit trail.",
    ALL_PERMISSIONS: "Every permission, present and future.",
}

PERMISSIONS: tuple[str, ...] = tuple(PERMISSION_MEANINGS)
