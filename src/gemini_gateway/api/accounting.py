"""Accounting for one request: the limiter's admission and the ledger row, settled exactly once.

A request reserves an estimate of its tokens before anything goes upstream and settles with the
real usage afterwards (or what a stream produced before the client left). The ledger row is written
before the response's last byte, so a client that got a whole answer always has its row.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from gemini_gateway.errors import GatewayError

log = logging.getLogger("gemini_gateway.accounting")

DEFAULT_COMPLETION_ESTIMATE = 1024


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """Prompt text characters / 4 (+1): what a request is charged for its prompt when upstream
    never said (a stream cut before its usage arrived)."""
    chars = 0
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    chars += len(part["text"])
    return chars // 4 + 1


def produced_chars(chunks: list[dict[str, Any]]) -> int:
    """Characters of answer, reasoning and tool arguments in some ``chat.completion.chunk``s."""
    total = 0
    for chunk in chunks:
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            for name in ("content", "reasoning_content", "refusal"):
                if isinstance(delta.get(name), str):
                    total += len(delta[name])
            for call in delta.get("tool_calls") or ():
                arguments = (call.get("function") or {}).get("arguments")
                if isinstance(arguments, str):
                    total += len(arguments)
    return total


@dataclass
class RequestRecord:
    """What the ledger learns about one request while it runs."""

    request_id: str
    license: Any
    model_requested: str
    model_sent: str = ""
    stream: bool = False
    started: float = field(default_factory=time.perf_counter)
    key_id: str | None = None
    status: int = 200
    error_code: str | None = None
    usage: dict[str, Any] | None = None
    first_token_at: float | None = None
    prompt_estimate: int = 0  # estimate_prompt_tokens of the request
    produced_chars: int = 0  # characters streamed so far (produced_chars of every chunk)

    def charged_usage(self) -> dict[str, Any] | None:
        """The usage to charge. A stream cut short whose upstream sent no output count yet
        (some send ``usageMetadata`` only with the last event) is charged an estimate of what
        it produced: the prompt estimate plus streamed characters / 4."""
        usage = self.usage
        if self.status != 499 or not self.produced_chars:
            return usage
        if usage is not None and int(usage.get("completion_tokens") or 0) > 0:
            return usage
        prompt = int((usage or {}).get("prompt_tokens") or 0) or self.prompt_estimate
        completion = self.produced_chars // 4 + 1
        return {
            **(usage or {}),
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }


class Accounting:
    """Ties an Admission to a ledger row; ``finish`` is safe to call more than once."""

    def __init__(
        self,
        ledger: Any,
        admission: Any,
        record: RequestRecord,
        *,
        after: Callable[[RequestRecord], None] | None = None,
    ) -> None:
        self._ledger = ledger
        self.admission = admission
        self.record = record
        self._after = after  # told the settled usage (learning estimates, freeing a gate)
        self._done = False

    async def finish(self) -> None:
        if self._done:
            return
        self._done = True
        rec = self.record
        rec.usage = rec.charged_usage()
        usage = rec.usage or {}
        total = int(usage.get("total_tokens") or 0)
        if self._after is not None:
            self._after(rec)
        if self.admission is None or not self.admission.pending:
            await self._write_row()
            return
        if not self.admission.remote:  # in-process counters: nothing to overlap, no task
            await self._settle(total)
            await self._write_row()
            return
        # Redis and the ledger (maybe PostgreSQL) are independent round trips: overlap them.
        settling = asyncio.ensure_future(self._settle(total))
        try:
            await self._write_row()
        finally:
            await settling

    async def _settle(self, total: int) -> None:
        rec = self.record
        try:
            if rec.usage is None and rec.status >= 400:
                await self.admission.release()
            else:
                await self.admission.settle(total)
        except Exception:  # accounting must never break a response
            log.exception("settling the admission failed")

    async def _write_row(self) -> None:
        if self._ledger is None:
            return
        try:
            await self._ledger.record(self._entry())
        except Exception:
            log.exception("writing the ledger row failed")

    def finish_in_background(self) -> None:
        """For a cancelled request: settle without awaiting in the cancelled task."""
        task = asyncio.ensure_future(self.finish())
        _background.add(task)
        task.add_done_callback(_background.discard)

    def _entry(self) -> Any:
        from gemini_gateway.store.ledger import LedgerEntry

        rec = self.record
        usage = rec.usage or {}
        completion_details = usage.get("completion_tokens_details") or {}
        prompt_details = usage.get("prompt_tokens_details") or {}
        now = time.perf_counter()
        return LedgerEntry(
            request_id=rec.request_id,
            license_id=getattr(rec.license, "id", None),
            license_name=getattr(rec.license, "name", None),
            model_requested=rec.model_requested,
            model_sent=rec.model_sent,
            key_id=rec.key_id,
            status=rec.status,
            error_code=rec.error_code,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
            cached_tokens=int(prompt_details.get("cached_tokens") or 0),
            latency_ms=round((now - rec.started) * 1000, 2),
            ttft_ms=(
                round((rec.first_token_at - rec.started) * 1000, 2)
                if rec.first_token_at is not None
                else None
            ),
            stream=rec.stream,
        )


async def admit(
    limiter: Any, ledger: Any, license: Any, record: RequestRecord, estimated_tokens: int
) -> Accounting:
    """Admit a request against its license's limits; a refusal gets its ledger row, then raises."""
    try:
        admission = await limiter.admit(license, estimated_tokens=estimated_tokens)
    except GatewayError as exc:
        await record_refusal(ledger, record, exc)
        raise
    return Accounting(ledger, admission, record)


@asynccontextmanager
async def settled_on_failure(accounting: Accounting) -> AsyncIterator[None]:
    """A failure inside settles the request with its status; a disconnect, in the background."""
    try:
        yield
    except GatewayError as exc:
        accounting.record.status = exc.status
        accounting.record.error_code = exc.code or exc.type
        await accounting.finish()
        raise
    except asyncio.CancelledError:
        accounting.record.status, accounting.record.error_code = 499, "client_disconnected"
        accounting.finish_in_background()
        raise


async def record_refusal(ledger: Any, record: RequestRecord, error: Any) -> None:
    """The ledger row of a request refused before it went upstream (403, 400, 429): nothing
    was reserved, so there is nothing to settle; the row says who was refused and why."""
    record.status, record.error_code = error.status, error.code or error.type
    await Accounting(ledger, None, record).finish()


_background: set[asyncio.Future[None]] = set()
