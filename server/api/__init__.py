"""The JSON API: one blueprint per resource under /api, documented in /openapi.json."""
from flask import Flask

from .. import openapi


def register_api(app: Flask) -> None:
    from . import agenda, auth, catalogue, households, programme, residents, review, sync, users

    for module in (auth, catalogue, households, residents, programme, users, sync, review, agenda):
        app.register_blueprint(module.bp)
    from . import dashboard, devices, exports, lists  # head office (issue 6)

    for module in (dashboard, lists, exports, devices):
        app.register_blueprint(module.bp)
    from . import privacy  # residents' rights, audit log (issue 7)

    app.register_blueprint(privacy.bp)
    from . import events_admin  # head office runs the agenda (issue 6 item 4)

    app.register_blueprint(events_admin.bp)
    openapi.register(app)
