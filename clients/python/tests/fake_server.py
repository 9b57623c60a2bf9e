"""A scripted HTTP server for the retry tests: answers each request with the next step of its script (the
last step repeats), and records what it was sent. A step of ``"drop"`` closes the connection unanswered."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Literal, Optional, Union


@dataclass
class Answer:
    status: int
    headers: Dict[str, str] = field(default_factory=dict)
    body: Any = None


Step = Union[Answer, Literal["drop"]]


@dataclass
class Request:
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes


OK = Answer(200, body={
    "sandbox_id": "sb", "tenant_id": "default", "version": 1, "etag": '"1-x"', "updated_at": "2025-01-01T00:00:00.000Z",
    "proxy_config": {"rules": [], "callbacks": [], "no_proxy": []},
})


class ScriptedServer:
    def __init__(self, script: List[Step]) -> None:
        self.script = list(script)
        self.requests: List[Request] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append(Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                step = server.script[min(len(server.requests), len(server.script)) - 1]
                if step == "drop":
                    self.close_connection = True
                    return
                payload = b"" if step.body is None else json.dumps(step.body).encode()
                self.send_response(step.status)
                for k, v in step.headers.items():
                    self.send_header(k, v)
                if payload:
                    self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_PATCH = do_DELETE = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def json_body(request: Request) -> Optional[Any]:
    return json.loads(request.body) if request.body else None
