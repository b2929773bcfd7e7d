"""Python SDK (PyPI `mcp`) against the real vouch-mcp.

Usage: python client.py legacy|modern
  legacy: Client(mode="legacy"), the initialize handshake and Mcp-Session-Id.
  modern: Client(mode="2026-07-28"), stateless requests with per-request _meta.

Prints one line per check, `PASS <name>` or `FAIL <name> -- <why>` (read by run.sh).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.utils import extract_field_from_www_auth, extract_resource_metadata_from_www_auth
from mcp.client.streamable_http import StreamableHTTPTransport, streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp.shared.exceptions import MCPError

ERA = sys.argv[1] if len(sys.argv) > 1 else ""
if ERA not in ("legacy", "modern"):
    print(f"FAIL arguments -- expected legacy|modern, got {ERA!r}")
    sys.exit(2)
MODE = "legacy" if ERA == "legacy" else "2026-07-28"
WHO = f"py-{ERA}"


def need(name: str) -> str:
    v = os.environ.get(name)
    if not v:
        print(f"FAIL environment -- {name} is not set (run through tests/interop/run.sh)")
        sys.exit(2)
    return v


MCP_URL = need("MCP_URL")
ISSUER = need("DEV_ISSUER")
PRM_URL = need("PRM_URL")
AS_METADATA_URL = need("AS_METADATA_URL")
AAGUID = need("DEV_AAGUID")

failed = 0


async def check(name: str, fn: Callable[[], Awaitable[None]]) -> None:
    global failed
    label = f"{ERA}: {name}"
    try:
        with anyio.fail_after(20):
            await fn()
        print(f"PASS {label}", flush=True)
    except BaseException as e:  # noqa: BLE001 - a check reports every failure, exception groups included
        failed += 1
        why = " | ".join(traceback.format_exception_only(type(e), e)).strip().replace("\n", " | ")
        print(f"FAIL {label} -- {why[:600]}", flush=True)
        traceback.print_exc(file=sys.stderr)


def mint(sub: str, *, hardware_verified: bool = False, ttl_secs: int = 600) -> str:
    body = json.dumps(
        {"sub": sub, "email": f"{sub}@example.com", "hardware_verified": hardware_verified, "ttl_secs": ttl_secs}
    ).encode()
    req = urllib.request.Request(f"{ISSUER}/token", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.load(res)["access_token"]


def mint_expired(sub: str) -> str:
    """The runner starts the server with --leeway-secs 0, so a ttl 0 token (exp == now) is already expired."""
    token = mint(sub, ttl_secs=0)
    time.sleep(1.1)
    return token


class Recorder:
    """httpx2 event hooks: every request and response the SDK's HTTP client makes."""

    def __init__(self) -> None:
        self.log: list[dict[str, Any]] = []

    async def on_request(self, request: httpx2.Request) -> None:
        rpc = None
        if request.method == "POST":
            try:
                rpc = json.loads(request.content).get("method")
            except (ValueError, AttributeError):
                pass
        self.log.append(
            {
                "method": request.method,
                "url": str(request.url),
                "authorization": request.headers.get("authorization"),
                "session": request.headers.get("mcp-session-id"),
                "rpc": rpc,
            }
        )

    async def on_response(self, response: httpx2.Response) -> None:
        for entry in reversed(self.log):
            if entry["url"] == str(response.request.url) and "status" not in entry:
                entry["status"] = response.status_code
                entry["www_authenticate"] = response.headers.get("www-authenticate")
                entry["response"] = response
                entry["session_out"] = response.headers.get("mcp-session-id")
                break

    def hooks(self) -> dict[str, list[Any]]:
        return {"request": [self.on_request], "response": [self.on_response]}


def http_client(token: str | None, rec: Recorder, auth: httpx2.Auth | None = None) -> httpx2.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    client = create_mcp_http_client(headers=headers, auth=auth)
    client.event_hooks = rec.hooks()
    return client


def mcp_client(http: httpx2.AsyncClient) -> Client:
    return Client(streamable_http_client(MCP_URL, http_client=http), mode=MODE, read_timeout_seconds=15)


def whoami_of(result: Any) -> dict[str, Any]:
    assert not result.is_error, f"whoami isError: {result.content}"
    sc = result.structured_content
    assert isinstance(sc, dict), f"no structuredContent: {result}"
    assert json.loads(result.content[0].text) == sc, "text content and structuredContent differ"
    return sc


