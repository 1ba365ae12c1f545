#!/usr/bin/env python3
# llem's PyTorch inference process. The measuring child (Node) starts it inside its own process
# group and drives it over stdin/stdout, one JSON object per line, protocol version 1:
#
#   child -> here: load, generate, sync, shutdown           (each with an integer `id`)
#   here -> child: hello (once, first), loaded, request (one per finished request), progress,
#                  generated, synced, error, bye
#
# This process never measures energy: it loads, generates and timestamps tokens. Timestamps are
# time.monotonic_ns() (CLOCK_MONOTONIC on Linux, the clock behind Node's performance.now()), so
# the child can place them on its own time axis exactly; `hello` carries one sample to check that.
#
# The real stdout is kept for the protocol only: fd 1 is pointed at stderr right away, so a stray
# print() from a library can never corrupt the protocol stream. stderr ends up in the run's log.
import json
import os
import sys
import threading
import time
import traceback

PROTOCOL_VERSION = 1

_proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr
_out_lock = threading.Lock()


def send(msg):
    msg = dict(msg)
    msg["v"] = PROTOCOL_VERSION
    line = json.dumps(msg, separators=(",", ":"), allow_nan=False)
    with _out_lock:
        _proto_out.write(line + "\n")
        _proto_out.flush()


def log(text):
    sys.stderr.write("[llem-pytorch] " + text + "\n")
    sys.stderr.flush()


class LlemError(Exception):
    """An error with an llem error type (PreflightError, BackendError, OutOfMemory)."""

    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type


def preflight_error(message):
    return LlemError("PreflightError", message)


def backend_error(message):
    return LlemError("BackendError", message)


# ---------------------------------------------------------------------------------------------
# Environment probe (hello). Every import is guarded so a broken environment still says hello.

def _version_of(module_name):
    try:
        module = __import__(module_name)
        return getattr(module, "__version__", "unknown"), None
    except Exception as exc:  # ImportError, but also broken installs raising anything else
        return None, "%s: %s" % (type(exc).__name__, exc)


torch = None


def probe_environment():
    global torch
    info = {
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "pid": os.getpid(),
        "python": "%d.%d.%d" % sys.version_info[:3],
        "python_executable": sys.executable,
        "torch": None,
        "torch_error": None,
        "transformers": None,
        "transformers_error": None,
        "accelerate": None,
        "bitsandbytes": None,
        "flash_attn": None,
        "cuda_available": False,
        "cuda_version": None,
        "cuda_device_count": 0,
        "cuda_devices": [],
    }
    try:
        import torch as _torch

        torch = _torch
        info["torch"] = torch.__version__
    except Exception as exc:
        info["torch_error"] = "%s: %s" % (type(exc).__name__, exc)
    if torch is not None:
        try:
            info["cuda_version"] = torch.version.cuda
            info["cuda_available"] = bool(torch.cuda.is_available())
            if info["cuda_available"]:
                info["cuda_device_count"] = torch.cuda.device_count()
                info["cuda_devices"] = [
                    torch.cuda.get_device_name(i) for i in range(info["cuda_device_count"])
                ]
        except Exception as exc:
            log("CUDA probe failed: %s: %s" % (type(exc).__name__, exc))
        info["transformers"], info["transformers_error"] = _version_of("transformers")
        info["accelerate"], _ = _version_of("accelerate")
        info["bitsandbytes"], _ = _version_of("bitsandbytes")
        info["flash_attn"], _ = _version_of("flash_attn")
    info["monotonic_ns"] = time.monotonic_ns()
    return info


# ---------------------------------------------------------------------------------------------
# builtin:tiny-torch — a small decoder-only transformer defined here, random weights from a seed,
# byte-level tokenizer. Exists so the backend runs (and is tested) on any machine with torch.

TINY_DEFAULTS = {"hidden": 64, "layers": 2, "heads": 4, "max_positions": 4096, "weights_seed": 0, "eos_bias": 0.0}
TINY_BOS, TINY_EOS, TINY_PAD, TINY_VOCAB = 256, 257, 258, 259


