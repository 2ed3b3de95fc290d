"""A real HTTP server on 127.0.0.1 that speaks OpenAI's /v1/chat/completions, answering from a script.

A script is a function `(messages, request_number) -> str | int | dict`: a string is the assistant's reply, an int
an HTTP error status to answer with, a dict a reply as vLLM sends one: `content`, `finish_reason` ("length": cut
off at the token limit), `tool_calls` ([{name, arguments}]), `reasoning_content`; or, under `raw`, a body sent
as is with status 200 (a malformed response); `delay`: seconds to wait before answering (a slow model). Used by the llm
agent's tests instead of a model.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Script = Callable[[list[dict], int], "str | int | dict"]


class ScriptedChatServer:
    """`with ScriptedChatServer(script) as server: ... server.base_url ...`; `server.requests` counts calls and
    `server.bodies` keeps what they sent."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests = 0
        self.bodies: list[dict] = []
        """Every request body received, in order."""
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with outer._lock:
                    outer.requests += 1
                    outer.bodies.append(body)
                    number = outer.requests
                answer = (
                    outer.script(body["messages"], number) if self.path.endswith("/chat/completions") else 404
                )
                if isinstance(answer, int):
                    self._send(answer, {"error": {"message": f"scripted {answer}", "type": "scripted"}})
                    return
                finish, extra = "stop", {}
                if isinstance(answer, dict) and "delay" in answer:  # a slow model
                    time.sleep(answer["delay"])
                if isinstance(answer, dict):
                    if "raw" in answer:
                        self._send(200, answer["raw"])
                        return
                    calls = [
                        {"id": f"call-{number}-{i}", "type": "function",
                         "function": {"name": c["name"], "arguments": c.get("arguments", "{}")}}
                        for i, c in enumerate(answer.get("tool_calls", []))
                    ]  # fmt: skip
                    if calls:
                        extra["tool_calls"] = calls
                    if "reasoning_content" in answer:
                        extra["reasoning_content"] = answer["reasoning_content"]
                    finish = answer.get("finish_reason", "tool_calls" if calls else "stop")
                    answer = answer.get("content")
                prompt = sum(len(m.get("content") or "") for m in body["messages"]) // 4
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{number}", "object": "chat.completion", "created": 0,
                        "model": body.get("model", "scripted"),
                        "choices": [{"index": 0, "finish_reason": finish,
                                     "message": {"role": "assistant", "content": answer, **extra}}],
                        "usage": {"prompt_tokens": prompt, "completion_tokens": len(answer or "") // 4,
                                  "total_tokens": prompt + len(answer or "") // 4},
                    },
                )  # fmt: skip

            def _send(self, status: int, payload: dict | str) -> None:
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def turns(messages: list[dict]) -> int:
    """How many assistant turns the conversation already has."""
    return sum(m["role"] == "assistant" for m in messages)
