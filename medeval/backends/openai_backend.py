"""Backend for any OpenAI-compatible HTTP endpoint.

Serves `vllm serve`, SGLang, the llama.cpp server, hosted OpenAI and any
cluster behind one endpoint. Requests go out concurrently (asyncio, bounded by
a semaphore) from a background thread; `generate` yields each result as soon as
it arrives. Retries (429, 5xx, timeouts, dropped connections; exponential
backoff with jitter, Retry-After honoured) are the openai client's own.

Endpoint per request:
  * `request.chat` and api="chat"          -> /chat/completions (server applies its template)
  * `request.chat` and api="completions"   -> /completions, prompt rendered locally with
                                              the chat template of `tokenizer`
  * not `request.chat`                     -> /completions, prompt = the message text as is
A prefill is sent on /chat/completions as a trailing assistant message plus
`continue_final_message=True, add_generation_prompt=False` (vLLM/SGLang flags;
`prefill_flags=False` sends the bare trailing message, which llama.cpp treats
as a prefill). On /completions it is appended to the prompt.

Samples (self-consistency): by default (`samples="per_sample"`) every sample is its own
n=1 request whose seed is derived from (seed, prompt, sample index), so a grown, resumed
or sharded run asks for exactly the samples a fresh run would (as far as the server honours
`seed`). `samples="native"` sends one request with `n` (cheaper on hosted APIs that bill the
prompt per request) at the price of samples that depend on k and on the cache's history.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import re
import threading
from typing import Iterator, Literal, Sequence
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import openai

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

from ..errors import MedevalError
from .base import BackendError, Output, Request, Scored, sample_seed, split_pair
from .identity import Identity
from .model_args import ModelArgs

log = logging.getLogger(__name__)

PREFILL_FLAGS = {"continue_final_message": True, "add_generation_prompt": False}
N_REFUSAL = re.compile(r"\bchoices?\b|\bn\b", re.IGNORECASE)   # a message that names n
VALIDATION = re.compile(r"validation error", re.IGNORECASE)  # pydantic's wording (llama-cpp-python's HTTP 500s)
PROMPT_FORMATS = ("auto", "token_ids", "text")
LL_PROMPT = {None: "not yet detected", "token_ids": "token ids",
             "text": "text (continuation tokens found by text_offset)"}
SAMPLES = ("per_sample", "native")
CREDENTIAL_PARAM = re.compile(r"key|token|secret|passw|auth|sig|credential", re.IGNORECASE)


def _refuses_n(err: BackendError) -> bool:
    """Only an explicit refusal of n: a 400/422 that names n, or a 500/501 that says "completion
    choice" (llama.cpp's chat endpoint). A bare 500 is an outage, not an answer about n."""
    status, text = getattr(err, "status", None), getattr(err, "detail", "")
    if status in (400, 422):
        return bool(N_REFUSAL.search(text))
    return status in (500, 501) and "completion choice" in text.lower()


def is_validation_error(status: int | None, body: str) -> bool:
    """A request the server will refuse however often it is sent: HTTP 400/422, or a 500 whose body is a
    validation error (llama-cpp-python answers a schema violation with HTTP 500 and pydantic's message)."""
    if status in (400, 422):
        return True
    if status != 500:
        return False
    try:
        err = json.loads(body)
        err = err.get("error", err) if isinstance(err, dict) else {}
        kind = err.get("type") if isinstance(err, dict) else None
    except ValueError:
        kind = None
    return kind == "invalid_request_error" or bool(VALIDATION.search(body))


async def _no_retry_of_validation_errors(response) -> None:
    """httpx response hook: mark a 500 that is a validation error `x-should-retry: false`, the header
    the openai client obeys, so its own retry loop stops there (400/422 it never retries)."""
    if response.status_code == 500 and "x-should-retry" not in response.headers:
        await response.aread()
        if is_validation_error(500, response.text):
            response.headers["x-should-retry"] = "false"


def safe_url(url: str) -> str:
    """`url` without user:password, query or fragment (they may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def check_url(url: str, option: str = "--base-url") -> None:
    """An http(s) URL with a host and no credentials in it (httpx logs request URLs), or a MedevalError."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as e:
        raise MedevalError(f"{option}: {url!r} is not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MedevalError(f"{option}: {safe_url(url) if parts.hostname else url.split('?')[0]!r} needs a scheme "
                           "and a host, e.g. http://localhost:8000/v1")
    if parts.password is not None or parts.username is not None:
        raise MedevalError(f"{option} {safe_url(url)} carries a user:password: remove it and put the key in "
                           "the API key variable")
    secret = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True) if CREDENTIAL_PARAM.search(k)]
    if secret or CREDENTIAL_PARAM.search(parts.fragment):
        raise MedevalError(f"{option} {safe_url(url)} carries a credential in its query string "
                           f"({', '.join(secret) or 'fragment'}): remove it and put the key in the API key variable")


