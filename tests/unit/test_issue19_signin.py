"""Issue 19, sign-in: the local issuer's authorization code flow with PKCE S256 (RFC 7636) and SMART EHR launch,
and the page routes' security headers (services/notification/signin.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from devstack import issuer, issuer_http
from services.notification import signin
from services.notification.settings import NotificationSettings
from shared.web import signin as shared_signin
from shared.web.auth import AuthSettings, public

CALLBACK = "http://127.0.0.1:8105/ui/callback"


@pytest.fixture
def idp() -> issuer.LocalIssuer:
    return issuer.LocalIssuer(ec.generate_private_key(ec.SECP256R1()), "http://127.0.0.1:8100")


def request_params(verifier: str, **kw: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": issuer.PAGE_CLIENT_ID,
        "redirect_uri": CALLBACK,
        "scope": "openid",
        "state": secrets.token_urlsafe(8),
        "nonce": "n-1",
        "code_challenge": issuer.s256(verifier),
        "code_challenge_method": "S256",
        **kw,
    }


def exchange_form(code: str, verifier: str, **kw: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": issuer.PAGE_CLIENT_ID,
        "code_verifier": verifier,
        **kw,
    }


def signed_in(idp: issuer.LocalIssuer, verifier: str, user: str = "dr-a", **kw: str) -> str:
    return idp.grant(idp.check_authorize(request_params(verifier, **kw)), user, ["clinician"])


def test_s256_is_the_rfc_7636_transform() -> None:
    # RFC 7636 Appendix B's example verifier and challenge
    assert issuer.s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_the_right_verifier_gets_an_access_token_and_an_id_token_with_the_nonce(idp: issuer.LocalIssuer) -> None:
    verifier = secrets.token_urlsafe(32)
    status, body = idp.exchange(exchange_form(signed_in(idp, verifier), verifier))
    assert status == 200 and body["token_type"] == "Bearer"
    key = idp.key.public_key()
    access = jwt.decode(body["access_token"], key, algorithms=["ES256"], audience=issuer.AUDIENCE, issuer=idp.url)
    assert (access["sub"], access["roles"]) == ("dr-a", ["clinician"])
    id_token = jwt.decode(body["id_token"], key, algorithms=["ES256"], audience=issuer.PAGE_CLIENT_ID)
    assert id_token["nonce"] == "n-1" and "patient" not in body


def test_a_wrong_verifier_is_refused_and_spends_the_code(idp: issuer.LocalIssuer) -> None:
    verifier = secrets.token_urlsafe(32)
    code = signed_in(idp, verifier)
    status, body = idp.exchange(exchange_form(code, secrets.token_urlsafe(32)))
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body = idp.exchange(exchange_form(code, verifier))  # the right one, too late: no brute force
    assert (status, body["error_description"]) == (400, "code already used")


def test_a_code_is_single_use(idp: issuer.LocalIssuer) -> None:
    verifier = secrets.token_urlsafe(32)
    code = signed_in(idp, verifier)
    assert idp.exchange(exchange_form(code, verifier))[0] == 200
    status, body = idp.exchange(exchange_form(code, verifier))
    assert (status, body["error"], body["error_description"]) == (400, "invalid_grant", "code already used")


def test_a_code_is_short_lived(idp: issuer.LocalIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(issuer, "CODE_TTL_S", -1)
    verifier = secrets.token_urlsafe(32)
    status, body = idp.exchange(exchange_form(signed_in(idp, verifier), verifier))
    assert (status, body["error_description"]) == (400, "code expired")


def test_a_code_is_bound_to_its_redirect_uri_and_client(idp: issuer.LocalIssuer) -> None:
    verifier = secrets.token_urlsafe(32)
    other = "http://127.0.0.1:9999/ui/callback"  # registered (loopback, any port) but not the one asked with
    status, body = idp.exchange(exchange_form(signed_in(idp, verifier), verifier, redirect_uri=other))
    assert (status, body["error"]) == (400, "invalid_grant")
    idp.clients["other-app"] = issuer.PAGE_REDIRECT_URIS
    status, body = idp.exchange(exchange_form(signed_in(idp, verifier), verifier, client_id="other-app"))
    assert (status, body["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/ui/callback",
        "http://127.0.0.1:8105/ui/other",
        "http://127.0.0.1.evil.example:8105/ui/callback",
        "http://user@127.0.0.1:8105/ui/callback",
        "http://127.0.0.1:8105/ui/callback?next=https://evil.example",
    ],
)
def test_an_unknown_redirect_uri_is_refused_without_redirecting(idp: issuer.LocalIssuer, redirect_uri: str) -> None:
    with pytest.raises(issuer.AuthorizeError) as refused:
        idp.check_authorize(request_params(secrets.token_urlsafe(32), redirect_uri=redirect_uri))
    assert refused.value.redirect is False  # RFC 6749 §4.1.2.1: never sent to an unverified URI


def test_loopback_redirect_uris_match_on_any_port() -> None:
    # RFC 8252 §7.3: the registered loopback URI matches whatever port the page is served on
    assert issuer.redirect_uri_allowed("http://127.0.0.1:41234/ui/callback", issuer.PAGE_REDIRECT_URIS)
    assert issuer.redirect_uri_allowed("http://localhost:8105/ui/callback", issuer.PAGE_REDIRECT_URIS)
    assert not issuer.redirect_uri_allowed("https://127.0.0.1:8105/ui/callback", issuer.PAGE_REDIRECT_URIS)


@pytest.mark.parametrize(
    ("change", "description"),
    [
        ({"code_challenge_method": "plain"}, "code_challenge_method must be S256"),
        ({"code_challenge_method": ""}, "code_challenge_method must be S256"),  # absent means plain (RFC 7636 §4.3)
        ({"code_challenge": ""}, "code_challenge required"),
        ({"code_challenge": "short"}, "malformed code_challenge"),
        ({"response_type": "token"}, "only response_type=code"),
        ({"state": ""}, "state is required"),
    ],
)
def test_plain_or_missing_pkce_is_refused(idp: issuer.LocalIssuer, change: dict[str, str], description: str) -> None:
    with pytest.raises(issuer.AuthorizeError) as refused:
        idp.check_authorize({**request_params(secrets.token_urlsafe(32)), **change})
    assert refused.value.description == description and refused.value.redirect is True


def test_smart_launch_returns_the_launch_patient(idp: issuer.LocalIssuer) -> None:
    launch = idp.new_launch("pt-smart-1")
    verifier = secrets.token_urlsafe(32)
    code = signed_in(idp, verifier, scope="openid launch launch/patient", launch=launch, aud=idp.url)
    status, body = idp.exchange(exchange_form(code, verifier))
    assert status == 200 and body["patient"] == "pt-smart-1"
    launch = idp.new_launch("pt-smart-1")  # a launch opens one sign-in: a new one for the refusals below
    with pytest.raises(issuer.AuthorizeError, match="unknown or expired launch"):
        signed_in(idp, verifier, scope="openid launch launch/patient", launch="forged")
    with pytest.raises(issuer.AuthorizeError, match="launch scope"):
        signed_in(idp, verifier, scope="openid", launch=launch)
    with pytest.raises(issuer.AuthorizeError, match="aud"):
        signed_in(idp, verifier, scope="openid launch launch/patient", launch=launch, aud="https://other.example")


@pytest.fixture
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[issuer.LocalIssuer]:
    with issuer_http.serve(directory=tmp_path_factory.mktemp("idp19")) as local:
        yield local


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _call(url: str, form: dict[str, Any] | None = None) -> tuple[int, dict[str, str], bytes]:
    data = None if form is None else urllib.parse.urlencode(form, doseq=True).encode()
    try:
        with urllib.request.build_opener(_NoRedirect).open(url, data=data, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_the_served_flow_over_http(served: issuer.LocalIssuer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="devstack.issuer")
    verifier = secrets.token_urlsafe(32)
    params = request_params(verifier)
    meta = json.loads(_call(f"{served.url}/.well-known/openid-configuration")[2])
    assert meta["code_challenge_methods_supported"] == ["S256"] and meta["response_types_supported"] == ["code"]
    status, _, page = _call(f"{meta['authorization_endpoint']}?{urllib.parse.urlencode(params)}")
    assert status == 200 and "Se connecter" in page.decode()
    # without PKCE: the error goes back to the (verified) client with its state
    status, headers, _ = _call(f"{served.url}/authorize?{urllib.parse.urlencode({**params, 'code_challenge': ''})}")
    back = urllib.parse.parse_qs(urllib.parse.urlsplit(headers["Location"]).query)
    assert status == 302 and back["error"] == ["invalid_request"] and back["state"] == [params["state"]]
    # an unknown redirect URI: an error page, no redirect
    bad = {**params, "redirect_uri": "https://evil.example/cb"}
    status, headers, _ = _call(f"{served.url}/authorize?{urllib.parse.urlencode(bad)}")
    assert status == 400 and "Location" not in headers
    # the form posted: back to the redirect URI with a code and the state
    status, headers, _ = _call(f"{served.url}/authorize", {**params, "user": "dr-http", "role": ["clinician", "ops"]})
    back = urllib.parse.parse_qs(urllib.parse.urlsplit(headers["Location"]).query)
    assert status == 302 and headers["Location"].startswith(CALLBACK) and back["state"] == [params["state"]]
    [code] = back["code"]
    status, headers, raw = _call(meta["token_endpoint"], exchange_form(code, verifier))
    body = json.loads(raw)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "*" and headers["Cache-Control"] == "no-store"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert (claims["sub"], claims["roles"]) == ("dr-http", ["clinician", "ops"])
    logged = " ".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert "/authorize" in logged and "/token" in logged  # requests are logged...
    assert code not in logged and params["state"] not in logged and body["access_token"] not in logged  # ...not secrets


def _page_app(*, body_hashes: bool = False, **settings: Any) -> FastAPI:
    """The clinicians' page's sign-in in front of a stand-in page; `body_hashes`: the shared sign-in without page
    files (the CSP hashes the inline scripts of the body served, as for the entry forms)."""
    app = FastAPI()

    @app.get("/ui/patients/{pid}", dependencies=[public("test page")])
    async def page(pid: str) -> HTMLResponse:
        return HTMLResponse('<html><script src="/ui/signin.js"></script><script>\nlet x = 1;\n</script></html>')

    @app.get("/patients/{pid}/view", dependencies=[public("test api")])
    async def api(pid: str) -> dict[str, str]:
        return {"pid": pid}

    auth = AuthSettings(oidc_issuer="https://idp.hospital.example/realms/onco")
    if body_hashes:
        config = shared_signin.SignInConfig(NotificationSettings(**settings), auth, smart_launch=True)
        shared_signin.install(app, config)
    else:
        signin.install(app, NotificationSettings(**settings), auth)
    return app


def test_the_page_sends_a_csp_with_its_inline_script_hash_and_the_configured_frame_ancestors() -> None:
    client = TestClient(_page_app(body_hashes=True, page_frame_ancestors="'self' https://ehr.hospital.example"))
    r = client.get("/ui/patients/pt-1")
    csp = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
    digest = base64.b64encode(hashlib.sha256(b"\nlet x = 1;\n").digest()).decode()
    assert csp["script-src"] == f"'self' 'sha256-{digest}'" and "unsafe-inline" not in csp["script-src"]
    assert csp["frame-ancestors"] == "'self' https://ehr.hospital.example"
    assert csp["connect-src"] == "'self' https://idp.hospital.example" and csp["default-src"] == "'none'"
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["x-content-type-options"] == "nosniff"
    assert r.text.endswith("</html>")  # the body is served unchanged
    assert "content-security-policy" not in client.get("/patients/pt-1/view").headers  # the API as it was
    default = TestClient(_page_app()).get("/ui/patients/pt-1").headers["content-security-policy"]
    assert "frame-ancestors 'self'" in default


def test_the_launch_route_accepts_only_the_configured_iss() -> None:
    client = TestClient(_page_app())
    ok = client.get("/ui/launch", params={"iss": "https://idp.hospital.example/realms/onco/", "launch": "abc"})
    assert ok.status_code == 200 and "/ui/signin.js" in ok.text
    bad = client.get("/ui/launch", params={"iss": "https://evil.example/fhir", "launch": "abc"})
    assert bad.status_code == 400 and "/ui/signin.js" not in bad.text
    assert client.get("/ui/launch", params={"iss": "https://idp.hospital.example/realms/onco"}).status_code == 400
    config = client.get("/ui/signin/config").json()
    assert config["token_paste"] is False  # a hospital's provider: no pasting
    assert config["client_id"] == "osteocds-page" and config["issuer"] == "https://idp.hospital.example/realms/onco"


def test_token_pasting_is_offered_only_with_a_local_issuer() -> None:
    local = AuthSettings(oidc_issuer="http://127.0.0.1:8100")
    assert signin.SignInConfig(NotificationSettings(), local).token_paste is True
    assert signin.SignInConfig(NotificationSettings(page_token_paste=False), local).token_paste is False


def test_an_expired_launch_is_refused(idp: issuer.LocalIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(issuer, "LAUNCH_TTL_S", -1)
    launch = idp.new_launch("pt-smart-2")
    with pytest.raises(issuer.AuthorizeError, match="unknown or expired launch"):
        signed_in(idp, secrets.token_urlsafe(32), scope="openid launch launch/patient", launch=launch)


# --- review RE (issue 19): attempts to break the sign-in -------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:8105@evil.example/ui/callback",  # userinfo: the browser goes to evil.example
        "http://127.0.0.1:@evil.example/ui/callback",
        "http://localhost:1@evil.example/ui/callback",
        "http://127.0.0.1:x@evil.example/ui/callback",
        "http://127.0.0.1:8105\\@evil.example/ui/callback",
        "http://127.0.0.1:81\r\n05/ui/callback",  # CR/LF dropped by urlsplit, but would reach the Location header
        "http://127.0.0.1:8105/ui/callback?",
        "http://127.0.0.1:0/ui/callback",
        "http://[::1]:8105/ui/callback",
    ],
)
def test_review_a_loopback_look_alike_redirect_uri_is_refused(idp: issuer.LocalIssuer, redirect_uri: str) -> None:
    assert not issuer.redirect_uri_allowed(redirect_uri, issuer.PAGE_REDIRECT_URIS)
    with pytest.raises(issuer.AuthorizeError) as refused:
        idp.check_authorize(request_params(secrets.token_urlsafe(32), redirect_uri=redirect_uri))
    assert refused.value.redirect is False


@pytest.mark.parametrize(
    "app",
    [
        "http://127.0.0.1:8105@evil.example/ui/launch",
        "http://localhost:1@evil.example/ui/launch",
        "http://127.0.0.1:8105/ui/launch?next=https://evil.example",
        "https://evil.example/ui/launch",
    ],
)
def test_review_the_simulated_ehr_launches_only_a_loopback_page(idp: issuer.LocalIssuer, app: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        issuer_http._ehr_launch_target(idp, {"patient": "pt-1", "app": app})
    target = issuer_http._ehr_launch_target(idp, {"patient": "pt-1", "app": "http://127.0.0.1:8105/ui/launch"})
    assert urllib.parse.urlsplit(target).netloc == "127.0.0.1:8105"


def test_review_a_launch_request_without_aud_is_refused(idp: issuer.LocalIssuer) -> None:
    # SMART App Launch 2.x: `aud` is required; the app must name the FHIR base it will call (no default)
    launch = idp.new_launch("pt-smart-3")
    with pytest.raises(issuer.AuthorizeError, match="aud"):
        signed_in(idp, secrets.token_urlsafe(32), scope="openid launch launch/patient", launch=launch)


def test_review_a_launch_gone_between_the_form_and_the_grant_is_refused_not_a_crash(
    idp: issuer.LocalIssuer,
) -> None:
    launch = idp.new_launch("pt-smart-4")
    scope = "openid launch launch/patient"
    request = idp.check_authorize(request_params(secrets.token_urlsafe(32), scope=scope, launch=launch, aud=idp.url))
    idp._launches.clear()  # expired and forgotten meanwhile
    with pytest.raises(ValueError, match="launch"):
        idp.grant(request, "dr-a", ["clinician"])


def _raw(url: str, method: str, headers: dict[str, str], body: bytes = b"") -> int:
    import http.client

    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        conn.putrequest(method, parts.path or "/", skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders(body or None)
        return conn.getresponse().status
    finally:
        conn.close()


def test_review_the_served_issuer_answers_only_its_own_loopback_host(served: issuer.LocalIssuer) -> None:
    """DNS rebinding: a page of evil.example resolved to 127.0.0.1 reaches the issuer with its own Host header."""
    port = urllib.parse.urlsplit(served.url).port
    path = f"{served.url}/.well-known/openid-configuration"
    assert _raw(path, "GET", {"Host": f"127.0.0.1:{port}"}) == 200
    assert _raw(path, "GET", {"Host": f"localhost:{port}"}) == 200
    assert _raw(path, "GET", {"Host": f"evil.example:{port}"}) == 421
    assert _raw(f"{served.url}/token", "POST", {"Host": f"evil.example:{port}", "Content-Length": "0"}) == 421


def test_review_a_negative_content_length_is_refused_at_once(served: issuer.LocalIssuer) -> None:
    port = urllib.parse.urlsplit(served.url).port
    headers = {"Host": f"127.0.0.1:{port}", "Content-Length": "-1"}
    assert _raw(f"{served.url}/token", "POST", headers) == 400  # not a thread blocked reading to EOF
    assert _raw(f"{served.url}/token", "POST", {**headers, "Content-Length": "x"}) == 400
    assert _raw(f"{served.url}/token", "POST", {**headers, "Content-Length": "²"}) == 400  # str.isdigit() says yes


@pytest.mark.parametrize(
    "ancestors",
    [
        "'self'; script-src 'unsafe-inline'",  # one setting would rewrite the whole policy
        "https://ehr.example, https://other.example",
        "'self'\r\nX-Injected: 1",
    ],
)
def test_review_frame_ancestors_that_would_change_the_policy_are_refused_at_start(ancestors: str) -> None:
    auth = AuthSettings(oidc_issuer="https://idp.hospital.example/realms/onco")
    with pytest.raises(ValueError, match="PAGE_FRAME_ANCESTORS"):
        signin.SignInConfig(NotificationSettings(page_frame_ancestors=ancestors), auth)


@pytest.mark.parametrize(
    "iss",
    [
        "https://idp.hospital.example.evil.example/realms/onco",
        "https://idp.hospital.example/realms/onco.evil",
        "https://idp.hospital.example/realms/onco/../evil",
        "https://idp.hospital.example@evil.example/realms/onco",
        "HTTPS://IDP.HOSPITAL.EXAMPLE/realms/onco-x",
        "//idp.hospital.example/realms/onco",
        "javascript:alert(1)//https://idp.hospital.example/realms/onco",
    ],
)
def test_review_an_iss_that_only_looks_like_the_allowed_one_is_refused(iss: str) -> None:
    r = TestClient(_page_app()).get("/ui/launch", params={"iss": iss, "launch": "abc"})
    assert r.status_code == 400 and "/ui/signin.js" not in r.text


@pytest.mark.parametrize(
    "oidc_issuer",
    ["http://127.0.0.1.nip.io:8100", "http://localhost.evil.example:8100", "https://idp.hospital.example", ""],
)
def test_review_token_pasting_stays_off_with_any_non_loopback_issuer(oidc_issuer: str) -> None:
    assert signin.SignInConfig(NotificationSettings(), AuthSettings(oidc_issuer=oidc_issuer)).token_paste is False


def test_review_the_posted_sign_in_form_of_a_launch_passes_the_same_checks(idp: issuer.LocalIssuer) -> None:
    """The form carries back everything the authorization request was checked on (`aud` among them)."""
    launch = idp.new_launch("pt-smart-5")
    scope = "openid launch launch/patient"
    request = idp.check_authorize(request_params(secrets.token_urlsafe(32), scope=scope, launch=launch, aud=idp.url))
    assert idp.check_authorize(request.fields()) == request
    page = idp.sign_in_form(request)
    assert f'name="aud" value="{idp.url}"' in page


def test_review_a_launch_opens_one_sign_in_only(idp: issuer.LocalIssuer) -> None:
    """HAZ-19-AUTH-01: a launch ID read later (history, a log, a shoulder) cannot open the patient again."""
    launch = idp.new_launch("pt-smart-6")
    scope = "openid launch launch/patient"
    verifier = secrets.token_urlsafe(32)
    status, body = idp.exchange(
        exchange_form(signed_in(idp, verifier, scope=scope, launch=launch, aud=idp.url), verifier)
    )
    assert status == 200 and body["patient"] == "pt-smart-6"
    with pytest.raises(issuer.AuthorizeError, match="unknown or expired launch"):
        signed_in(idp, secrets.token_urlsafe(32), scope=scope, launch=launch, aud=idp.url)


def test_review_the_clinicians_page_csp_allows_the_page_files_scripts_not_whatever_a_body_carries() -> None:
    """HAZ-19-AUTH-03: the hashes come from the page's own files (static/*.html), not from the body served, so a
    script that ever reached a /ui/ response through request input would not be allowed by its own hash."""
    page_file = signin.STATIC / "patient.html"
    own = [
        m.group(1) for m in re.finditer(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script>", page_file.read_bytes(), re.S)
    ]
    assert own  # the page has inline scripts
    csp = TestClient(_page_app()).get("/ui/patients/pt-1").headers["content-security-policy"]
    script_src = dict(part.strip().split(" ", 1) for part in csp.split(";"))["script-src"].split()
    for script in own:
        assert f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'" in script_src
    injected = base64.b64encode(hashlib.sha256(b"\nlet x = 1;\n").digest()).decode()  # _page_app's inline script
    assert f"'sha256-{injected}'" not in script_src and "'unsafe-inline'" not in script_src
