"""Microsoft's own Python SDKs against `idrecon sim` (scripts/conformance.sh).

Independent references for the simulator: msgraph-sdk lists users and walks
a delta round with PageIterator, parses every kind of Graph error the
simulator sends as an ODataError; MSAL Python signs in with a certificate
(both header forms it sends); idrecon's own client assertion has the header
shape MSAL gives for the same certificate.

Usage: conformance.py IDRECON_BINARY WORK_DIR. Prints one line per check and
ends with "conformance: N passed, N failed"; exits 1 when a check failed.
"""

import asyncio
import base64
import datetime
import hashlib
import http.server
import json
import re
import subprocess
import sys
import threading
import tomllib
import traceback
import urllib.parse
import urllib.request
from pathlib import Path

import httpx
import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core.tasks.page_iterator import PageIterator

PUBLIC_LOGIN = "https://login.microsoftonline.com"
SELECT = ["id", "userPrincipalName", "mail", "displayName", "accountEnabled",
          "employeeId", "onPremisesSamAccountName", "userType"]
PEOPLE = "150"

RESULTS = []


def check(name):
    """Runs a check, records pass or fail with the reason."""
    def wrap(fn):
        async def run(*args):
            try:
                await fn(*args)
                RESULTS.append((name, None))
                print(f"ok   {name}", flush=True)
            except Exception as e:  # every failure is reported, none stops the rest
                RESULTS.append((name, e))
                print(f"FAIL {name}: {e!r}", flush=True)
                traceback.print_exc()
        return run
    return wrap