class OpenAIArgs(ModelArgs):
    """Options of the openai backend (flags and --model-args keys)."""

    base_url: str | None = Field(None, description="server URL, e.g. http://localhost:8000/v1")
    api: Literal["chat", "completions"] | None = None
    concurrency: PositiveInt | None = Field(None, description="requests in flight")
    timeout: PositiveFloat | None = Field(None, description="seconds per request")
    max_retries: NonNegativeInt | None = None
    api_key_env: str | None = Field(None, description="environment variable holding the key")
    extra_body: dict | None = Field(None, description="extra fields sent with every request")
    prefill_flags: bool | None = None
    tokenizer: str | None = Field(None, description="HF tokenizer for api=completions chat prompts")
    chat_template_kwargs: dict | None = None
    samples: Literal["per_sample", "native"] | None = Field(
        None, description="per_sample (default): one seeded n=1 request per sample; native: one request with n")
    prompt_format: Literal["auto", "token_ids", "text"] | None = Field(
        None, description="loglikelihood prompts: auto (default: token ids with a tokenizer, text where the "
                          "server refuses them or no tokenizer is given), token_ids, or text")


class OpenAIBackend:
    name = "openai"
    Args = OpenAIArgs

    def __init__(self, model_id: str, base_url: str | None = None, api: str = "chat",
                 concurrency: int = 8, max_retries: int = 5, timeout: float = 60.0,
                 api_key_env: str = "OPENAI_API_KEY", extra_body: dict | None = None,
                 prefill_flags: bool = True, tokenizer: str | None = None,
                 chat_template_kwargs: dict | None = None, samples: str = "per_sample",
                 prompt_format: str = "auto"):
        if api not in ("chat", "completions"):
            raise MedevalError(f"--api must be 'chat' or 'completions', not {api!r}")
        if concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise MedevalError("need --concurrency >= 1, --max-retries >= 0 and --timeout > 0")
        if samples not in SAMPLES:
            raise MedevalError(f"samples must be 'per_sample' or 'native', not {samples!r}")
        if prompt_format not in PROMPT_FORMATS:
            raise MedevalError(f"prompt_format must be 'auto', 'token_ids' or 'text', not {prompt_format!r}")
        self.model_id, self.api, self.concurrency, self.samples = model_id, api, concurrency, samples
        self.max_retries, self.timeout, self.api_key_env = max_retries, timeout, api_key_env
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self.extra_body, self.prefill_flags, self.tokenizer = dict(extra_body or {}), prefill_flags, tokenizer
        self.chat_template_kwargs = dict(chat_template_kwargs or {})  # a request's own take precedence
        self.honours_n: bool | None = None   # learnt from the first request with n > 1
        self.prompt_format = prompt_format
        # loglikelihood prompts: "token_ids" or "text", learnt from the first scoring request under "auto"
        self.ll_prompt: str | None = None if prompt_format == "auto" else prompt_format
        self.ll_prompt_why: str | None = None
        self.ll_shifted: bool | None = None  # text prompts: echoed logprobs one position late (llama-cpp-python)
        self.straddled = 0                   # continuations whose first token began in the context (text prompts)
        self._ll_lock: asyncio.Lock | None = None
        self.server_model: str | None = None  # the `model` field of the server's responses
        self._url = safe_url(self.base_url)
        check_url(self.base_url)  # httpx would log a credential with every request
        self._tok = None

    # -- what is sent -------------------------------------------------------
    def _endpoint(self, request: Request) -> str:
        scoring = bool(request.continuations)  # loglikelihood: always /completions, prompt rendered here
        return "chat" if request.chat and self.api == "chat" and not scoring else "completions"

    def _template_kwargs(self, request: Request) -> dict:
        return {**self.chat_template_kwargs, **dict(request.chat_template_kwargs)}

    def _messages(self, request: Request) -> list[dict]:
        msgs = request.as_messages()
        return msgs + [{"role": "assistant", "content": request.prefill}] if request.prefill else msgs

    def _prompt(self, request: Request) -> str:
        if not request.chat:
            return "\n\n".join(c for _, c in request.messages) + request.prefill
        if self.tokenizer is None:
            raise BackendError(f"api='completions' needs a tokenizer to apply the chat template to "
                               f"request {request.id!r}: pass tokenizer=<HF id or path>, or use api='chat'")
        if self._tok is None:
            from transformers import AutoTokenizer
            self._tok = AutoTokenizer.from_pretrained(self.tokenizer)
        return self._tok.apply_chat_template(
            self._messages(request), tokenize=False, add_generation_prompt=not request.prefill,
            continue_final_message=bool(request.prefill), **self._template_kwargs(request))

    def render(self, request: Request) -> str:
        """/completions: the prompt text. /chat/completions: JSON of the messages
        (prefill as a trailing assistant turn) and any chat_template_kwargs."""
        if self._endpoint(request) == "completions":
            return self._prompt(request)
        sent: dict = {"messages": self._messages(request)}
        if self._template_kwargs(request):
            sent["chat_template_kwargs"] = self._template_kwargs(request)
        return json.dumps(sent, ensure_ascii=False, sort_keys=True)

    def _body(self, request: Request, n: int, seed: int | None) -> dict:
        s = request.sampling
        body = {"model": self.model_id, "n": n, "temperature": float(s.temperature), "top_p": s.top_p,
                "max_tokens": s.max_tokens, "stop": list(s.stop) or None, "seed": seed}
        body = {k: v for k, v in body.items() if v is not None}
        extra = dict(self.extra_body)
        if self._endpoint(request) == "chat":
            body["messages"] = self._messages(request)
            if self._template_kwargs(request):
                extra["chat_template_kwargs"] = self._template_kwargs(request)
            if request.prefill and self.prefill_flags:
                extra.update(PREFILL_FLAGS)
        else:
            body["prompt"] = self._prompt(request)
        if extra:
            body["extra_body"] = extra
        return body

    # -- one HTTP call, errors mapped to BackendError -----------------------
    def _scrub(self, text: str) -> str:
        key = os.environ.get(self.api_key_env)
        return text.replace(key, "***") if key else text

    def _explain(self, err: openai.APIError) -> str:
        sent = getattr(err, "request", None) or getattr(getattr(err, "response", None), "request", None)
        retries = sent.headers.get("x-stainless-retry-count", "0") if sent is not None else "?"
        if isinstance(err, openai.APIStatusError):
            detail = self._scrub(str(err.message))[:300]
            body = err.response.text if err.response is not None else ""
            if is_validation_error(err.status_code, body):
                return f"HTTP {err.status_code}, the server refused the request (not retried): {detail}"
            return f"HTTP {err.status_code} (after {retries} retries): {detail}"
        if isinstance(err, openai.APITimeoutError):
            return f"no response within {self.timeout}s (after {retries} retries); raise --timeout"
        if isinstance(err, openai.APIConnectionError):
            cause = self._scrub(repr(err.__cause__))[:200]
            return f"connection failed (after {retries} retries): {cause}; is the server running?"
        return self._scrub(f"{type(err).__name__}: {err}")[:300]

    async def _call(self, client, request: Request, n: int, seed: int | None):
        chat = self._endpoint(request) == "chat"
        api = client.chat.completions if chat else client.completions
        what = f"{self._url} ({'chat/completions' if chat else 'completions'}, request {request.id!r})"
        try:
            raw = await api.with_raw_response.create(**self._body(request, n, seed))
        except openai.APIError as err:  # raised once the client's own retries are spent
            failure = BackendError(f"{what}: {self._explain(err)}")
            failure.status = getattr(err, "status_code", None)
            failure.detail = self._scrub(str(getattr(err, "message", "")))
            raise failure from None
        try:
            resp = raw.parse()
            choices = sorted(resp.choices, key=lambda c: c.index)
            texts = [(c.message.content if chat else c.text) or "" for c in choices]
        except (AttributeError, TypeError, ValueError):
            raise BackendError(f"{what}: the reply is not an OpenAI completion: "
                               f"{self._scrub(raw.text)[:200]!r}") from None
        if not texts:
            raise BackendError(f"{what}: the server returned no choices")
        self.server_model = self.server_model or resp.model
        return texts, [c.finish_reason for c in choices], raw.retries_taken, _usage(resp)

    async def _complete(self, client, request: Request) -> Output:
        """All n samples of one request. Sampled requests: by default one n=1 call per sample index,
        seeded from (seed, prompt, index); samples="native" asks for n in one call (see docs/backends.md)."""
        s = request.sampling
        # native n only for a whole request: the missing samples of a grown or resumed one are seeded per
        # index, else they would repeat the samples the cache already holds (same seed, same n draws)
        n, native = s.n, self.samples == "native" and not s.greedy and request.indices == tuple(range(s.n))
        texts, reasons, retries, calls, usage = [], [], 0, 0, None
        path = "single" if s.greedy else "per_sample"
        if s.greedy or (native and self.honours_n):
            (texts, reasons, retries, usage), calls = await self._call(client, request, n, s.seed), 1
            path = "single" if s.greedy else "native"
        elif native and self.honours_n is None:
            texts, reasons, retries, calls, usage = await self._probe_n(client, request)
            path = "native" if texts else "per_sample (server refused n)"
        if native and not texts:
            path = "per_sample (server refused n)"
        texts, reasons = texts[:n], reasons[:n]
        if len(texts) < n and path == "native":  # fewer choices than asked: not a native result
            texts, reasons, usage, path = [], [], None, "per_sample (server returned fewer choices)"
        tally = _Usage(usage, len(texts))
        prompt = self.render(request)
        for i in request.indices[len(texts):]:  # each missing sample: its own seeded n=1 call
            t, r, k, u = await self._call(client, request, 1, sample_seed(s.seed, prompt, i))
            texts, reasons, retries, calls = texts + t[:1], reasons + r[:1], retries + k, calls + 1
            tally.add(u, 1)
        # how a fresh run of the whole request bills its prompt (accounting.sample_info): once for one call
        # with n choices, else once per sample's own call, whatever path the missing samples took this time
        billing = "per_request" if s.greedy or (self.samples == "native" and self.honours_n is not False) else "per_sample"
        return Output(texts, reasons, {"n_path": path, "http_calls": calls, "retries": retries,
                                       "server_model": self.server_model, "prompt_billing": billing,
                                       **tally.info(len(texts))})

    async def _probe_n(self, client, request: Request):
        """samples="native", first n > 1 request: does the server return n choices, fewer (it ignores n),
        or refuse n explicitly (a 400/422 that names n, or llama.cpp's HTTP 500 "Only one completion
        choice is allowed")? Any other error (a passing 500, a timeout) is not a refusal: it is retried
        like every request and, if it persists, fails the run instead of changing how samples are made."""
        n, seed = request.sampling.n, request.sampling.seed
        try:  # no retries yet: a refusal of n should not cost the whole backoff schedule
            texts, reasons, retries, usage = await self._call(client.with_options(max_retries=0), request, n, seed)
        except BackendError as err:
            if not _refuses_n(err):
                texts, reasons, retries, usage = await self._call(client, request, n, seed)
                if self.honours_n is None:
                    self._learn_n(len(texts) >= n, f"returned {len(texts)} of {n} choices")
                return texts, reasons, retries, 1, usage
            self._learn_n(False, f"refused n={n} (HTTP {err.status})")
            return [], [], 0, 1, None
        if self.honours_n is None:
            self._learn_n(len(texts) >= n, f"returned {len(texts)} of {n} choices")
        return texts, reasons, retries, 1, usage

    def _learn_n(self, honours: bool, why: str) -> None:
        self.honours_n = honours
        if not honours:
            log.warning("%s %s: it does not honour n, so each sample is now its own request "
                        "(n=1, seed from seed, prompt and sample index)", self._url, why)

    # -- loglikelihood ------------------------------------------------------
    async def _score(self, client, request: Request) -> Scored:
        """Each continuation: /completions with context + continuation, echo and logprobs, summed over
        the continuation's tokens. The prompt goes as token ids (vLLM serve, SGLang) or as text (llama.cpp's
        servers); under prompt_format="auto" the first request decides for the whole run (see _learn_ll)."""
        if self.ll_prompt is None or (self.ll_prompt == "text" and self.ll_shifted is None):
            async with self._ll_lock:   # the first request probes; the others wait for its answer
                if self.ll_prompt is None:
                    return await self._probe_ll(client, request)
                if self.ll_prompt == "text" and self.ll_shifted is None:
                    return await self._score_text(client, request)
        return await (self._score_ids if self.ll_prompt == "token_ids" else self._score_text)(client, request)

    async def _probe_ll(self, client, request: Request) -> Scored:
        if self.tokenizer is None:
            self._learn_ll("text", "no tokenizer given")
            return await self._score_text(client, request)
        try:
            out = await self._score_ids(client, request, probing=True)
        except _Refused as err:
            self._learn_ll("text", f"the server refused token-id prompts: {err.reason}")
            return await self._score_text(client, request)
        self._learn_ll("token_ids", "the server accepted token-id prompts")
        return out

    def _learn_ll(self, fmt: str, why: str) -> None:
        why = " ".join(why.split())   # one line: pydantic's messages span several
        self.ll_prompt, self.ll_prompt_why = fmt, why
        (log.warning if "refused" in why else log.info)("%s: loglikelihood prompts are sent as %s (%s)",
                                                        self._url, LL_PROMPT[fmt], why)

    async def _echo(self, client, prompt, what: str, probing: bool = False, top: int = 1):
        """One echo+logprobs call; the first choice's logprobs. A validation error is not retried (see
        _no_retry_of_validation_errors) and fails with the server's message (or, probing, is a refusal)."""
        try:
            resp = await client.completions.create(model=self.model_id, prompt=prompt, max_tokens=1, temperature=0.0,
                                                   echo=True, logprobs=top, **({"extra_body": self.extra_body}
                                                                              if self.extra_body else {}))
        except openai.APIStatusError as err:
            body = err.response.text if err.response is not None else str(err.message)
            if probing and is_validation_error(err.status_code, body):
                raise _Refused(f"HTTP {err.status_code}: {self._scrub(str(err.message))[:200]}") from None
            hint = ("; loglikelihood tasks need a server that returns prompt logprobs (echo=true with logprobs: "
                    "vllm serve, SGLang, llama_cpp.server)" if is_validation_error(err.status_code, body) else "")
            raise BackendError(f"{what}: {self._explain(err)}{hint}") from None
        except openai.APIError as err:
            raise BackendError(f"{what}: {self._explain(err)}") from None
        lp = getattr(resp.choices[0], "logprobs", None) if resp.choices else None
        if lp is None or not lp.token_logprobs:
            raise BackendError(f"{what}: the reply has no prompt logprobs; this server cannot score loglikelihood "
                               "tasks (it needs echo=true with logprobs: vllm serve, SGLang, llama_cpp.server)")
        return resp.choices[0], lp

    async def _score_ids(self, client, request: Request, probing: bool = False) -> Scored:
        """Token ids of context + continuation, split as lm-eval splits them (base.split_pair)."""
        tok = self._tokenizer(request)
        text = self._prompt(request)
        encode = lambda t: tok.encode(t, add_special_tokens=not request.chat)  # noqa: E731
        out = Scored([], [], [], {"http_calls": 0, "prompt_format": "token_ids"})
        what = f"{self._url} (completions echo+logprobs, token-id prompt, request {request.id!r})"
        for c in request.continuations:
            ctx, cont = split_pair(encode, text, c)
            ids = ctx + cont
            _, lp = await self._echo(client, ids, what, probing)
            probing = False   # only the first call can be a refusal of the format
            if len(lp.token_logprobs) < len(ids):
                raise BackendError(f"{what}: the reply has logprobs for {len(lp.token_logprobs)} tokens, "
                                   f"the prompt has {len(ids)}")
            span = range(len(ctx), len(ids))
            out.logprobs.append(float(sum(lp.token_logprobs[p] for p in span)))
            out.tokens.append(len(cont))
            out.greedy.append(_greedy(lp, span))
            out.info["http_calls"] += 1
        out.info["prompt_tokens"] = len(ctx) if request.continuations else 0
        return out

    async def _score_text(self, client, request: Request) -> Scored:
        """Context + continuation as one string; the server tokenises it and its `text_offset`s say which
        tokens are the continuation's: those that start at or after the boundary, plus a token that starts
        in the context and ends in the continuation (it straddles the boundary: counted in the continuation,
        so that every character of the continuation is scored, and flagged in `straddles`)."""
        text = self._prompt(request)
        out = Scored([], [], [], {"http_calls": 0, "prompt_format": "text"}, straddles=[])
        what = f"{self._url} (completions echo+logprobs, text prompt, request {request.id!r})"
        for c in request.continuations:
            ctx, cont = split_text(text, c)
            full = ctx + cont
            lp, echoed = await self._echo_text(client, full, what)
            if self.ll_shifted is None:   # the first text request: are the echoed logprobs aligned?
                shifted = _echo_shift(lp, full, echoed)
                if shifted is None:   # undecided on this prompt: the context alone, which has another next token
                    lp_ctx, echoed_ctx = await self._echo_text(client, ctx, what)
                    shifted = _echo_shift(lp_ctx, ctx, echoed_ctx)
                    out.info["http_calls"] += 1
                self._learn_shift(shifted, what)
            offsets = lp.text_offset
            first, straddle = _continuation_start(offsets, len(ctx), len(full))
            span = [p for p in range(first, len(offsets)) if offsets[p] < len(full)]
            if not span or first == 0:
                raise BackendError(f"{what}: no scored tokens for continuation {c!r} (the context is empty)")
            scored = [_token_logprob(lp, p, self.ll_shifted) for p in span]
            for j, p in enumerate(span):
                if scored[j] is None:   # shifted: ask for that position alone
                    scored[j] = await self._next_token_logprob(client, full[:offsets[p]], lp.tokens[p], what)
                    out.info["http_calls"] += 1
            out.logprobs.append(float(sum(v for v, _ in scored)))
            out.tokens.append(len(span))
            out.greedy.append(all(g for _, g in scored))
            out.straddles.append(straddle)
            self.straddled += straddle
            out.info["http_calls"] += 1
            out.info["prompt_tokens"] = first
        return out

    async def _next_token_logprob(self, client, prefix: str, token: str, what: str) -> tuple[float, bool]:
        """The log-probability of `token` right after `prefix`, where the echoed logprobs are shifted: one request
        without echo (whose logprobs are aligned) that forces `token` with a logit bias given as text
        (llama-cpp-python's `logit_bias_type: tokens`); the logprobs it returns are those before the bias."""
        if not self.ll_shifted:
            raise BackendError(f"{what}: the server sent no log-probability for prompt token {token!r}")
        extra = {**self.extra_body, "logit_bias": {token: 100.0}, "logit_bias_type": "tokens"}
        try:
            resp = await client.completions.create(model=self.model_id, prompt=prefix, max_tokens=1, temperature=0.0,
                                                   logprobs=1, extra_body=extra)
        except openai.APIError as err:
            raise BackendError(f"{what}: {self._explain(err)}") from None
        lp = getattr(resp.choices[0], "logprobs", None) if resp.choices else None
        if not lp or lp.tokens != [token] or lp.token_logprobs[0] is None:
            raise BackendError(f"{what}: the server did not score {token!r} after the text before it (its echoed "
                               "logprobs are shifted, and forcing the token failed); use a server with aligned "
                               "prompt logprobs (vllm serve)")
        return float(lp.token_logprobs[0]), _top1(lp.top_logprobs[0]) == token

    async def _echo_text(self, client, full: str, what: str):
        """The echoed logprobs of a text prompt, checked: a text_offset per token, the prompt echoed."""
        choice, lp = await self._echo(client, full, what)
        if len(lp.text_offset or []) != len(lp.token_logprobs) or not (choice.text or "").startswith(full):
            raise BackendError(f"{what}: the reply does not echo the prompt with a text_offset per token, "
                               "so the continuation's tokens cannot be found; use prompt_format=token_ids "
                               "with tokenizer=<the served model's HF id or path>")
        return lp, choice.text

    def _learn_shift(self, shifted: bool | None, what: str) -> None:
        if shifted is None:
            raise BackendError(f"{what}: cannot tell which position this server's prompt logprobs belong to (the "
                               "greedy token after the prompt is not the top-1 alternative where it should be); "
                               "use prompt_format=token_ids with tokenizer=<the served model's HF id or path>")
        self.ll_shifted = shifted
        if shifted:
            log.warning("%s: the server's echoed prompt logprobs are shifted by one token (llama-cpp-python with a "
                        "model that adds no BOS token); each continuation token is scored by its own request "
                        "without echo instead", self._url)

    def _tokenizer(self, request: Request):
        if self.tokenizer is None:
            why = ("applies the chat template here" if request.chat else "sends token ids (prompt_format=token_ids)")
            raise BackendError(f"request {request.id!r}: loglikelihood scoring over HTTP {why}, so the "
                               "openai backend needs tokenizer=<the served model's HF id or path> "
                               "(--model-args tokenizer=...)")
        if self._tok is None:
            from transformers import AutoTokenizer
            self._tok = AutoTokenizer.from_pretrained(self.tokenizer)
        return self._tok

    def loglikelihood(self, requests: Sequence[Request]) -> Iterator[tuple[int, Scored]]:
        for r in requests:  # fail on a bad configuration before any traffic
            if r.chat or self.prompt_format == "token_ids":
                self._tokenizer(r)
        yield from self._stream(list(requests), self._score)

    # -- the Backend protocol ------------------------------------------------
    async def _produce(self, requests: list[Request], out: queue.Queue, work=None) -> None:
        http = openai.DefaultAsyncHttpxClient(event_hooks={"response": [_no_retry_of_validation_errors]})
        client = openai.AsyncOpenAI(api_key=os.environ.get(self.api_key_env) or "EMPTY",
                                    base_url=self.base_url, max_retries=self.max_retries,
                                    timeout=self.timeout, http_client=http)
        slots = asyncio.Semaphore(self.concurrency)
        self._ll_lock = asyncio.Lock()

        work = work or self._complete
        failures: list[Exception] = []

        async def one(i: int, request: Request):
            async with slots:
                if failures:  # the run is failing: start nothing new
                    return None
                try:
                    return i, await work(client, request)
                except Exception as err:
                    failures.append(err)
                    return None

        tasks = [asyncio.ensure_future(one(i, r)) for i, r in enumerate(requests)]
        try:  # after a failure, requests already in flight still complete and are handed over (and cached)
            for done in asyncio.as_completed(tasks):
                item = await done
                if item is not None:
                    out.put(item)
            if failures:
                out.put(failures[0])
        except Exception as err:
            out.put(err)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.close()

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[int, Output]]:
        requests = list(requests)
        for r in requests:  # fail on a bad configuration before any traffic
            self.render(r)
        yield from self._stream(requests, self._complete)

    def _stream(self, requests: list[Request], work) -> Iterator[tuple[int, Output | Scored]]:
        """Run `work(client, request)` for every request concurrently; yield (index, result) as each lands."""
        if not requests:
            return
        out: queue.Queue = queue.Queue()
        loop = asyncio.new_event_loop()
        task = loop.create_task(self._produce(requests, out, work))
        thread = threading.Thread(target=_drive, args=(loop, task), name="medeval-openai", daemon=True)
        thread.start()
        try:
            for _ in requests:
                item = out.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:  # also runs when the caller stops early: cancel what is in flight
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop already finished and closed
                pass
            thread.join()

    def identity(self) -> Identity:
        """The served model name at this endpoint, and everything sent that changes outputs.
        (What the server runs behind the name is the server's business: serve a new checkpoint
        under a new name, or use --no-cache.)"""
        return Identity(backend=self.name, model=self.model_id, endpoint=self._url,
                        tokenizer=self.tokenizer, chat_template_kwargs=dict(self.chat_template_kwargs),
                        options={"api": self.api, "extra_body": self.extra_body,
                                 "prefill_flags": self.prefill_flags, "samples": self.samples,
                                 # only where set: the cache keys of existing runs stay valid
                                 **({"prompt_format": self.prompt_format} if self.prompt_format != "auto" else {})})

    def describe(self) -> dict:
        # `server_model` (the `model` field of the responses) is known only after the first
        # response, so it is not the `revision`: that one is part of the cache key.
        return {"backend": self.name, "id": self.model_id, "revision": None,
                "server_model": self.server_model, "base_url": self._url, "api": self.api,
                "n_support": {None: "not yet detected", True: "native",
                              False: "per-sample fallback (server does not honour n)"}[self.honours_n],
                "loglikelihood_prompt": LL_PROMPT[self.ll_prompt] + (f"; {self.ll_prompt_why}"
                                                                     if self.ll_prompt_why else ""),
                "prompt_format": self.prompt_format, "straddled_continuations": self.straddled,
                "echo_logprobs": {None: "not checked", False: "aligned",
                                  True: "shifted by one token (each continuation token scored by its own request)"
                                  }[self.ll_shifted],
                "samples": self.samples, "concurrency": self.concurrency, "max_retries": self.max_retries,
                "timeout": self.timeout, "api_key_env": self.api_key_env,
                "extra_body": self.extra_body, "prefill_flags": self.prefill_flags,
                "tokenizer": self.tokenizer, "chat_template_kwargs": self.chat_template_kwargs}