def parse_tiny_options(model):
    """`builtin:tiny-torch` or `builtin:tiny-torch@hidden=1024,layers=24,heads=16`."""
    name, _, rest = model.partition("@")
    if name != "builtin:tiny-torch":
        raise preflight_error(
            'unknown builtin model "%s" (the pytorch backend has builtin:tiny-torch)' % model
        )
    options = dict(TINY_DEFAULTS)
    if rest:
        for part in rest.split(","):
            key, eq, value = part.partition("=")
            if not eq or key not in TINY_DEFAULTS:
                raise preflight_error(
                    'bad builtin:tiny-torch option "%s" in model "%s" (known: %s)'
                    % (part, model, ", ".join(sorted(TINY_DEFAULTS)))
                )
            try:
                options[key] = float(value) if key == "eos_bias" else int(value)
            except ValueError:
                raise preflight_error('builtin:tiny-torch option %s="%s" is not a number' % (key, value))
    if options["hidden"] % options["heads"] != 0:
        raise preflight_error(
            "builtin:tiny-torch hidden=%d is not a multiple of heads=%d" % (options["hidden"], options["heads"])
        )
    return options


class ByteTokenizer:
    """UTF-8 bytes are tokens 0..255; BOS, EOS and PAD follow. No chat template."""

    bos_token_id, eos_token_id, pad_token_id = TINY_BOS, TINY_EOS, TINY_PAD

    def encode(self, text):
        return [TINY_BOS] + list(text.encode("utf-8"))

    def decode(self, ids):
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


