"""Helpers shared by the views: strict JSON loading and paging."""
from flask import request
from sqlalchemy import func, select

from ..errors import ApiError
from ..extensions import db
from ..schemas import StrictSchema


def load_json(schema, partial: bool = False):
    """The request body through a strict schema: 400 when it is not a JSON object, 422 when it is invalid."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "Le corps doit être du JSON (application/json).")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "Le corps n'est pas un objet JSON valide.")
    return schema.load(data, partial=partial)


def load_args(schema=None):
    """The query string through a strict schema; without one, any query parameter is refused (422)."""
    schema = schema if schema is not None else StrictSchema()
    if any(len(v) > 1 for v in request.args.listvalues()):
        raise ApiError(422, "validation_error", "Données invalides.",
                       {k: ["Paramètre répété."] for k, v in request.args.lists() if len(v) > 1})
    return schema.load(request.args.to_dict())


def page_window(query, page: int, per_page: int):
    """(total, the query cut to one page): every paged list counts and cuts the same way, whatever its rows."""
    total = db.session.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    return total, query.limit(per_page).offset((page - 1) * per_page)


def paginate(query, page: int, per_page: int, schema):
    total, window = page_window(query, page, per_page)
    rows = db.session.execute(window).scalars().all()
    return {"items": schema.dump(rows, many=True), "page": page, "per_page": per_page, "total": total}