class _Refused(Exception):
    """The server refused the prompt's format (a validation error): not an answer about the model."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def split_text(context: str, continuation: str) -> tuple[str, str]:
    """(context, continuation) as text, split as lm-eval does: trailing spaces of the context move to the
    continuation (the text counterpart of base.split_pair)."""
    n = len(context) - len(context.rstrip())
    return (context[:-n], context[-n:] + continuation) if n else (context, continuation)


def _continuation_start(offsets: list[int], boundary: int, end: int) -> tuple[int, bool]:
    """The first token of the continuation and whether it straddles the boundary (starts before it and
    ends after it). Token p covers [offsets[p], offsets[p+1]); the last one ends at `end`."""
    first = next((p for p, o in enumerate(offsets) if o >= boundary), len(offsets))
    if first > 0:
        stop = offsets[first] if first < len(offsets) else end
        if offsets[first - 1] < boundary < stop:
            return first - 1, True
    return first, False


def _top1(d) -> str | None:
    return max(d, key=d.get) if d else None


def _echo_shift(lp, full: str, echoed: str) -> bool | None:
    """Are a text prompt's echoed logprobs one position late? With temperature 0 and max_tokens 1 the generated
    token is the top-1 alternative at its own position where the logprobs are aligned (vLLM, the test server);
    where each position holds the distribution that follows its token (llama-cpp-python 0.3 for a model
    without BOS, which also leaves the generated token out), it is the top-1 at the last prompt token.
    None: neither (or nothing was generated)."""
    tops = lp.top_logprobs or []
    m = next((p for p, o in enumerate(lp.text_offset) if o >= len(full)), None)
    if m is not None and m < len(tops) and tops[m] and _top1(tops[m]) == lp.tokens[m]:
        return False
    generated = lp.tokens[m] if m is not None else echoed[len(full):]   # "" where it is the end of text
    last = (len(lp.tokens) if m is None else m) - 1
    if 0 < last < len(tops) and tops[last] and _top1(tops[last]) == generated:
        return True
    return None


def _token_logprob(lp, p: int, shifted: bool) -> tuple[float, bool] | None:
    """(log-probability of prompt token p given the tokens before it, is it the top-1 alternative there);
    None where the echoed logprobs are shifted (the caller asks for the token on its own)."""
    v = None if shifted else lp.token_logprobs[p]
    return None if v is None else (float(v), _top1((lp.top_logprobs or [None] * (p + 1))[p]) == lp.tokens[p])


def _greedy(lp, span) -> bool:
    """Would greedy decoding produce these tokens: each one the top-1 alternative of its position?"""
    tops = lp.top_logprobs or [None] * len(lp.token_logprobs)
    return all(tops[p] and max(tops[p], key=tops[p].get) == lp.tokens[p] for p in span)


def _usage(resp) -> tuple[int, int] | None:
    """(prompt_tokens, completion_tokens) from a response's `usage`, or None where the server sent none."""
    u = getattr(resp, "usage", None)
    p, c = getattr(u, "prompt_tokens", None), getattr(u, "completion_tokens", None)
    return (p, c) if isinstance(p, int) and isinstance(c, int) else None


