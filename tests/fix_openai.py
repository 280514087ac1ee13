"""An OpenAI-compatible chat-completions server on loopback, started by the test that needs it.

It records every request (headers and JSON body) so a test can check what the client sent:
the model, the messages (one tenant's assets, no secrets), the structured-output request.
``mode`` decides the answer: ``ok`` (a valid structured answer in Arabic, one recommendation
per asset of the context), ``slow`` (answers after ``delay_s``), ``invalid_json`` (plain text),
``wrong_schema`` (JSON of another shape), ``error`` (HTTP 500), ``unknown_asset`` (recommends
an asset that was not in the context).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio
from aiohttp import web

CONTEXT_PREFIX = "Plant data (JSON):\n"


@dataclass
class FakeOpenAI:
    mode: str = "ok"
    delay_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def context_of(self, index: int = -1) -> dict[str, Any]:
        """The plant data JSON the client sent in request ``index``."""
        user = next(m for m in self.requests[index]["body"]["messages"] if m["role"] == "user")
        return json.loads(user["content"][len(CONTEXT_PREFIX):])

    def answer_for(self, context: dict[str, Any]) -> dict[str, Any]:
        recs, scores = [], []
        for asset in context.get("assets", []):
            critical = any(f.get("severity") in ("critical", "high") for f in asset.get("findings", []))
            recs.append({"asset_code": asset["code"], "title": f"فحص محامل {asset['code']}",
                         "rationale": "ارتفاع الاهتزاز فوق خط الأساس يشير إلى تآكل المحامل.",
                         "action": "خفض الحمل وجدولة فحص المحامل خلال الوردية القادمة.",
                         "expected_impact": "تجنب توقف غير مخطط لمدة 12 ساعة تقريباً.",
                         "confidence": 0.8, "priority": "high" if critical else "medium"})
            scores.append({"asset_code": asset["code"], "failure_probability": 0.9 if critical else 0.1,
                           "health_score": 30.0 if critical else 90.0, "status": "critical" if critical else "normal"})
        if self.mode == "unknown_asset":
            recs.append({**recs[0], "asset_code": "NOT-IN-CONTEXT"} if recs else {})
        return {"recommendations": recs, "assets": scores}

    async def _completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body, "path": request.path})
        if self.mode == "slow":
            await asyncio.sleep(self.delay_s)
        if self.mode == "error":
            return web.json_response({"error": {"message": "boom", "type": "server_error"}}, status=500)
        if self.mode == "invalid_json":
            content = "Here are my recommendations: replace the bearing."
        elif self.mode == "wrong_schema":
            content = json.dumps({"advice": ["replace the bearing"]})
        else:
            user = next(m for m in body["messages"] if m["role"] == "user")
            content = json.dumps(self.answer_for(json.loads(user["content"][len(CONTEXT_PREFIX):])), ensure_ascii=False)
        return web.json_response({
            "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})


@pytest_asyncio.fixture
async def openai_server() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