def build_tiny_model(options):
    nn = torch.nn
    F = torch.nn.functional

    class Block(nn.Module):
        def __init__(self, hidden, heads, use_sdpa):
            super().__init__()
            self.heads = heads
            self.use_sdpa = use_sdpa
            self.ln1 = nn.LayerNorm(hidden)
            self.qkv = nn.Linear(hidden, 3 * hidden)
            self.proj = nn.Linear(hidden, hidden)
            self.ln2 = nn.LayerNorm(hidden)
            self.fc1 = nn.Linear(hidden, 4 * hidden)
            self.fc2 = nn.Linear(4 * hidden, hidden)

        def forward(self, x, bias, past):
            b, t, h = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(h, dim=2)
            shape = (b, t, self.heads, h // self.heads)
            q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
            if past is not None:
                k = torch.cat([past[0], k], dim=2)
                v = torch.cat([past[1], v], dim=2)
            if self.use_sdpa:
                att = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            else:
                # Scale q (small) rather than the scores, add the mask in place, softmax straight
                # into fp32: two T×T temporaries per layer instead of five (prefill of long
                # byte-level prompts is where the toy spends its time on a CPU).
                scores = (q * (1.0 / (q.shape[-1] ** 0.5))) @ k.transpose(-2, -1)
                scores.add_(bias)
                att = torch.softmax(scores, dim=-1, dtype=torch.float32).to(v.dtype) @ v
            x = x + self.proj(att.transpose(1, 2).reshape(b, t, h))
            x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
            return x, (k, v)

    class TinyDecoder(nn.Module):
        def __init__(self, hidden, layers, heads, max_positions, eos_bias, use_sdpa):
            super().__init__()
            self.max_positions = max_positions
            self.tok = nn.Embedding(TINY_VOCAB, hidden)
            self.pos = nn.Embedding(max_positions, hidden)
            self.blocks = nn.ModuleList([Block(hidden, heads, use_sdpa) for _ in range(layers)])
            self.ln = nn.LayerNorm(hidden)
            self.head = nn.Linear(hidden, TINY_VOCAB)
            self.eos_bias = eos_bias

        def forward(self, ids, positions, key_mask, past):
            """ids/positions (B, T); key_mask (B, past+T) 1 = real token; returns last logits, cache."""
            x = self.tok(ids) + self.pos(positions)
            t, total = ids.shape[1], key_mask.shape[1]
            # Causal over the new positions, and padded keys never attended.
            causal = torch.ones(t, total, dtype=torch.bool, device=ids.device).tril(total - t)
            allowed = causal[None, None, :, :] & key_mask[:, None, None, :].bool()
            # A padding query may see itself, so no row is fully masked (a NaN there would reach
            # real rows through the cache in fp16); real queries never see padding keys.
            diagonal = torch.zeros(t, total, dtype=torch.bool, device=ids.device)
            diagonal[:, total - t:] = torch.eye(t, dtype=torch.bool, device=ids.device)
            allowed = allowed | diagonal[None, None, :, :]
            bias = torch.zeros(allowed.shape, dtype=x.dtype, device=ids.device)
            bias = bias.masked_fill(~allowed, torch.finfo(x.dtype).min)
            cache = []
            for i, block in enumerate(self.blocks):
                x, kv = block(x, bias, None if past is None else past[i])
                cache.append(kv)
            logits = self.head(self.ln(x[:, -1, :])).float()
            if self.eos_bias:
                logits[:, TINY_EOS] += self.eos_bias
            return logits, cache

    generator = torch.Generator().manual_seed(options["weights_seed"])
    with torch.no_grad():
        model = TinyDecoder(
            options["hidden"], options["layers"], options["heads"], options["max_positions"],
            options["eos_bias"], options.get("use_sdpa", False),
        )
        for name, p in model.named_parameters():
            if name.endswith("bias") and p.dim() == 1 and "ln" not in name:
                p.zero_()
            elif p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Model state shared by the commands.

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class Loaded:
    def __init__(self):
        self.kind = None  # "builtin" | "transformers"
        self.model = None
        self.tokenizer = None
        self.device = None
        self.devices = []  # CUDA device indices in use, for sync and peak memory
        self.chat_template = False


STATE = Loaded()


def resolve_device(device_map):
    if device_map in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device_map.startswith("cuda") and not torch.cuda.is_available():
        raise preflight_error(
            'pytorch.device_map is "%s" but torch %s sees no CUDA device' % (device_map, torch.__version__)
        )
    return device_map


def check_dtype_runs(dtype, device, precision):
    """Fail at load, with the reason, when this torch build cannot compute in the dtype (fp16 on CPU)."""
    try:
        a = torch.ones(4, 4, dtype=dtype, device=device)
        torch.nn.functional.linear(a, a)
    except Exception as exc:
        raise preflight_error(
            "precision %s on %s is not supported by torch %s: %s" % (precision, device, torch.__version__, exc)
        )


def apply_common_params(params):
    threads = params.get("num_threads")
    if threads:
        torch.set_num_threads(int(threads))


def load_builtin(msg):
    params = msg.get("params") or {}
    precision = msg["precision"]
    options = parse_tiny_options(msg["model"])
    attn = params.get("attn_implementation") or "eager"
    if attn == "sdpa":
        if not hasattr(torch.nn.functional, "scaled_dot_product_attention"):
            raise preflight_error(
                "pytorch.attn_implementation sdpa needs torch >= 2.0; this Python has torch %s" % torch.__version__
            )
        options["use_sdpa"] = True
    elif attn != "eager":
        raise preflight_error("builtin:tiny-torch supports attn_implementation eager or sdpa, not %s" % attn)
    if precision == "auto":
        precision = "fp32"
    if precision not in DTYPES:
        raise preflight_error("builtin:tiny-torch runs in fp32, fp16 or bf16, not %s" % precision)
    device = resolve_device(params.get("device_map"))
    dtype = getattr(torch, DTYPES[precision])
    check_dtype_runs(dtype, device, precision)
    model = build_tiny_model(options).to(device=device, dtype=dtype)
    if params.get("torch_compile"):
        model = compile_model(model)
    STATE.kind, STATE.model, STATE.tokenizer, STATE.device = "builtin", model, ByteTokenizer(), device
    STATE.devices = cuda_indices_of([device])
    STATE.chat_template = False
    n_params = sum(p.numel() for p in model.parameters())
    return {"model_path": None, "builtin": True, "device": device, "dtype": str(dtype).replace("torch.", ""),
            "parameters": n_params, "chat_template": False}


def compile_model(model):
    if not hasattr(torch, "compile"):
        raise preflight_error("pytorch.torch_compile needs torch >= 2.0; this Python has torch %s" % torch.__version__)
    return torch.compile(model)


def cuda_indices_of(devices):
    out = set()
    for d in devices:
        d = str(d)
        if d.startswith("cuda"):
            out.add(int(d.split(":")[1]) if ":" in d else torch.cuda.current_device())
        elif d.isdigit():
            out.add(int(d))
    return sorted(out)


def hf_cache_dir():
    try:
        from huggingface_hub import constants

        return constants.HF_HUB_CACHE
    except Exception:
        home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
        return os.path.join(home, "hub")


def load_transformers(msg):
    params = msg.get("params") or {}
    precision = msg["precision"]
    model_id = msg["model"]
    try:
        import transformers
    except Exception as exc:
        raise preflight_error(
            'model "%s" needs transformers, which %s cannot import (%s: %s); install it '
            "(pip install transformers) or use model builtin:tiny-torch"
            % (model_id, sys.executable, type(exc).__name__, exc)
        )
    allow_download = os.environ.get("LLEM_ALLOW_DOWNLOAD") == "1"
    looks_like_path = model_id.startswith(("/", "./", "../", "~")) or os.path.isdir(os.path.expanduser(model_id))
    if looks_like_path:
        path = os.path.abspath(os.path.expanduser(model_id))
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise preflight_error("model path %s has no config.json (tried %s)" % (model_id, os.path.join(path, "config.json")))
        source = path
    else:
        source = model_id
    try:
        config = transformers.AutoConfig.from_pretrained(source, local_files_only=not allow_download)
    except Exception as exc:
        if looks_like_path:
            raise preflight_error("cannot read the model config at %s: %s" % (source, exc))
        raise preflight_error(
            'model "%s" is not in the Hugging Face cache %s%s (%s)'
            % (model_id, hf_cache_dir(),
               "" if allow_download else " and downloads are off (set LLEM_ALLOW_DOWNLOAD=1 to allow them)",
               str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        )

    kwargs = {"local_files_only": not allow_download}
    if precision == "auto":
        kwargs["torch_dtype"] = "auto"
    elif precision in DTYPES:
        kwargs["torch_dtype"] = getattr(torch, DTYPES[precision])
    elif precision in ("int8", "int4"):
        try:
            import bitsandbytes  # noqa: F401
        except Exception as exc:
            raise preflight_error("precision %s needs bitsandbytes, which is not importable (%s)" % (precision, exc))
        if not torch.cuda.is_available():
            raise preflight_error("precision %s (bitsandbytes) needs a CUDA device; torch sees none" % precision)
        if precision == "int8":
            kwargs["quantization_config"] = transformers.BitsAndBytesConfig(load_in_8bit=True)
        else:
            kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16
            )
    else:
        raise preflight_error("the pytorch backend does not know precision %s" % precision)

    attn = params.get("attn_implementation")
    if attn:
        if attn == "flash_attention_2":
            version, err = _version_of("flash_attn")
            if version is None:
                raise preflight_error("pytorch.attn_implementation flash_attention_2 needs flash_attn (%s)" % err)
        kwargs["attn_implementation"] = attn

    device_map = params.get("device_map") or "auto"
    has_accelerate = _version_of("accelerate")[0] is not None
    move_to = None
    if device_map == "cpu":
        move_to = "cpu"
    elif device_map in ("auto", "balanced", "balanced_low_0", "sequential"):
        if not torch.cuda.is_available():
            move_to = "cpu"
        elif has_accelerate:
            kwargs["device_map"] = device_map
        elif device_map == "auto":
            move_to = "cuda"
        else:
            raise preflight_error("pytorch.device_map %s needs accelerate, which is not installed" % device_map)
    else:
        resolve_device(device_map)
        if has_accelerate:
            kwargs["device_map"] = {"": device_map}
        else:
            move_to = device_map
    if "quantization_config" in kwargs and "device_map" not in kwargs:
        kwargs["device_map"] = {"": move_to or "cuda"}
        move_to = None

    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=not allow_download)
    except Exception as exc:
        raise preflight_error("cannot load the tokenizer of %s: %s" % (model_id, exc))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except LlemError:
        raise
    except Exception as exc:
        if is_oom(exc):
            raise LlemError("OutOfMemory", "out of memory loading %s: %s" % (model_id, exc))
        raise backend_error("loading %s failed: %s: %s" % (model_id, type(exc).__name__, exc))
    if move_to is not None:
        model = model.to(move_to)
    model.eval()
    if params.get("torch_compile"):
        model.forward = compile_model(model.forward)
    apply_generation_defaults(model, tokenizer)
    devices = set()
    hf_map = getattr(model, "hf_device_map", None)
    if hf_map:
        devices.update(hf_map.values())
    else:
        devices.add(next(model.parameters()).device)
    STATE.kind, STATE.model, STATE.tokenizer = "transformers", model, tokenizer
    STATE.device = str(next(model.parameters()).device)
    STATE.devices = cuda_indices_of(devices)
    STATE.chat_template = bool(getattr(tokenizer, "chat_template", None))
    return {
        "model_path": source if looks_like_path else getattr(config, "_name_or_path", None) or model_id,
        "builtin": False,
        "device": STATE.device,
        "dtype": str(getattr(model, "dtype", "")).replace("torch.", ""),
        "parameters": sum(p.numel() for p in model.parameters()),
        "chat_template": STATE.chat_template,
    }


