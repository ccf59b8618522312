"""Who may pull, checked on every page: the token's user, their sites and the revoked-token checks are read in one
statement (server/auth.py); each refusal below must still hold on the pull, page after page.

The test client shares the test's app context (the `make` fixture holds one), so these requests also share its
`g`: what a request learns about its token must not outlive that request."""
import uuid
from datetime import datetime, timezone

import sqlalchemy as sa
from flask_jwt_extended import create_access_token, decode_token

from server.auth import revoke, revoke_all_tokens
from server.extensions import db
from server.models import Site, User

from .test_sync_api import pull_all


def _pull(api, client_id, cursor=None, limit=1):
    return api.post("/api/sync/pull", json={"client_id": client_id, "cursor": cursor, "limit": limit})


def _refused(resp, code="token_revoked"):
    return resp.status_code == 401 and resp.get_json()["error"]["code"] == code


def _first_page(api):
    client_id = str(uuid.uuid4())
    resp = _pull(api, client_id)
    assert resp.status_code == 200 and resp.get_json()["has_more"], resp.get_json()
    return client_id, resp.get_json()["cursor"]


def test_a_revoked_access_token_is_refused_from_the_next_page(world, login):
    api = login(world.users["gardien"])
    client_id, cursor = _first_page(api)
    claims = decode_token(api.token)
    revoke(claims["jti"], world.users["gardien"].id, datetime.fromtimestamp(claims["exp"], timezone.utc))
    db.session.commit()
    assert _refused(_pull(api, client_id, cursor))
    # another token of the same user is not concerned
    assert _pull(login(world.users["gardien"]), client_id, cursor).status_code == 200


def test_a_deactivated_user_is_refused_from_the_next_page(world, login):
    api = login(world.users["staff"])
    client_id, cursor = _first_page(api)
    db.session.get(User, world.users["staff"].id).active = False
    db.session.commit()
    assert _refused(_pull(api, client_id, cursor))


def test_log_out_everywhere_refuses_the_tokens_issued_before(world, login):
    api = login(world.users["gardien"])
    client_id, cursor = _first_page(api)
    revoke_all_tokens(db.session.get(User, world.users["gardien"].id))
    db.session.commit()
    assert _refused(_pull(api, client_id, cursor))
    assert _pull(login(world.users["gardien"]), client_id, cursor).status_code == 200


def test_a_token_of_a_user_who_no_longer_exists_is_refused(app, make):
    gone = make.user("gardien", sites=[make.site()])
    token = create_access_token(identity=gone)
    db.session.execute(sa.delete(User).where(User.id == gone.id))
    db.session.commit()
    resp = app.test_client().post("/api/sync/pull", json={"client_id": str(uuid.uuid4())},
                                  headers={"Authorization": f"Bearer {token}"})
    assert _refused(resp)


def test_a_site_taken_away_or_deleted_leaves_the_scope_of_the_next_page(world, make, login):
    own, other = (db.session.get(Site, uuid.UUID(world[k])) for k in ("own_site", "other_site"))
    third = make.site(name="Résidence trois")
    user = make.user("gardien", sites=[own, other, third])
    api = login(user)
    client_id, cursor = _first_page(api)
    assert set(_pull(api, client_id, cursor).get_json()["scope"]["sites"]) == {str(own.id), str(other.id),
                                                                                 str(third.id)}
    db.session.get(User, user.id).sites = [own, third]
    db.session.get(Site, third.id).deleted = True
    db.session.commit()
    pages, _ = pull_all(api, client_id, cursor, limit=2)
    assert pages[0]["reset"] is True and pages[0]["scope"]["sites"] == [str(own.id)]
    held = {c["id"] for p in pages for c in p["changes"]}
    assert world["own_household"] in held and not held & (set(world.other_site_ids()) | {str(third.id)})


def test_a_changed_role_is_read_again_by_the_next_page(world, login):
    api = login(world.users["staff"])
    client_id, cursor = _first_page(api)
    db.session.get(User, world.users["staff"].id).role = "head_office"
    db.session.commit()
    # the role is data of the user row, read again by each request: head office sees every site
    body = _pull(api, client_id, cursor).get_json()
    assert body["reset"] is True and body["scope"] == {"role": "head_office", "sites": None}


def test_the_users_sites_come_with_the_user_in_name_order(world, make, login):
    sites = [make.site(name=n) for n in ("Zéphyr", "Albatros", "Mouette")]
    api = login(make.user("staff", sites=sites))
    assert [s["name"] for s in api.get("/api/auth/me").get_json()["sites"]] == ["Albatros", "Mouette", "Zéphyr"]

