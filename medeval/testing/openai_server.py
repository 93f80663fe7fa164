"""A small OpenAI-protocol HTTP server for tests and benchmarks (stdlib only).

Serves POST /v1/chat/completions, POST /v1/completions, GET /v1/models and
GET /health on 127.0.0.1 (a free port unless told). Two generators:

  echo  FAKE: no model. Answers "The answer is <letter>", the letter derived
        from a hash of the prompt (and, when sampling, of seed + sample index).
  hf    real generation with the embedded SmolLM2-135M-Instruct (transformers).

Every completion carries `usage` (prompt and completion tokens; hf: real token counts,
echo: FAKE, one per word). Both seed sample i of a request with `seed + i`, so a request with n=k gives the
same texts as k requests with n=1 and seeds seed..seed+k-1 (in this server; real
servers promise no such thing).

Fault injection, per instance: `faults` is a schedule consumed in order of
arrival (the i-th request gets faults[i]; None or "ok" serves normally), after
which `fault_rates` ({"429": 0.1, ...}, seeded) apply. Kinds: "429" (with
Retry-After), "500", "503", "delay" (answer only after `delay_s`: set it above
the client timeout), "drop" (close the connection without a response) and
"garbage" (status 200 with an HTML page, like a misconfigured proxy), "empty" (a normal completion
whose every choice is the empty string) and "surrogate" (a normal completion whose texts end in a lone
UTF-16 surrogate, `"\ud83d"` in the JSON: an emoji cut in half).
`ignore_n=True`: one choice whatever n is asked; `reject_n=True`: HTTP 500
"Only one completion choice is allowed" for n > 1 (llama.cpp's chat endpoint);
`text_prompts_only=True`: an echo request whose prompt is token ids gets llama-cpp-python's answer, an
HTTP 500 whose body is a pydantic validation error (string prompts are scored, with `text_offset`);
`shifted_echo=True`: the echoed logprobs of a string prompt are one position late, as llama-cpp-python 0.3
returns them for a model without BOS (position i holds the distribution that follows token i).
Every request is appended to `server.log` (thread-safe) with its fault and status.

Command line: python -m medeval.testing.openai_server --help
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULT_KINDS = ("429", "500", "503", "delay", "drop", "garbage", "empty", "surrogate")
SURROGATE = "\ud83d"   # the first half of an emoji's UTF-16 surrogate pair, sent alone
ECHO_MODEL = "medeval-echo-FAKE"
HF_MODEL = "SmolLM2-135M-Instruct"


def echo_generate(prompt: str, n: int, temperature: float, seed: int | None, max_tokens: int):
    """FAKE generator: a deterministic, hash-derived answer letter per sample."""
    outs = []
    for i in range(n):
        if temperature == 0:
            key = prompt
        else:
            key = f"{prompt}\x00{seed + i if seed is not None else random.random()}"
        letter = "ABCD"[int(hashlib.sha256(key.encode()).hexdigest(), 16) % 4]
        words = f"The answer is {letter}".split(" ")[:max_tokens]   # FAKE tokens: one per word
        outs.append((" ".join(words), "length" if max_tokens < 4 else "stop", len(words)))
    return outs, len(prompt.split())


class HFGenerator:
    """Real generation with the embedded model; one request at a time."""

    def __init__(self):
        self._lock = threading.Lock()
        self.model = self.tok = None

    def load(self):
        with self._lock:
            if self.model is None:
                from medeval.testing import load_embedded_model
                self.model, self.tok = load_embedded_model()

    def __call__(self, prompt: str, n: int, temperature: float, seed: int | None, max_tokens: int,
                 top_p: float = 1.0, chat_text: bool = False):
        import torch

        self.load()
        with self._lock, torch.inference_mode():
            ids = self.tok(prompt, return_tensors="pt", add_special_tokens=not chat_text).input_ids
            opts = dict(max_new_tokens=max_tokens, pad_token_id=self.tok.eos_token_id)
            if temperature == 0:
                opts.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            else:
                opts.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
            outs = []
            for i in range(1 if temperature == 0 else n):
                torch.manual_seed(seed + i if seed is not None else random.getrandbits(31))
                new = self.model.generate(ids, **opts)[0, ids.shape[1]:].tolist()
                hit_eos = self.tok.eos_token_id in new
                outs.append((self.tok.decode(new, skip_special_tokens=True), "stop" if hit_eos else "length", len(new)))
            return outs * n if temperature == 0 else outs, ids.shape[1]


    def prompt_logprobs(self, prompt: list[int] | str, top_k: int = 1, shifted: bool = False) -> tuple[dict, str]:
        """/completions echo + logprobs: each prompt token's log-probability (None for the first), its top-1
        alternative, then one greedy token; and the echoed text. A prompt of token ids is answered as vLLM
        serve answers it (token names, no offsets); a string prompt as llama.cpp's servers answer it (token
        texts, each token's character offset in the echoed text)."""
        import numpy as np
        import torch

        self.load()
        text = isinstance(prompt, str)
        if text:
            enc = self.tok(prompt, add_special_tokens=True, return_offsets_mapping=True)
            ids, spans = enc.input_ids, [a for a, _ in enc.offset_mapping]
        else:
            ids = list(prompt)
        with self._lock, torch.inference_mode():
            logp = torch.log_softmax(self.model(torch.tensor([ids])).logits[0].float(), dim=-1)
        if text:
            name = lambda t: self.tok.decode([int(t)])  # noqa: E731
        else:
            name = lambda t: self.tok.convert_ids_to_tokens(int(t))  # noqa: E731
        nxt = int(logp[-1].argmax())
        seq = ids + [nxt]

        def tops(row) -> dict:
            values, idx = row.topk(min(top_k, row.shape[-1]))
            return {name(i): v.item() for v, i in zip(values, idx)}

        if shifted:   # llama-cpp-python 0.3 without BOS: position p holds the distribution that follows token p
            rows = list(logp) + [torch.full_like(logp[-1], -float(np.log(logp.shape[-1])))]  # never computed
            token_lps = [None] + [rows[p][seq[p]].item() for p in range(1, len(seq))]
            top = [None] + [{**tops(rows[p]), name(seq[p]): rows[p][seq[p]].item()} for p in range(1, len(seq))]
        else:
            token_lps = [None] + [logp[p - 1, seq[p]].item() for p in range(1, len(seq))]
            top = [None] + [tops(logp[p - 1]) for p in range(1, len(seq))]
        tokens = [prompt[a:b] for a, b in enc.offset_mapping] + [name(nxt)] if text else [name(t) for t in seq]
        return ({"tokens": tokens, "token_logprobs": token_lps, "top_logprobs": top,
                 "text_offset": spans + [len(prompt)] if text else None},
                prompt + name(nxt) if text else "")


    def next_alternatives(self, prompt: str, top_k: int, also: list[str] = ()) -> dict:
        """The top_k most probable next tokens after a string prompt (as text), with their log-probabilities,
        and those of the tokens `also` (texts of single tokens; llama-cpp-python's `logit_bias_type: tokens`)."""
        import torch

        ids = self.tok(prompt, add_special_tokens=True).input_ids
        with self._lock, torch.inference_mode():
            logp = torch.log_softmax(self.model(torch.tensor([ids])).logits[0, -1].float(), dim=-1)
        values, idx = logp.topk(min(top_k, logp.shape[-1]))
        out: dict = {}
        for v, i in zip(values.tolist(), idx.tolist()):
            out.setdefault(self.tok.decode([i]), v)   # the most probable of the tokens that read the same
        for text in also:
            ids = self.tok.encode(text, add_special_tokens=False)
            if len(ids) == 1:
                out[text] = logp[ids[0]].item()
        return out