def apply_generation_defaults(model, tokenizer):
    gc = getattr(model, "generation_config", None)
    if gc is not None and gc.pad_token_id is None:
        gc.pad_token_id = tokenizer.pad_token_id


def is_oom(exc):
    return "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"


def cmd_load(msg):
    if torch is None:
        raise preflight_error("torch is not importable in %s" % sys.executable)
    params = msg.get("params") or {}
    apply_common_params(params)
    torch.manual_seed(int(msg.get("seed", 0)))
    started = time.monotonic()
    if msg["model"].startswith("builtin:"):
        info = load_builtin(msg)
    else:
        info = load_transformers(msg)
    info["load_s"] = time.monotonic() - started
    info["num_threads"] = torch.get_num_threads()
    return dict(type="loaded", **info)


# ---------------------------------------------------------------------------------------------
# Generation. Static batches: each batch of prompts is left-padded, generated together, and each
# row stops counting at its own EOS. Per row: input tokens without padding, output tokens up to
# (not including) EOS, the time each token reached the host (the .tolist()/.cpu() copy waits for
# the device, so the time is when the token exists, as a streamer would see it).

class ProgressTicker:
    """Emits a `progress` line at most once a second, so the child can tell a slow run from a hang."""

    def __init__(self, cmd_id):
        self.cmd_id = cmd_id
        self.tokens = 0
        self.last_ns = time.monotonic_ns()

    def tick(self, new_tokens):
        self.tokens += new_tokens
        now = time.monotonic_ns()
        if now - self.last_ns >= 1_000_000_000:
            self.last_ns = now
            send({"type": "progress", "id": self.cmd_id, "tokens": self.tokens})