def make_certificate(work: Path):
    """A self-signed RSA certificate; returns (key PEM, cert PEM, cert DER)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idrecon-conformance")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    (work / "cert.pem").write_text(cert_pem)
    (work / "app.pem").write_text(key_pem + cert_pem)
    return key_pem, cert_pem, cert.public_bytes(serialization.Encoding.DER)


class Simulator:
    """`idrecon sim` in its own process: its configuration and counts."""

    def __init__(self, binary, work: Path, faults=None):
        extra = ["--faults", faults] if faults else []
        self.proc = subprocess.Popen(
            [binary, "sim", "--listen", "127.0.0.1:0", "--users", PEOPLE, "--seed", "7",
             "--certificate", str(work / "cert.pem")] + extra,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        for line in self.proc.stdout:
            lines.append(line)
            if line.startswith("transport ="):
                break
        self.config_text = "".join(lines)
        self.config = tomllib.loads(self.config_text)
        banner = self.proc.stderr.readline()
        m = re.search(r"\((\d+) Azure, (\d+) IFS, (\d+) Flow users", banner)
        if not m:
            raise RuntimeError(f"unexpected simulator banner: {banner!r}")
        self.azure_users = int(m.group(1))
        self.graph = self.config["azure"]["graph_url"]
        self.login = self.config["azure"]["login_url"]
        self.tenant = self.config["azure"]["tenant_id"]
        self.client_id = self.config["azure"]["client_id"]
        self.secret = self.config["azure"]["client_secret"]
        self.token_url = f"{self.login}/{self.tenant}/oauth2/v2.0/token"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class PublicLoginOnSimulator:
    """MSAL's http_client: the public login host is served by the simulator
    (as a hosts-file entry would), and the simulator's own URLs in answers
    read as the public host's (MSAL insists on https endpoints). Records
    every form MSAL posts."""

    def __init__(self, sim: Simulator):
        self.sim = sim
        self.session = requests.Session()
        self.posted = []

    def _to_sim(self, url):
        return url.replace(PUBLIC_LOGIN, self.sim.login, 1)

    def _from_sim(self, response):
        text = response.text.replace(self.sim.login, PUBLIC_LOGIN)
        response._content = text.encode()
        return response

    def get(self, url, **kwargs):
        return self._from_sim(self.session.get(self._to_sim(url), **kwargs))

    def post(self, url, data=None, **kwargs):
        self.posted.append(dict(data or {}))
        return self._from_sim(self.session.post(self._to_sim(url), data=data, **kwargs))

    def close(self):
        self.session.close()


def msal_app(sim, credential, http_client, **kwargs):
    return msal.ConfidentialClientApplication(
        sim.client_id, client_credential=credential,
        authority=f"{PUBLIC_LOGIN}/{sim.tenant}", http_client=http_client,
        instance_discovery=False, **kwargs)


class StaticToken(AccessTokenProvider):
    def __init__(self, token, host):
        self.token = token
        self.validator = AllowedHostsValidator([host])

    async def get_authorization_token(self, uri, additional_authentication_context=None):
        return self.token

    def get_allowed_hosts_validator(self):
        return self.validator


def graph_client(sim, token):
    host = urllib.parse.urlparse(sim.graph).netloc
    # A plain httpx client: no retry middleware, so a fault answer reaches
    # the SDK's error parsing at once.
    adapter = GraphRequestAdapter(
        BaseBearerTokenAuthenticationProvider(StaticToken(token, host)),
        client=httpx.AsyncClient(timeout=30))
    adapter.base_url = f"{sim.graph}/v1.0"
    return GraphServiceClient(request_adapter=adapter), adapter


def b64url_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def thumb(digest):
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def main(binary, work):
    work = Path(work)
    key_pem, cert_pem, cert_der = make_certificate(work)
    sim = Simulator(binary, work)
    login_http = PublicLoginOnSimulator(sim)
    ctx = {}
    try:
        await secret_login(sim, login_http, ctx)
        await list_users(sim, ctx)
        await delta_round(sim, ctx)
        await errors_parse_as_odata_error(sim, ctx)
        await faults_parse_as_odata_error(binary, work)
        await msal_certificate_forms(sim, key_pem, cert_pem, cert_der, ctx)
        await idrecon_assertion_shape(sim, binary, work, cert_der, ctx)
    finally:
        login_http.close()
        sim.stop()
    failed = [name for name, e in RESULTS if e is not None]
    print(f"conformance: {len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


@check("MSAL client secret sign-in")
async def secret_login(sim, login_http, ctx):
    app = msal_app(sim, sim.secret, login_http)
    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    ctx["token"] = result["access_token"]


@check("msgraph-sdk lists users ($select, $top=999) with PageIterator")
async def list_users(sim, ctx):
    client, adapter = graph_client(sim, ctx["token"])
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(select=SELECT, top=999)
    first = await client.users.get(request_configuration=RequestConfiguration(query_parameters=query))
    assert len(first.value) == min(999, sim.azure_users), len(first.value)
    ids = []

    def collect(user):
        ids.append(user.id)
        assert user.user_principal_name, user
        return True

    await PageIterator(first, adapter).iterate(collect)
    assert len(ids) == sim.azure_users, (len(ids), sim.azure_users)
    assert len(set(ids)) == len(ids)


@check("msgraph-sdk walks a delta round with PageIterator")
async def delta_round(sim, ctx):
    client, adapter = graph_client(sim, ctx["token"])
    query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=SELECT, top=999)
    first = await client.users.delta.get(request_configuration=RequestConfiguration(query_parameters=query))
    # Graph's own page size whatever $top says.
    assert len(first.value) == 100, len(first.value)
    present, removed, entries = set(), set(), []

    def collect(user):
        entries.append(user)
        if "@removed" in (user.additional_data or {}):
            removed.add(user.id)
        else:
            present.add(user.id)
        return True

    iterator = PageIterator(first, adapter)
    await iterator.iterate(collect)
    # Replays and @removed entries; every user once the round is read.
    assert len(present) == sim.azure_users, (len(present), sim.azure_users)
    assert removed, "the first round carries @removed entries"
    assert len(entries) > len(present) + len(removed), "some users are replayed"


async def raw_error(url, token, method="GET", body=None):
    async with httpx.AsyncClient(timeout=30) as http:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await http.request(method, url, headers=headers, json=body)
    return response.status_code, response.content


def parse_odata_error(content):
    node = JsonParseNode(json.loads(content))
    error = node.get_object_value(ODataError)
    assert error.error is not None, content
    inner = error.error.inner_error
    assert inner is not None and isinstance(inner.date, datetime.datetime), content
    return error.error.code


@check("every Graph error of the simulator parses as an ODataError")
async def errors_parse_as_odata_error(sim, ctx):
    token = ctx["token"]
    g = f"{sim.graph}/v1.0"
    mail = {"message": {"subject": "s", "body": {"contentType": "Text", "content": "x"},
                        "toRecipients": [{"emailAddress": {"address": "nobody"}}]}}
    cases = [
        ("GET", f"{g}/users?$top=5000", token, None, "Request_UnsupportedQuery"),
        ("GET", f"{g}/users?$select=frob", token, None, "BadRequest"),
        ("GET", f"{g}/users?$skiptoken=bogus", token, None, "Request_BadRequest"),
        ("GET", f"{g}/users?$filter=x", token, None, "Request_UnsupportedQuery"),
        ("GET", f"{g}/users/nobody@contoso.com", token, None, "Request_ResourceNotFound"),
        ("GET", f"{g}/groups/00000000-0000-0000-0000-000000000000/transitiveMembers", token, None,
         "Request_ResourceNotFound"),
        ("GET", f"{g}/users/delta?$deltatoken=bogus", token, None, "syncStateNotFound"),
        ("GET", f"{g}/users", None, None, "InvalidAuthenticationToken"),
        ("GET", f"{g}/users", "not-a-token", None, "InvalidAuthenticationToken"),
        ("GET", f"{g}/nonsense", token, None, "BadRequest"),
        ("POST", f"{g}/users/nobody@nowhere.example/sendMail", token, mail, "ErrorInvalidUser"),
        ("POST", f"{g}/users/idrecon@contoso.com/sendMail", token, mail, "ErrorInvalidRecipients"),
        ("POST", f"{g}/users/idrecon@contoso.com/sendMail", token, {"x": 1}, "BadRequest"),
    ]
    for method, url, tok, body, code in cases:
        status, content = await raw_error(url, tok, method, body)
        assert status >= 400, (url, status)
        assert parse_odata_error(content) == code, (url, content)
    # Through the SDK itself: a 404 raises ODataError with the code.
    client, _ = graph_client(sim, token)
    try:
        await client.users.by_user_id("nobody@contoso.com").get()
        raise AssertionError("no error for an unknown user")
    except ODataError as e:
        assert e.error.code == "Request_ResourceNotFound", e
        assert isinstance(e.error.inner_error.date, datetime.datetime)


# Every fault the simulator can inject into Graph, in the order they fire.
GRAPH_FAULTS = [("429", "TooManyRequests"), ("500", "generalException"),
                ("503", "serviceNotAvailable"), ("504", "UnknownError"),
                ("403", "UnknownError"), ("expire-token", "InvalidAuthenticationToken")]


@check("every injected Graph fault parses as an ODataError")
async def faults_parse_as_odata_error(binary, work):
    spec = ",".join(f"graph:{kind}x1" for kind, _ in GRAPH_FAULTS)
    spec += ",graph:expire-page,graph:expire-delta,mail:503"
    sim = Simulator(binary, work, faults=spec)
    http_client = PublicLoginOnSimulator(sim)
    try:
        token = msal_app(sim, sim.secret, http_client).acquire_token_for_client(
            scopes=["https://graph.microsoft.com/.default"])["access_token"]
        users = f"{sim.graph}/v1.0/users?$top=1"
        for kind, code in GRAPH_FAULTS:
            status, content = await raw_error(users, token)
            assert status >= 400, (kind, status)
            assert parse_odata_error(content) == code, (kind, content)
            if kind == "expire-token":
                token = msal_app(sim, sim.secret, http_client).acquire_token_for_client(
                    scopes=["https://graph.microsoft.com/.default"])["access_token"]
        async with httpx.AsyncClient(timeout=30) as http:
            auth = {"Authorization": f"Bearer {token}"}
            # A $skiptoken that expired in the middle of a walk.
            first = (await http.get(users, headers=auth)).json()
            response = await http.get(first["@odata.nextLink"], headers=auth)
            assert response.status_code == 400, response.status_code
            assert parse_odata_error(response.content) == "Directory_ExpiredPageToken"
            # An expired delta link.
            url = f"{sim.graph}/v1.0/users/delta?$select=id"
            while True:
                page = (await http.get(url, headers=auth)).json()
                if "@odata.deltaLink" in page:
                    break
                url = page["@odata.nextLink"]
            response = await http.get(page["@odata.deltaLink"], headers=auth)
        assert response.status_code == 410, response.status_code
        assert parse_odata_error(response.content) == "syncStateNotFound"
        mail = {"message": {"subject": "s", "body": {"contentType": "Text", "content": "x"},
                            "toRecipients": [{"emailAddress": {"address": "a@contoso.com"}}]}}
        status, content = await raw_error(
            f"{sim.graph}/v1.0/users/idrecon@contoso.com/sendMail", token, "POST", mail)
        assert status == 503, status
        assert parse_odata_error(content) == "serviceNotAvailable"
    finally:
        http_client.close()
        sim.stop()


@check("MSAL certificate sign-in, both header forms, accepted by the simulator")
async def msal_certificate_forms(sim, key_pem, cert_pem, cert_der, ctx):
    sha1_hex = hashlib.sha1(cert_der).hexdigest()
    forms = {
        # With the public certificate MSAL sends PS256 + x5t#S256 (+ x5c).
        "public_certificate": {"private_key": key_pem, "public_certificate": cert_pem},
        # With only a (SHA-1) thumbprint it sends RS256 + x5t.
        "thumbprint": {"private_key": key_pem, "thumbprint": sha1_hex},
    }
    headers = {}
    for name, credential in forms.items():
        http_client = PublicLoginOnSimulator(sim)
        # The assertion's audience is the token endpoint as the client knows
        # it; the simulator's real URL is http on 127.0.0.1, so it is named
        # through client_claims (MSAL adds them to the signed claims).
        app = msal_app(sim, credential, http_client, client_claims={"aud": sim.token_url})
        result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
        assert "access_token" in result, (name, result)
        assertion = http_client.posted[-1]["client_assertion"]
        if isinstance(assertion, bytes):
            assertion = assertion.decode()
        header = b64url_json(assertion.split(".")[0])
        claims = b64url_json(assertion.split(".")[1])
        assert "nbf" not in claims, claims  # Entra does not insist on nbf
        headers[name] = header
        http_client.close()
    assert headers["public_certificate"]["alg"] == "PS256", headers
    # MSAL keeps the base64 padding; the digests are the same.
    assert headers["public_certificate"]["x5t#S256"].rstrip("=") == thumb(
        hashlib.sha256(cert_der).digest())
    assert headers["thumbprint"]["alg"] == "RS256", headers
    assert headers["thumbprint"]["x5t"].rstrip("=") == thumb(hashlib.sha1(cert_der).digest())
    ctx["msal_headers"] = headers


class CapturingProxy(http.server.BaseHTTPRequestHandler):
    """Forwards token requests to the simulator, keeping each form and answer."""
    target = ""
    seen = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        form = dict(urllib.parse.parse_qsl(body.decode()))
        # The Host header is passed on, as a reverse proxy does: the token
        # URL the client used (the assertion's audience) is the proxy's.
        request = urllib.request.Request(self.target + self.path, data=body, method="POST",
                                         headers={"Content-Type": self.headers["Content-Type"],
                                                  "Host": self.headers["Host"]})
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                status, answer = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, answer = e.code, e.read()
        CapturingProxy.seen.append((form, status, answer))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@check("idrecon's client assertion has the header shape MSAL gives and is accepted")
async def idrecon_assertion_shape(sim, binary, work, cert_der, ctx):
    base = sim.login.rsplit("/azure-login", 1)[0]
    CapturingProxy.target = base
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CapturingProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = f"http://127.0.0.1:{server.server_address[1]}"
    config = sim.config_text.replace(f'client_secret = "{sim.secret}"',
                                     f'certificate_file = "{work / "app.pem"}"')
    config = config.replace(f'login_url = "{sim.login}"', f'login_url = "{proxy}/azure-login"')
    (work / "idrecon.toml").write_text(config)
    try:
        run = subprocess.run(
            [binary, "reconcile", "--format", "json", "--config", str(work / "idrecon.toml"),
             "--db", f"sqlite://{work / 'idrecon.db'}"],
            capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    assert CapturingProxy.seen, f"idrecon sent no token request: {run.stderr}"
    form, status, answer = CapturingProxy.seen[0]
    header = b64url_json(form["client_assertion"].split(".")[0])
    # Compared with MSAL's for the same certificate: the alg and the
    # thumbprint header of one of the two forms MSAL sends (x5c is only
    # added when MSAL is handed the public certificate to send along).
    shapes = {name: (h["alg"], sorted(k for k in h if k.startswith("x5t")))
              for name, h in ctx["msal_headers"].items()}
    mine = (header["alg"], sorted(k for k in header if k.startswith("x5t")))
    assert mine in shapes.values(), (mine, shapes)
    for name, h in ctx["msal_headers"].items():
        if shapes[name] == mine:
            for k in mine[1]:
                assert header[k].rstrip("=") == h[k].rstrip("="), (k, header[k], h[k])
    assert status == 200, answer
    assert run.returncode in (0, 2), (run.returncode, run.stderr)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