def assert_challenge(entry: dict[str, Any], error: str | None = None) -> None:
    assert entry.get("status") == 401, f"expected 401, got {entry.get('status')} for {entry['method']} {entry['url']}"
    response = entry["response"]
    assert extract_resource_metadata_from_www_auth(response) == PRM_URL, entry["www_authenticate"]
    assert extract_field_from_www_auth(response, "error") == error, entry["www_authenticate"]


def _flatten(e: BaseException) -> list[BaseException]:
    if isinstance(e, BaseExceptionGroup):
        return [x for sub in e.exceptions for x in _flatten(sub)]
    return [e]


async def main() -> None:
    plain_token = mint(WHO)
    hw_token = mint(f"{WHO}-hw", hardware_verified=True)

    rec = Recorder()
    async with http_client(plain_token, rec) as http, mcp_client(http) as client:

        async def connected() -> None:
            if ERA == "modern":
                assert client.protocol_version == "2026-07-28", client.protocol_version
                assert not any(e.get("session_out") for e in rec.log), "a 2026-07-28 response carried a session id"
            else:
                assert client.protocol_version == "2025-11-25", client.protocol_version
                assert rec.log[0]["authorization"] == f"Bearer {plain_token}"
                assert rec.log[0].get("session_out"), "initialize returned no Mcp-Session-Id"

        await check("connect with a bearer token", connected)

        async def tools_list() -> None:
            result = await client.list_tools()
            names = sorted(t.name for t in result.tools)
            assert names == ["sensitive-action", "whoami"], names
            whoami = next(t for t in result.tools if t.name == "whoami")
            assert whoami.output_schema["required"] == ["email", "sub", "hardware_verified"], whoami.output_schema

        await check("tools/list", tools_list)

        async def whoami_plain() -> None:
            r = await client.call_tool("whoami", {})
            assert whoami_of(r) == {"email": f"{WHO}@example.com", "sub": WHO, "hardware_verified": False}

        await check("whoami matches the plain token", whoami_plain)

        async def sensitive_plain() -> None:
            r = await client.call_tool("sensitive-action", {})
            assert r.is_error is True, r
            assert json.loads(r.content[0].text)["error"] == "hardware_key_required"

        await check("sensitive-action with a plain token is isError", sensitive_plain)

        async def hardware() -> None:
            hw_rec = Recorder()
            async with http_client(hw_token, hw_rec) as hw_http:
                async with mcp_client(hw_http) as hw:
                    w = await hw.call_tool("whoami", {})
                    assert whoami_of(w) == {
                        "email": f"{WHO}-hw@example.com",
                        "sub": f"{WHO}-hw",
                        "hardware_verified": True,
                    }
                    r = await hw.call_tool("sensitive-action", {})
                    assert not r.is_error, r
                    assert json.loads(r.content[0].text) == {"status": "success", "hardware_aaguid": AAGUID}
                if ERA == "legacy":
                    # Leaving the client context sends DELETE for its session (terminate_on_close).
                    dels = [e for e in hw_rec.log if e["method"] == "DELETE"]
                    assert len(dels) == 1 and dels[0]["status"] in (200, 204), dels

        await check("whoami and sensitive-action with a hardware-verified token", hardware)

        if ERA == "legacy":

            async def terminate() -> None:
                sid = next(e["session_out"] for e in rec.log if e.get("session_out"))
                # The SDK's own DELETE, for the live client's session.
                transport = StreamableHTTPTransport(MCP_URL)
                transport.session_id = sid
                await transport.terminate_session(http)
                d = rec.log[-1]
                assert d["method"] == "DELETE" and d["session"] == sid and d["status"] in (200, 204), d
                before = len(rec.log)
                try:
                    r = await client.call_tool("whoami", {})
                except MCPError as e:
                    err = e
                else:
                    raise AssertionError(f"the call on the terminated session succeeded: {r}")
                post = next(e for e in rec.log[before:] if e["method"] == "POST")
                assert post["session"] == sid and post["status"] == 404, post
                assert err.code != 0, err

            await check("DELETE terminates the session; the next call on it fails", terminate)
        else:

            async def stateless() -> None:
                await client.call_tool("whoami", {})
                assert all(e.get("session") is None for e in rec.log), "a request carried Mcp-Session-Id"
                assert all(e["method"] == "POST" for e in rec.log), [e["method"] for e in rec.log]

            await check("no Mcp-Session-Id is issued or sent; no GET or DELETE", stateless)

            async def auto() -> None:
                auto_rec = Recorder()
                async with http_client(plain_token, auto_rec) as h:
                    async with Client(streamable_http_client(MCP_URL, http_client=h), mode="auto") as c:
                        assert c.protocol_version == "2026-07-28", c.protocol_version
                        r = await c.call_tool("whoami", {})
                        assert whoami_of(r)["sub"] == WHO
                assert auto_rec.log[0]["rpc"] == "server/discover", auto_rec.log[0]
                assert all(e.get("session") is None for e in auto_rec.log), "a request carried Mcp-Session-Id"

            await check("mode='auto' (the SDK default) probes server/discover and selects 2026-07-28", auto)

    async def rejected(token: str | None, error: str | None) -> None:
        r = Recorder()
        raised: BaseException | None = None
        try:
            async with http_client(token, r) as h, mcp_client(h) as c:
                await c.list_tools()
        except BaseException as e:  # noqa: BLE001
            raised = e
        assert raised is not None, "connecting succeeded"
        errors = _flatten(raised)
        assert any(isinstance(x, MCPError) for x in errors), f"expected MCPError, got {errors!r}"
        first = r.log[0]
        assert first["method"] == "POST" and first["url"] == MCP_URL, first
        assert_challenge(first, error)

    async def no_token() -> None:
        await rejected(None, None)

    await check("no token: a 401 carrying resource_metadata (the SDK raises MCPError)", no_token)

    async def expired_token() -> None:
        await rejected(mint_expired(f"{WHO}-expired"), "invalid_token")

    await check("expired token: a 401 invalid_token carrying resource_metadata (the SDK raises MCPError)", expired_token)

    async def oauth_discovery() -> None:
        expired = mint_expired(f"{WHO}-oauth")
        seen: dict[str, Any] = {}

        class Redirected(Exception):
            pass

        class Storage:
            async def get_tokens(self) -> OAuthToken | None:
                return OAuthToken(access_token=expired, token_type="Bearer")

            async def set_tokens(self, tokens: OAuthToken) -> None:
                pass

            async def get_client_info(self) -> OAuthClientInformationFull | None:
                return OAuthClientInformationFull(
                    client_id="vouch-interop", redirect_uris=["http://localhost:1/callback"], issuer=ISSUER
                )

            async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
                pass

        async def redirect_handler(url: str) -> None:
            seen["authorization_url"] = url
            raise Redirected(url)

        async def callback_handler() -> AuthorizationCodeResult:
            raise AssertionError("callback_handler reached")

        provider = OAuthClientProvider(
            server_url=MCP_URL,
            client_metadata=OAuthClientMetadata(
                client_name="vouch-interop", redirect_uris=["http://localhost:1/callback"]
            ),
            storage=Storage(),
            redirect_handler=redirect_handler,
            callback_handler=callback_handler,
        )
        r = Recorder()
        raised: BaseException | None = None
        try:
            async with http_client(None, r, auth=provider) as h, mcp_client(h) as c:
                await c.list_tools()
        except BaseException as e:  # noqa: BLE001
            raised = e
        assert raised is not None, "connecting succeeded"
        assert any(isinstance(x, Redirected) for x in _flatten(raised)), f"the flow did not reach the redirect: {raised!r}"
        urls = [f"{e['method']} {e['url']} {e.get('status')}" for e in r.log]
        assert urls == [
            f"POST {MCP_URL} 401",
            f"GET {PRM_URL} 200",
            f"GET {AS_METADATA_URL} 200",
        ], urls
        assert r.log[0]["authorization"] == f"Bearer {expired}"
        assert_challenge(r.log[0], "invalid_token")
        ctx = provider.context
        prm = ctx.protected_resource_metadata
        assert prm is not None, "no protected resource metadata was read"
        assert str(prm.resource) == MCP_URL, prm.resource
        assert [str(u) for u in prm.authorization_servers] == [ISSUER], prm.authorization_servers
        assert ctx.auth_server_url == ISSUER, ctx.auth_server_url
        assert ctx.oauth_metadata is not None and str(ctx.oauth_metadata.issuer) == ISSUER, ctx.oauth_metadata
        a = urlsplit(seen["authorization_url"])
        q = parse_qs(a.query)
        assert f"{a.scheme}://{a.netloc}{a.path}" == f"{ISSUER}/authorize", seen["authorization_url"]
        assert q.get("resource") == [MCP_URL], q
        assert q.get("client_id") == ["vouch-interop"], q
        assert q.get("code_challenge_method") == ["S256"], q

    await check("the client's OAuth discovery from the 401 (expired token): PRM, then AS metadata", oauth_discovery)


anyio.run(main)
sys.exit(1 if failed else 0)