class RowTrace:
    def __init__(self, prompt_index, prompt_sha256, input_tokens, start_ns):
        self.prompt_index = prompt_index
        self.prompt_sha256 = prompt_sha256
        self.input_tokens = input_tokens
        self.start_ns = start_ns
        self.token_ids = []
        self.token_ns = []
        self.end_ns = None
        self.finished = False

    def observe(self, token_id, now_ns, eos_ids):
        if self.finished:
            return 0
        if token_id in eos_ids:
            self.finished = True
            self.end_ns = now_ns
            return 0
        self.token_ids.append(token_id)
        self.token_ns.append(now_ns)
        return 1

    def record(self, batch_end_ns):
        end = self.end_ns if self.end_ns is not None else (self.token_ns[-1] if self.token_ns else batch_end_ns)
        return {
            "prompt_index": self.prompt_index,
            "prompt_sha256": self.prompt_sha256,
            "input_tokens": self.input_tokens,
            "output_tokens": len(self.token_ids),
            "output_token_ids": self.token_ids,
            "start_ns": self.start_ns,
            "token_ns": self.token_ns,
            "end_ns": end,
            "hit_eos": self.end_ns is not None,
        }


def prompt_text_for(prompt):
    """The text fed to the tokenizer: the chat template over `messages` when the tokenizer has one."""
    messages = prompt.get("messages") or []
    if STATE.chat_template and messages:
        return STATE.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True), True
    return prompt["text"], False


