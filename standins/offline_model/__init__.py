"""The offline model: a stand-in for Anthropic's Messages API, with fixed rules.

With no API key, Watchword talks to this server through the official
``anthropic`` SDK (``base_url=...``) exactly as it would to Anthropic:
``POST /v1/messages``, plain JSON or server-sent events, Anthropic's error
shapes and status codes, prompt-cache accounting in ``usage``. What it answers
follows the rules below, so a reader can predict every answer.

Which rules apply
-----------------
* ``record_evaluation`` offered → the evaluation rule;
* ``propose_alert``, ``ask_clarifying_questions`` or ``refuse_alert`` offered →
  the creation rule, choosing among the tools offered;
* no tool, or ``tool_choice`` ``{"type": "none"}`` → a short text answer.

``tool_choice`` ``{"type": "tool", "name": N}`` forces N: a tool with a rule
gets its rule's input; any other tool gets the simplest input its schema
allows (each required property: ``""``, ``0``, ``false``, ``[]``, ``{}`` or
the first enum value). ``{"type": "any"}`` makes the model call one of the
offered tools (the first one offered when no rule applies).

Phrases are the substrings in double quotes, ``"..."`` or ``“...”``.

Creation
--------
The request is the text inside ``<request>`` … ``</request>`` of the first user
turn (the whole turn when there is none), HTML-unescaped; the answers are the
text of every later user turn (text blocks and ``tool_result`` contents, but
not results marked ``is_error``: a repair request after an invalid call gets
the same deterministic answer again). Keywords are looked for,
case-insensitively, outside the quoted phrases.

1. ``refuse_alert`` (if offered) when the request names data Watchword does not
   see: ``UNSEEN_SOURCES`` in ``creation.py`` (stock or share prices, weather,
   LinkedIn, Twitter, Slack, WhatsApp).
2. ``refuse_alert`` (if offered) when it is not a condition at all: no quoted
   phrase, no answer yet, and none of ``CONDITION_WORDS`` ("when", "if",
   "mentions", "alert", "notify", "count", ...).
3. ``ask_clarifying_questions`` (if offered) when there is no quoted phrase and
   no answer yet: which words should trigger it, and, when no data type is
   named, which data it should watch.
4. Otherwise ``propose_alert``:

   * phrases: those quoted in the answers if any, else those of the request;
   * ``name``: the request, whitespace collapsed, at most 80 characters;
   * ``description``: the request, then the answers (``Clarified: ...``);
   * ``data_types``: "call", "transcript", "meeting" → ``call_transcript``;
     "email", "mail" → ``email``; "salesforce", "opportunit(y/ies)",
     "account", "case", "crm" → ``salesforce`` (at the start of a word);
     none named → all three;
   * ``instructions``: ``Fire when the communication contains any of these
     phrases (case-insensitive): "a", "b".`` (each phrase verbatim), or, with
     no phrase, ``Fire when the communication matches this request: ...``;
   * ``state_schema``: one integer field ``match_count`` (minimum 0) when the
     request speaks of counting ("count...", "how many", "times", "every
     time"), else no field; ``initial_state`` to match;
   * ``window_seconds``: 0 for "immediately", "right away" or "at once", else
     null.

Evaluation
----------
The communication is the text inside ``<communication>`` … ``</communication>``
and the alert the JSON inside ``<alert>`` … ``</alert>`` (keys ``alert_id``,
``instructions``, ``current_state``, ``state_schema``), both HTML-unescaped.
The phrases are those quoted in ``instructions``.

* ``fired``: the communication contains at least one phrase, ignoring case;
* ``reason``: names the phrases found, or says that none of them was found;
* ``evidence``: up to 3 verbatim snippets of at most 200 characters around
  the first non-overlapping matches, in the order they occur;
* ``new_state``: ``current_state``, with the schema's first integer field
  raised by 1 (not past its ``maximum``) when the alert fires.

Anything else gets a text answer saying that the offline model only answers
Watchword's evaluation and creation requests.

Replies
-------
Output tokens are ``ceil(chars / 4)`` of the tool input's JSON (or the text).
A reply longer than ``max_tokens`` stops with ``stop_reason`` ``max_tokens``:
a tool call with input ``{}``, or the text cut to ``4 * max_tokens``
characters. Otherwise ``stop_reason`` is ``tool_use`` or ``end_turn``.

The rest is described where it is built: the request's path, faults and
latency in ``server.py``; scripted responses in ``script.py``; the control
endpoints in ``control.py``; the prompt cache in ``cache.py``; the wire
formats in ``wire.py``. Modules: ``rules.py`` picks the rule (``creation.py``,
``evaluation.py``), ``reading.py`` reads request bodies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from standins.process import ServerProcess, start_server

# Keyword arguments of start_model_server and the command-line flags they become.
_FLAGS = {
    "ttft_ms": "--ttft-ms",
    "total_ms": "--total-ms",
    "jitter_ms": "--jitter-ms",
    "cache_min_tokens": "--cache-min-tokens",
    "seed": "--seed",
}


def start_model_server(
    host: str = "127.0.0.1",
    port: int = 4590,
    log_path: Path | None = None,
    **config: Any,
) -> ServerProcess:
    """Start the offline model as a child process on ``host:port``.

    ``config`` takes ``ttft_ms``, ``total_ms``, ``jitter_ms``,
    ``cache_min_tokens`` and ``seed``, as the command line does.
    """
    unknown = sorted(set(config) - set(_FLAGS))
    if unknown:
        raise TypeError(f"unknown offline model settings: {unknown}")
    args = ["standins.offline_model", "--host", host, "--port", str(port)]
    for key, value in config.items():
        args += [_FLAGS[key], str(value)]
    return start_server(
        "offline-model", args, f"http://{host}:{port}", "/healthz", log_path
    )
