"""The adapter protocol's client: one request line out, one response line back.

``Connection`` does everything the protocol asks (handshake, ids, JSON, schema checks) over a
``Transport``: a subprocess's pipes for ``cmd:`` targets, a direct call for in-process ones. So
every target runs through the same code, and whatever an adapter does wrong (crash, hang, a line
that is not JSON, a response that breaks its schema, a wrong id) becomes a ``HarnessError`` that
names the request and shows the tail of the adapter's stderr, never a crash or hang of the runner.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import selectors
import shlex
import subprocess
import time
import traceback
from collections.abc import Callable
from typing import Any, Protocol

from .. import __version__
from .messages import PROTOCOL_VERSION, SCHEMA_PROBLEMS, record_problems, response_errors

__all__ = ["Connection", "HarnessError", "InProcessTransport", "SubprocessTransport"]

STDERR_TAIL = 4096  # bytes of an adapter's stderr kept for reports


class HarnessError(Exception):
    """The adapter broke the protocol; ``kind`` says how."""

    def __init__(self, kind: str, detail: str, request: Any = None, stderr: str = "") -> None:
        super().__init__(f"{kind}: {detail}")
        self.index = 0
        self.answered: list[dict[str, Any]] = []  # a batch's checked responses before index
        self.received: list[bytes] = []  # the transport's lines before index
        self.kind = kind
        self.detail = detail
        self.request = request
        self.stderr = stderr

    def explain(self) -> str:
        lines = [f"adapter fault ({self.kind}): {self.detail}"]
        if self.request is not None:
            lines.append(f"request: {json.dumps(self.request)}")
        if self.stderr.strip():
            lines.append("adapter stderr (tail):")
            lines += ["  " + line for line in self.stderr.rstrip().splitlines()[-15:]]
        return "\n".join(lines)


class Transport(Protocol):
    def exchange(self, lines: list[bytes], timeout: float) -> list[bytes]:
        """Send the lines, return as many lines the adapter writes back (without newlines).

        ``timeout`` bounds the wait for each response. A fault raises HarnessError whose
        ``index`` is the position of the first request left unanswered, and ``received`` the
        lines read before it.
        """
        ...

    def stderr_tail(self) -> str: ...

    def close(self) -> None: ...


class SubprocessTransport:
    """A ``cmd:`` adapter: a child process spoken to through its standard streams."""

    def __init__(self, command: str) -> None:
        try:
            argv = shlex.split(command)
        except ValueError as error:
            raise HarnessError("start", f"cannot parse the command {command!r}: {error}") from None
        if not argv:
            raise HarnessError("start", "cmd: needs a command")
        try:
            self._process = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except OSError as error:
            raise HarnessError("start", f"cannot start {argv[0]!r}: {error}") from None
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        assert self._process.stderr is not None
        self._stdin = self._process.stdin
        self._stdin_fd = self._stdin.fileno()
        self._selector = selectors.DefaultSelector()
        self._out = bytearray()
        self._err = bytearray()
        self._out_closed = False
        self._want_write = False
        self._closed = False
        try:
            os.set_blocking(self._stdin_fd, False)
            for stream, name in ((self._process.stdout, "out"), (self._process.stderr, "err")):
                os.set_blocking(stream.fileno(), False)
                self._selector.register(stream.fileno(), selectors.EVENT_READ, name)
        except BaseException:
            self.close()
            raise

    def exchange(self, lines: list[bytes], timeout: float) -> list[bytes]:
        responses: list[bytes] = []
        try:
            return self._exchange(lines, timeout, responses)
        except HarnessError as error:
            error.received = responses
            raise

    def _exchange(self, lines: list[bytes], timeout: float, responses: list[bytes]) -> list[bytes]:
        if self._closed:  # its descriptors' numbers may belong to other files by now
            error = HarnessError("crashed", "the adapter was closed", stderr=self.stderr_tail())
            error.index = 0
            raise error
        # Requests are written while responses are read, so a long batch can fill neither
        # pipe and the adapter works on request k+1 while we parse response k.
        pending = memoryview(b"".join(line + b"\n" for line in lines))
        deadline = time.monotonic() + timeout
        while len(responses) < len(lines):
            end = self._out.find(b"\n")
            if end >= 0:
                responses.append(bytes(self._out[:end]))
                del self._out[: end + 1]
                deadline = time.monotonic() + timeout
                continue
            if self._out_closed:
                raise self._crashed(len(responses))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill()
                error = HarnessError(
                    "timeout", f"no response within {timeout:g} s", stderr=self.stderr_tail()
                )
                error.index = len(responses)
                raise error
            if pending:
                pending = self._write_some(pending, len(responses))
                if pending and not self._want_write:
                    self._selector.register(self._stdin_fd, selectors.EVENT_WRITE, "in")
                    self._want_write = True
                elif not pending and self._want_write:
                    self._selector.unregister(self._stdin_fd)
                    self._want_write = False
            self._pump(remaining)
        return responses

    def _write_some(self, pending: memoryview, answered: int) -> memoryview:
        try:
            written = os.write(self._stdin_fd, pending[:65536])
        except BlockingIOError:
            return pending
        except OSError:  # BrokenPipeError: the adapter is gone
            raise self._crashed(answered) from None
        return pending[written:]

    def _pump(self, timeout: float) -> None:
        for key, _ in self._selector.select(timeout):
            if key.data == "in":
                continue  # stdin can take more: the caller writes on its next turn
            data = os.read(key.fd, 65536)
            if key.data == "out":
                if data:
                    self._out += data
                else:
                    self._out_closed = True
                    self._selector.unregister(key.fd)
            elif data:
                self._err += data
                del self._err[:-STDERR_TAIL]
            else:
                self._selector.unregister(key.fd)

    def _crashed(self, answered: int = 0) -> HarnessError:
        try:
            code = self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._kill()
            code = self._process.returncode
        self._pump(0)
        error = HarnessError(
            "crashed",
            f"the adapter closed its output (exit code {code})",
            stderr=self.stderr_tail(),
        )
        error.index = answered
        return error

    def stderr_tail(self) -> str:
        if not self._closed and self._selector.get_map():
            self._pump(0)
        return self._err.decode("utf-8", "replace")

    def _kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def close(self) -> None:
        """Ends the adapter and closes its three pipes; once, however often it is called."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):  # BrokenPipeError: the adapter is gone already
            self._stdin.close()
        try:
            self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._kill()
        self._selector.close()
        for stream in (self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()


class InProcessTransport:
    """An adapter object in this process, reached through the same JSON lines."""

    def __init__(
        self,
        handle: Callable[[dict[str, Any]], dict[str, Any]],
        close: Callable[[], None] = lambda: None,
    ) -> None:
        self._handle = handle
        self._close = close
        self._errors = ""

    def exchange(self, lines: list[bytes], timeout: float) -> list[bytes]:
        responses = []
        for line in lines:
            try:
                response = self._handle(json.loads(line))
                responses.append(json.dumps(response, allow_nan=False).encode())
            except Exception:
                self._errors = traceback.format_exc()[-STDERR_TAIL:]
                error = HarnessError(
                    "crashed", "the in-process adapter raised", stderr=self._errors
                )
                error.index, error.received = len(responses), responses
                raise error from None
        return responses

    def stderr_tail(self) -> str:
        return self._errors

    def close(self) -> None:
        self._close()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} does not fit a binary64 number")
    return value