def sha256_of(text):
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def generate_builtin(batch, max_new_tokens, greedy, sampler, ticker):
    model, tok = STATE.model, STATE.tokenizer
    device = STATE.device
    start_ns = time.monotonic_ns()
    encoded = [tok.encode(p["text"]) for p in batch]
    traces = [RowTrace(p["prompt_index"], sha256_of(p["text"]), len(ids), start_ns) for p, ids in zip(batch, encoded)]
    longest = max(len(ids) for ids in encoded)
    if longest + max_new_tokens > model.max_positions:
        raise backend_error(
            "prompt %d has %d tokens; with max_new_tokens %d that exceeds builtin:tiny-torch's %d positions"
            % (batch[[len(e) for e in encoded].index(longest)]["prompt_index"], longest, max_new_tokens, model.max_positions)
        )
    ids = torch.tensor([[TINY_PAD] * (longest - len(e)) + e for e in encoded], device=device)
    mask = torch.tensor([[0] * (longest - len(e)) + [1] * len(e) for e in encoded], device=device)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    eos = {TINY_EOS}
    past = None
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits, past = model(ids, positions, mask, past)
            if greedy:
                nxt = logits.argmax(dim=-1)
            else:
                probs = torch.softmax(logits, dim=-1).cpu()
                nxt = torch.multinomial(probs, 1, generator=sampler).squeeze(1).to(device)
            host = nxt.tolist()
            now = time.monotonic_ns()
            ticker.tick(sum(trace.observe(t, now, eos) for trace, t in zip(traces, host)))
            if all(trace.finished for trace in traces):
                break
            ids = nxt[:, None]
            positions = positions[:, -1:] + 1
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    return traces


def generate_transformers(batch, max_new_tokens, greedy, seed, ticker):
    from transformers.generation.streamers import BaseStreamer

    model, tok = STATE.model, STATE.tokenizer
    start_ns = time.monotonic_ns()
    texts, templated = zip(*(prompt_text_for(p) for p in batch))
    # A chat template already carries the special tokens it wants.
    enc = tok(list(texts), return_tensors="pt", padding=True, add_special_tokens=not any(templated))
    first_device = next(model.parameters()).device
    enc = {k: v.to(first_device) for k, v in enc.items()}
    lengths = enc["attention_mask"].sum(dim=1).tolist()
    traces = [RowTrace(p["prompt_index"], sha256_of(p["text"]), int(n), start_ns) for p, n in zip(batch, lengths)]
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else []))
    if tok.eos_token_id is not None:
        eos_ids.add(tok.eos_token_id)

    class TimingStreamer(BaseStreamer):
        # generate() calls put() first with the prompt ids, then once per step with the new tokens.
        def __init__(self):
            self.seen_prompt = False

        def put(self, value):
            if not self.seen_prompt:
                self.seen_prompt = True
                return
            host = value.reshape(-1).tolist()
            now = time.monotonic_ns()
            ticker.tick(sum(trace.observe(t, now, eos_ids) for trace, t in zip(traces, host)))

        def end(self):
            pass

    kwargs = dict(max_new_tokens=max_new_tokens, streamer=TimingStreamer(), pad_token_id=tok.pad_token_id)
    if greedy:
        kwargs.update(do_sample=False, num_beams=1)
    else:
        torch.manual_seed(seed)
        kwargs.update(do_sample=True)
    with torch.no_grad():
        model.generate(**enc, **kwargs)
    return traces


