"""A real admin API for the tests: a real redis-server and a real ``authproxy serve`` (the repository's
``bin/authproxy.js`` over ``dist/``, as built by ``npm ci``), each on a free port of 127.0.0.1, started
once per test session. The serve command is the one README's "Admin API" section documents; its admin
address (``--admin-listen 127.0.0.1:0``) is read from its ``admin API serving`` log line.

Set ``AUTHPROXY_REPO`` (the repository), ``AUTHPROXY_NODE`` (a Node.js >= 24) or ``REDIS_SERVER`` to use
other ones. A missing one fails the run: these tests never skip themselves.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Union

import pytest

from authproxy_client import AuthProxyClient

REPO = Path(os.environ.get("AUTHPROXY_REPO") or Path(__file__).resolve().parents[3])
ADMIN_TOKEN = "py-admin-token-0123456789abcdef"
SCOPED_TOKEN = "py-scoped-token-0123456789abcdef"
"""May touch sandboxes ``team-*`` and ``sb-solo`` only."""
TENANT_TOKEN = "py-tenant-token-0123456789abcdef"
"""Tenant ``acme`` only."""
FILE_SANDBOX = "sb-from-file"
"""Defined in the served config file: the API answers 409 to writes."""
CANARY_WS = "canary-ws-python-5d1c"
"""The value of the workspace secret OPENAI_API_KEY."""
AWS_KEY_ID = "AKIAPYTHONCLIENT0001"
AWS_SECRET = "py-aws-secret-canary-8a7b6c5d4e"
REDIS_PREFIX = "pytest:"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Resp:
    """A minimal Redis client (RESP2) over one socket: enough to look at what the store wrote."""

    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self._file = self._sock.makefile("rb")

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def command(self, *args: str) -> Any:
        out = b"*%d\r\n" % len(args)
        for arg in args:
            data = arg.encode()
            out += b"$%d\r\n%s\r\n" % (len(data), data)
        self._sock.sendall(out)
        return self._read()

    def _read(self) -> Any:
        line = self._file.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(f"redis error: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self._file.read(n + 2)[:-2]
            return data.decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RuntimeError(f"unexpected redis reply {line!r}")


@dataclass
class RedisServer:
    port: int
    process: "subprocess.Popen[bytes]"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self) -> Resp:
        return Resp(self.port)

    def dump(self) -> str:
        """Every key and value Redis holds, as text (what a dump of Redis would reveal)."""
        r = self.client()
        try:
            parts: List[str] = []
            for key in r.command("KEYS", "*"):
                kind = r.command("TYPE", key)
                value: Any
                if kind == "string":
                    value = r.command("GET", key)
                elif kind == "hash":
                    value = r.command("HGETALL", key)
                elif kind == "set":
                    value = r.command("SMEMBERS", key)
                elif kind == "zset":
                    value = r.command("ZRANGE", key, "0", "-1", "WITHSCORES")
                elif kind == "list":
                    value = r.command("LRANGE", key, "0", "-1")
                else:
                    value = kind
                parts.append(f"{key} {value}")
            return "\n".join(parts)
        finally:
            r.close()


def _which_redis() -> str:
    found = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).exists():
        pytest.fail(f"redis-server not found at {found}: run scripts/setup-deps.sh or set REDIS_SERVER")
    return found


def _wait_for_pong(port: int, process: "subprocess.Popen[bytes]", seconds: float = 10) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end and process.poll() is None:
        try:
            r = Resp(port)
            try:
                if r.command("PING") == "PONG":
                    return True
            finally:
                r.close()
        except OSError:
            time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = _which_redis()
    workdir = tmp_path_factory.mktemp("redis")
    for _ in range(5):  # a free port can be taken between probing and binding it
        port = _free_port()
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if _wait_for_pong(port, process):
            break
        process.kill()
        process.wait()
    else:
        pytest.fail("redis-server did not start on a free port")
    try:
        yield RedisServer(port, process)
    finally:
        process.kill()
        process.wait()


def _node() -> str:
    candidates = [os.environ.get("AUTHPROXY_NODE"), str(REPO / ".node/bin/node"), shutil.which("node")]
    for candidate in candidates:
        if not candidate or not Path(candidate).exists():
            continue
        version = subprocess.run([candidate, "-p", "process.versions.node"], capture_output=True, text=True, check=False).stdout.strip()
        if version and int(version.split(".")[0]) >= 24:
            return candidate
    pytest.fail("Node.js >= 24 not found: `source scripts/setup-node.sh` puts it on the PATH (or set AUTHPROXY_NODE)")


@dataclass
class AdminApi:
    """A running ``authproxy serve`` with its admin API."""

    url: str
    process: "subprocess.Popen[bytes]"
    log_file: Path
    dir: Path
    redis: RedisServer

    def logs(self) -> str:
        return self.log_file.read_text(errors="replace")

    def log_lines(self) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        for line in self.logs().splitlines():
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                out.append(parsed)
        return out

    def audit_lines(self, sandbox_id: str, count: int, timeout: float = 10.0) -> List[Dict[str, Any]]:
        """The sandbox's audit lines, once at least ``count`` of them are in the log.

        The service writes its log asynchronously, so a line may land just after the
        response that caused it: wait for it (bounded) rather than read too early.
        """
        deadline = time.monotonic() + timeout
        while True:
            audit = [line for line in self.log_lines() if line.get("msg") == "audit" and line.get("sandbox") == sandbox_id]
            if len(audit) >= count or time.monotonic() > deadline:
                return audit
            time.sleep(0.05)

    def stored_config(self, sandbox_id: str) -> Optional[Dict[str, Any]]:
        """The proxy_config that Redis holds for a sandbox (opaque values in their sealed form)."""
        r = self.redis.client()
        try:
            keys = r.command("KEYS", f"{REDIS_PREFIX}*cfg:*:{sandbox_id}")
            if not keys:
                return None
            raw: str = r.command("GET", keys[0])
        finally:
            r.close()
        config: Dict[str, Any] = json.loads(raw.rsplit("\n", 1)[-1])
        return config

    def stored_value(self, sandbox_id: str, rule: str, index: int = 0) -> str:
        """The stored (sealed) value of a rule's header (or of a provider rule's first Secret)."""
        config = self.stored_config(sandbox_id)
        assert config is not None, f"nothing stored for {sandbox_id}"
        found = next(r for r in config["rules"] if r["name"] == rule)
        if "headers" in found:
            value: str = found["headers"][index]["value"]
            return value
        auth: Dict[str, Any] = found.get("aws") or found["gcp"]
        secrets = [v for v in auth.values() if isinstance(v, dict) and "value" in v]
        value = secrets[index]["value"]
        return value


def _service_account_json(workdir: Path) -> str:
    """A service-account key file as Google issues them, with a fresh RSA key (openssl, else node)."""
    pem_file = workdir / "sa.pem"
    openssl = shutil.which("openssl")
    if openssl:
        subprocess.run([openssl, "genrsa", "-out", str(pem_file), "2048"], check=True, capture_output=True)
        pem = pem_file.read_text()
    else:  # pragma: no cover - openssl is installed by scripts/setup-deps.sh
        script = "const {generateKeyPairSync}=require('node:crypto');process.stdout.write(generateKeyPairSync('rsa',{modulusLength:2048}).privateKey.export({type:'pkcs8',format:'pem'}))"
        pem = subprocess.run([_node(), "-e", script], check=True, capture_output=True, text=True).stdout
    return json.dumps({
        "type": "service_account",
        "project_id": "authproxy-python-tests",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "tests@authproxy-python-tests.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",
    })


@pytest.fixture(scope="session")
def service_account_json(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _service_account_json(tmp_path_factory.mktemp("gcp"))


@pytest.fixture(scope="session")
def admin_api(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, service_account_json: str) -> Iterator[AdminApi]:
    node = _node()
    bin_js = REPO / "bin/authproxy.js"
    if not (REPO / "dist/cli/main.js").exists():
        pytest.fail(f"{REPO / 'dist'} is missing: `npm ci` (or `npm run build`) builds it")
    workdir = tmp_path_factory.mktemp("authproxy")

    def cli(*args: Union[str, Path]) -> None:
        subprocess.run([node, str(bin_js), *map(str, args)], check=True, capture_output=True, timeout=60)

    cli("keys", "init", "--dir", workdir / "keys")
    secrets = workdir / "secrets"
    secrets.mkdir()
    (secrets / "OPENAI_API_KEY").write_text(CANARY_WS + "\n")
    (secrets / "ANTHROPIC_API_KEY").write_text("sk-ant-python-tests\n")
    (secrets / "AWS_ACCESS_KEY_ID").write_text(AWS_KEY_ID + "\n")
    (secrets / "AWS_SECRET_ACCESS_KEY").write_text(AWS_SECRET + "\n")
    (secrets / "GCP_SERVICE_ACCOUNT").write_text(service_account_json)
    config = workdir / "sandboxes.yaml"
    config.write_text(f"sandboxes:\n  {FILE_SANDBOX}:\n    rules: []\n")
    tokens = workdir / "admin-tokens"
    tokens.write_text(f"# orchestrator\n{ADMIN_TOKEN}\n{SCOPED_TOKEN} team-*,sb-solo\n{TENANT_TOKEN} tenant=acme\n")
    log_file = workdir / "serve.log"
    args = [
        node, str(bin_js), "serve",
        "--config", str(config),
        "--listen", f"unix:{workdir / 'extproc.sock'}",
        "--secrets-dir", str(secrets),
        "--sealing-key", str(workdir / "keys/sealing.key"),
        "--signing-key", str(workdir / "keys/signing.key"),
        "--redis", redis_server.url,
        "--redis-prefix", REDIS_PREFIX,
        "--admin-listen", "127.0.0.1:0",
        "--admin-tokens", str(tokens),
        "--log-level", "debug",
    ]
    with log_file.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=str(workdir))
    api: Optional[AdminApi] = None
    try:
        end = time.monotonic() + 30
        while api is None:
            for line in log_file.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and entry.get("msg") == "admin API serving":
                    api = AdminApi(f"http://{entry['listen']}", process, log_file, workdir, redis_server)
            if api is not None:
                break
            if process.poll() is not None or time.monotonic() > end:
                why = f"exited with {process.returncode}" if process.poll() is not None else "did not start in 30 s"
                pytest.fail(f"authproxy serve {why}:\n{log_file.read_text(errors='replace')[-4000:]}")
            time.sleep(0.05)
        yield api
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def client(admin_api: AdminApi) -> Iterator[AuthProxyClient]:
    with AuthProxyClient(admin_api.url + "/", ADMIN_TOKEN) as c:
        yield c


@pytest.fixture
def sandbox_id() -> str:
    """A sandbox id no other test uses."""
    return f"sb-py-{uuid.uuid4().hex[:12]}"