def decode(line: bytes) -> Any:
    """Strict JSON: no NaN or Infinity tokens, no number that overflows binary64."""
    return json.loads(line, parse_constant=_reject_constant, parse_float=_finite_float)


class Connection:
    """A running adapter behind the protocol: the handshake is done, requests get ids."""

    def __init__(self, open_transport: Callable[[], Transport], timeout: float = 10.0) -> None:
        self._open = open_transport
        self.timeout = timeout
        self._next_id = 0
        self.hello: dict[str, Any] = {}
        self._transport = self._start()

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(self.hello.get("capabilities", ()))

    def _start(self) -> Transport:
        transport = self._open()
        self._transport = transport
        try:
            hello = self.request(
                {
                    "op": "hello",
                    "protocol": PROTOCOL_VERSION,
                    "suite": {"name": "actiongate-conformance", "version": __version__},
                    "spec_version": "1.0",
                }
            )
        except BaseException:
            # An adapter that exits at once, or answers garbage: nobody else holds its pipes.
            transport.close()
            raise
        if hello.get("protocol") != PROTOCOL_VERSION or "implementation" not in hello:
            self._say_bye(f"this runner speaks protocol {PROTOCOL_VERSION} only")
            raise HarnessError(
                "handshake",
                f"the adapter answered hello with {json.dumps(hello)}; "
                f"it must speak protocol {PROTOCOL_VERSION}",
                stderr=transport.stderr_tail(),
            )
        self.hello = hello
        return transport

    def restart(self) -> None:
        """A fresh adapter process (after a crash or a hang)."""
        self._transport.close()
        self._transport = self._start()

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        return self.request_many([message])[0]

    def request_many(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send requests in one batch (pipelined); their responses, checked, in order. A fault
        raises HarnessError, its ``answered`` the checked responses before ``index``."""
        requests = [{"id": self._next_id + offset, **m} for offset, m in enumerate(messages)]
        self._next_id += len(requests)
        fault = None
        try:
            lines = [json.dumps(request, allow_nan=False).encode() for request in requests]
            raw_responses = self._transport.exchange(lines, self.timeout)
        except HarnessError as error:
            error.request = requests[min(error.index, len(requests) - 1)]
            fault, raw_responses = error, error.received[: error.index]
        checked = []
        for index, (request, raw) in enumerate(zip(requests, raw_responses, strict=not fault)):
            try:
                checked.append(self._checked(request, raw))
            except HarnessError as error:  # before the transport's fault, if any
                error.index, error.answered = index, checked
                raise
        if fault is not None:  # the responses before it are checked answers
            fault.answered = checked
            raise fault
        return checked

    def _checked(self, request: dict[str, Any], raw: bytes) -> dict[str, Any]:
        try:
            response = decode(raw)
        except ValueError as error:
            raise self._fault("not_json", f"{error}: {raw[:200]!r}", request) from None
        problems = response_errors(response, answers_check=request.get("op") == "check")
        if problems:
            shown = "; ".join(problems[:3])
            raise self._fault("invalid_response", f"{shown}: {raw[:300]!r}", request)
        if response["id"] != request["id"]:
            raise self._fault(
                "wrong_id", f"expected id {request['id']}, got {response['id']}", request
            )
        del response["id"]
        if request.get("op") == "check" and "decision" in response:
            # A decision is the implementation's answer even when its record breaks the
            # schema (a count of 0 on an ALLOW, an echo of input it should have rejected):
            # the runner reports that as a wrong answer of the vector, not an adapter fault.
            problems = record_problems(response["decision"])
            if problems:
                response[SCHEMA_PROBLEMS] = problems
        return dict(response)

    def _fault(self, kind: str, detail: str, request: Any) -> HarnessError:
        return HarnessError(kind, detail, request, self._transport.stderr_tail())

    def _say_bye(self, reason: str) -> None:
        bye = {"id": self._next_id, "op": "bye", "reason": reason}
        with contextlib.suppress(HarnessError):
            self._transport.exchange([json.dumps(bye).encode()], 1.0)
        self._transport.close()

    def close(self) -> None:
        self._say_bye("done")