def cmd_generate(msg):
    if STATE.model is None:
        raise backend_error("generate before load")
    prompts = msg["prompts"]
    batch_size = max(1, int(msg.get("batch_size") or 1))
    max_new_tokens = int(msg["max_new_tokens"])
    greedy = bool(msg.get("greedy", True))
    seed = int(msg.get("seed", 0))
    sampler = torch.Generator().manual_seed(seed)
    ticker = ProgressTicker(msg["id"])
    done = 0
    for first in range(0, len(prompts), batch_size):
        batch = prompts[first:first + batch_size]
        try:
            if STATE.kind == "builtin":
                traces = generate_builtin(batch, max_new_tokens, greedy, sampler, ticker)
            else:
                traces = generate_transformers(batch, max_new_tokens, greedy, seed, ticker)
        except LlemError:
            raise
        except Exception as exc:
            if is_oom(exc):
                raise LlemError("OutOfMemory", "out of memory generating batch of %d: %s" % (len(batch), exc))
            raise
        batch_end = time.monotonic_ns()
        for trace in traces:
            send({"type": "request", "id": msg["id"], "record": trace.record(batch_end)})
            done += 1
    return {"type": "generated", "requests": done}


def cmd_sync(msg):
    """Window edge: wait for the device, and reset (start) or read (end) the peak-memory counter."""
    edge = msg["edge"]
    peak = None
    if torch is not None and STATE.devices and torch.cuda.is_available():
        for d in STATE.devices:
            torch.cuda.synchronize(d)
        if edge == "start":
            for d in STATE.devices:
                torch.cuda.reset_peak_memory_stats(d)
        else:
            peak = sum(int(torch.cuda.max_memory_allocated(d)) for d in STATE.devices)
    return {"type": "synced", "edge": edge, "memory_peak_bytes": peak, "t_ns": time.monotonic_ns()}


COMMANDS = {"load": cmd_load, "generate": cmd_generate, "sync": cmd_sync}


def watch_parent():
    """Exit when the measuring child dies without killing us (reparented): never outlive a run."""
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            log("parent %d is gone; exiting" % parent)
            os._exit(3)


def main():
    threading.Thread(target=watch_parent, daemon=True).start()
    send(probe_environment())
    for raw in sys.stdin:
        raw = raw.strip()
        if not raw:
            continue
        cmd_id = None
        try:
            try:
                msg = json.loads(raw)
            except ValueError as exc:
                raise backend_error("unparseable command line %r: %s" % (raw[:200], exc))
            if not isinstance(msg, dict) or msg.get("v") != PROTOCOL_VERSION:
                raise backend_error("command %r is not a protocol v%d object" % (raw[:200], PROTOCOL_VERSION))
            cmd_id = msg.get("id")
            kind = msg.get("type")
            if kind == "shutdown":
                send({"type": "bye"})
                return
            handler = COMMANDS.get(kind)
            if handler is None:
                raise backend_error("unknown command type %r" % kind)
            reply = handler(msg)
            reply["id"] = cmd_id
            send(reply)
        except LlemError as exc:
            send({"type": "error", "id": cmd_id, "error_type": exc.error_type, "message": str(exc)})
        except Exception as exc:
            tb = traceback.format_exc()
            log(tb)
            error_type = "OutOfMemory" if is_oom(exc) else "BackendError"
            send({"type": "error", "id": cmd_id, "error_type": error_type,
                  "message": "%s: %s" % (type(exc).__name__, exc), "traceback": tb[-4000:]})


if __name__ == "__main__":
    main()
