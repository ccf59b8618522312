"""Agenda reminders by Web Push: subscriptions with consent, reminder planning, exactly-once sending.

The head-office agenda editing (server/api/events_admin.py) calls schedule_for_event / reschedule_event /
cancel_event (the caller commits);
the periodic job (server.tasks) calls plan_reminders and send_due.
"""
from flask import current_app

DEFAULTS = {
    "PUSH_REMINDER_OFFSETS": [24 * 60, 2 * 60],  # minutes before the start of an event
    "PUSH_QUIET_HOURS": ["21:00", "08:00"],  # a reminder due in between waits for the end
    "PUSH_TIMEZONE": "Europe/Paris",
    "PUSH_MAX_ATTEMPTS": 5,  # 429 and transient errors, then the delivery fails
    "PUSH_BATCH": 200,  # deliveries claimed per transaction
    "PUSH_CONCURRENCY": 8,  # HTTP requests in flight per worker
    "PUSH_CLAIM_TIMEOUT": 600,  # seconds after which a claim of a dead worker is released
    "PUSH_TIMEOUT": 10,  # seconds per HTTP request to a push service
    "PUSH_VAPID_REUSE": 1800,  # seconds a signed VAPID header (valid 12 h) serves one push service
    "PUSH_RECORD_EVERY": 100,  # outcomes written together...
    "PUSH_RECORD_DELAY": 0.25,  # ...or after this many seconds: what a crash could make us send twice
    "PUSH_PLAN_GRACE": 15,  # minutes: a reminder due this long ago is still sent when planned late
    # The server POSTs to endpoints a browser gave: only to the browsers' push services (no SSRF).
    "PUSH_ENDPOINT_HOSTS": ["fcm.googleapis.com", "push.services.mozilla.com", "notify.windows.com",
                            "push.apple.com"],
    "PUSH_ALLOW_HTTP": False,  # tests and the bench talk to a loopback service over http
    "PUBLIC_BASE_URL": "",  # e.g. https://palier.example.org; default: the request's host
}


def setting(name: str):
    return current_app.config.get(name, DEFAULTS[name])


from .planning import cancel_event, plan_reminders, reschedule_event, schedule_for_event  # noqa: E402
from .sending import send_due  # noqa: E402
from .subscriptions import subscribe, unsubscribe, unsubscribe_token  # noqa: E402

__all__ = ["DEFAULTS", "setting", "cancel_event", "plan_reminders", "reschedule_event", "schedule_for_event",
           "send_due", "subscribe", "unsubscribe", "unsubscribe_token"]