class OpenAITestServer:
    def __init__(self, mode: str = "echo", *, model_name: str | None = None, faults=(),
                 fault_rates: dict | None = None, seed: int = 0,
                 ignore_n: bool = False, reject_n: bool = False, text_prompts_only: bool = False,
                 shifted_echo: bool = False,
                 delay_s: float = 2.0, retry_after_s: float = 0.01, api_key: str | None = None,
                 host: str = "127.0.0.1", port: int = 0):
        if mode not in ("echo", "hf"):
            raise ValueError(f"mode must be 'echo' or 'hf', not {mode!r}")
        for kind in [f for f in faults if f not in (None, "ok")] + list(fault_rates or {}):
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r}; choose from {FAULT_KINDS}")
        self.mode, self.model_name = mode, model_name or (ECHO_MODEL if mode == "echo" else HF_MODEL)
        self.faults, self.fault_rates = list(faults), dict(fault_rates or {})
        self.ignore_n, self.reject_n, self.text_prompts_only = ignore_n, reject_n, text_prompts_only
        self.shifted_echo = shifted_echo
        self.delay_s, self.retry_after_s = delay_s, retry_after_s
        self.api_key, self.host, self.port = api_key, host, port
        self.generator = HFGenerator() if mode == "hf" else None
        self.log: list[dict] = []
        self._arrivals = 0
        self._lock, self._rng, self._stopping = threading.Lock(), random.Random(seed), threading.Event()
        self._httpd = None

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> "OpenAITestServer":
        if self.mode == "hf":
            self.generator.load()
        self._httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.app = self
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, name="openai-test-server", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- bookkeeping ------------------------------------------------------------
    def next_fault(self) -> str | None:
        with self._lock:
            arrival, self._arrivals = self._arrivals, self._arrivals + 1
            if arrival < len(self.faults):
                fault = self.faults[arrival]
                return None if fault == "ok" else fault
            for kind, rate in self.fault_rates.items():
                if self._rng.random() < rate:
                    return kind
            return None

    def record(self, entry: dict) -> dict:
        with self._lock:
            entry["seq"] = len(self.log)
            self.log.append(entry)
        return entry

    def entries(self, **match) -> list[dict]:
        with self._lock:
            return [e for e in self.log if all(e.get(k) == v for k, v in match.items())]

    # -- one completion request -------------------------------------------------
    def complete(self, path: str, body: dict) -> tuple[int, dict]:
        chat = path.endswith("/chat/completions")
        if body.get("stream"):
            return 400, _error("streaming is not supported by this test server")
        if body.get("model") != self.model_name:
            return 404, _error(f"The model `{body.get('model')}` does not exist.", "NotFoundError")
        try:
            n, max_tokens = int(body.get("n") or 1), int(body.get("max_tokens") or 16)
            temperature, top_p = float(body.get("temperature", 1.0)), float(body.get("top_p", 1.0))
            seed = None if body.get("seed") is None else int(body["seed"])
            stop = body.get("stop") or []
            stop = [stop] if isinstance(stop, str) else list(stop)
            if not chat and (body.get("echo") or (body.get("logprobs") and self.mode == "hf")):
                return self._echo(body)
            prompt = self._prompt(chat, body)
        except (TypeError, ValueError, KeyError) as err:
            return 400, _error(f"bad request body: {err}")
        if self.reject_n and n != 1:
            return 500, _error("Only one completion choice is allowed", "server_error")
        n_out = 1 if self.ignore_n else n
        if self.mode == "echo":
            outs, prompt_tokens = echo_generate(prompt, n_out, temperature, seed, max_tokens)
        else:
            outs, prompt_tokens = self.generator(prompt, n_out, temperature, seed, max_tokens, top_p, chat)
        choices, completion_tokens = [], 0
        for i, (text, reason, used) in enumerate(outs):
            completion_tokens += used   # what was generated, also past a stop string
            cut = min([text.find(s) for s in stop if s in text], default=-1)
            text, reason = (text[:cut], "stop") if cut >= 0 else (text, reason)
            choice = {"index": i, "finish_reason": reason, "logprobs": None}
            choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
            choices.append(choice)
        kind = "chat.completion" if chat else "text_completion"
        return 200, {"id": f"cmpl-{len(self.log)}", "object": kind,
                     "created": int(time.time()), "model": self.model_name, "choices": choices,
                     "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                               "total_tokens": prompt_tokens + completion_tokens}}

    def _echo(self, body: dict) -> tuple[int, dict]:
        """echo=True with logprobs: the prompt (token ids or a string) scored, as for loglikelihood."""
        prompt = body["prompt"]
        prompt = prompt[0] if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str) else prompt
        ids = isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt)
        if ids and self.text_prompts_only:  # as llama-cpp-python's server answers a prompt of token ids
            return 500, _error("2 validation errors:\n  {'type': 'string_type', 'loc': ('body', 'prompt', 'str'), "
                               f"'msg': 'Input should be a valid string', 'input': {prompt[:3]}}}\n  {{'type': "
                               "'string_type', 'loc': ('body', 'prompt', 'list[str]', 0), 'msg': 'Input should be a "
                               f"valid string', 'input': {prompt[0]}}}", "internal_server_error")
        if self.mode != "hf" or not body.get("logprobs") or not (ids or isinstance(prompt, str)):
            return 400, _error("echo needs --mode hf, logprobs >= 1 and a prompt of token ids or a string")
        lp, text = self.generator.prompt_logprobs(prompt, int(body["logprobs"]),
                                                  shifted=self.shifted_echo and isinstance(prompt, str))
        if not body.get("echo"):  # one token after the prompt: the greedy one, or one forced by a logit bias
            forced = list(body.get("logit_bias") or {}) if body.get("logit_bias_type") == "tokens" else []
            alts = self.generator.next_alternatives(prompt, int(body["logprobs"]), forced[:1])
            token = forced[0] if forced else lp["tokens"][-1]
            lp = {"tokens": [token], "token_logprobs": [alts[token]], "top_logprobs": [alts],
                  "text_offset": [len(prompt)] if isinstance(prompt, str) else None}
            text = token
        n = len(lp["tokens"]) - 1
        choice = {"index": 0, "finish_reason": "length", "text": text, "logprobs": lp}
        return 200, {"id": f"cmpl-{len(self.log)}", "object": "text_completion", "created": int(time.time()),
                     "model": self.model_name, "choices": [choice],
                     "usage": {"prompt_tokens": n, "completion_tokens": 1, "total_tokens": n + 1}}

    def _prompt(self, chat: bool, body: dict) -> str:
        if not chat:
            prompt = body["prompt"]
            prompt = prompt[0] if isinstance(prompt, list) and len(prompt) == 1 else prompt
            if not isinstance(prompt, str):
                raise ValueError("prompt must be a string")
            return prompt
        messages = [{"role": m["role"], "content": m["content"]} for m in body["messages"]]
        cont = bool(body.get("continue_final_message"))
        if self.mode == "echo":
            return json.dumps({"messages": messages, "continue": cont}, sort_keys=True)
        self.generator.load()
        return self.generator.tok.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=not cont, continue_final_message=cont,
            **(body.get("chat_template_kwargs") or {}))