class _Usage:
    """Token counts of one request's HTTP calls, summed as the server bills them (each call's prompt counts).

    A call for one sample gives that sample's completion tokens; a call for several (native n) gives
    only their total, so the per-sample counts of those samples stay unknown (None)."""

    def __init__(self, usage, n_samples: int):
        self.prompt = self.completion = 0
        self.call_prompt = None
        self.per_sample: list[int | None] = []
        self.complete = True
        if n_samples:
            self.add(usage, n_samples)

    def add(self, usage, n_samples: int) -> None:
        if usage is None:
            self.complete = False
            self.per_sample += [None] * n_samples
            return
        self.prompt += usage[0]
        self.call_prompt = usage[0]   # every call of a request sends the same prompt
        self.completion += usage[1]
        self.per_sample += [usage[1]] if n_samples == 1 else [None] * n_samples

    def info(self, n: int) -> dict:
        if not self.complete:
            return {"usage": "incomplete: the server omitted `usage` on some calls"}
        return {"prompt_tokens": self.prompt, "completion_tokens": self.per_sample[:n],
                "completion_tokens_total": self.completion, "call_prompt_tokens": self.call_prompt}


def _drive(loop: asyncio.AbstractEventLoop, task: asyncio.Task) -> None:
    """Thread body: run the producer to the end (its outcome goes through the queue)."""
    try:
        loop.run_until_complete(task)
    except BaseException:  # cancelled by the consumer: nothing left to report
        pass
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
