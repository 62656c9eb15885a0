"""Timers and background work: the jobs outbox (``outbox``), the handlers per job kind
(``handlers``), the in-process scheduler and the worker loop (``scheduler``) and the
outbox's state for operators (``queries``). See docs/jobs.md."""