def _error(message: str, kind: str = "invalid_request_error") -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


class _Handler(BaseHTTPRequestHandler):
    server_version = "medeval-openai-test/1"

    def log_message(self, *args):  # requests are recorded in app.log instead
        pass

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        app = self.server.app
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [
                {"id": app.model_name, "object": "model", "created": 0, "owned_by": "medeval-test"}]})
        elif self.path == "/health":
            self._send(200, {"status": "ok"})
        else:
            self._send(404, _error(f"no route GET {self.path}", "NotFoundError"))

    def do_POST(self):
        app = self.server.app
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        entry = app.record({"path": self.path, "body": None, "fault": None, "status": None,
                            "retry_count": int(self.headers.get("x-stainless-retry-count") or 0)})
        if self.path not in ("/v1/chat/completions", "/v1/completions"):
            entry["status"] = 404
            return self._send(404, _error(f"no route POST {self.path}", "NotFoundError"))
        if app.api_key is not None and self.headers.get("Authorization") != f"Bearer {app.api_key}":
            entry["status"] = 401
            return self._send(401, _error("invalid API key", "authentication_error"))
        try:
            entry["body"] = json.loads(raw)
        except ValueError:
            entry["status"] = 400
            return self._send(400, _error("request body is not JSON"))
        fault = entry["fault"] = app.next_fault()
        if fault == "drop":
            entry["status"] = "dropped"
            self.close_connection = True
            return
        if fault in ("429", "500", "503"):
            entry["status"] = int(fault)
            wait = {"retry-after-ms": str(int(app.retry_after_s * 1000)),
                    "Retry-After": str(math.ceil(app.retry_after_s))} if fault == "429" else {}
            return self._send(int(fault), _error(f"injected fault {fault}", "server_error"), wait)
        if fault == "garbage":
            entry["status"] = "garbage"
            page = b"<html><body>502 Bad Gateway (proxy)</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            return self.wfile.write(page)
        if fault == "delay":
            entry["status"] = "delayed"
            if app._stopping.wait(app.delay_s):
                return
        status, payload = app.complete(self.path, entry["body"])
        if fault in ("empty", "surrogate") and status == 200:
            entry["status"] = fault
            for choice in payload.get("choices", []):
                part = choice.get("message") or choice
                key = "content" if "message" in choice else "text"
                part[key] = "" if fault == "empty" else (part.get(key) or "") + SURROGATE
        if fault is None:
            entry["status"] = status
        try:
            self._send(status, payload)
        except OSError:  # the client gave up (delay fault): nothing to deliver
            pass


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m medeval.testing.openai_server",
                                description="OpenAI-protocol test server (echo mode is FAKE).")
    p.add_argument("--mode", choices=["echo", "hf"], default="echo")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    p.add_argument("--model-name", help=f"name to serve (default {ECHO_MODEL} / {HF_MODEL})")
    p.add_argument("--fault", action="append", default=[], choices=FAULT_KINDS + ("ok",),
                   help="schedule: the i-th request gets the i-th --fault (repeatable)")
    p.add_argument("--fault-rate", action="append", default=[], metavar="KIND=P",
                   help="after the schedule, inject KIND with probability P (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fault draws")
    p.add_argument("--ignore-n", action="store_true", help="one choice whatever n is")
    p.add_argument("--reject-n", action="store_true", help="HTTP 500 for n > 1 (llama.cpp chat)")
    p.add_argument("--text-prompts-only", action="store_true",
                   help="HTTP 500 validation error for a prompt of token ids (llama-cpp-python's server)")
    p.add_argument("--delay-s", type=float, default=2.0)
    p.add_argument("--retry-after-s", type=float, default=0.01)
    args = p.parse_args(argv)
    try:
        rates = {k: float(v) for k, v in (r.split("=", 1) for r in args.fault_rate)}
    except ValueError:
        p.error("--fault-rate takes KIND=PROBABILITY, e.g. --fault-rate 429=0.1")
    try:
        server = OpenAITestServer(args.mode, model_name=args.model_name, faults=args.fault,
                                  fault_rates=rates, seed=args.seed,
                                  ignore_n=args.ignore_n, reject_n=args.reject_n,
                                  text_prompts_only=args.text_prompts_only,
                                  delay_s=args.delay_s, retry_after_s=args.retry_after_s,
                                  host=args.host, port=args.port).start()
    except (ValueError, OSError) as err:
        p.error(str(err))
    print(f"serving {server.model_name} ({args.mode}) at {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
