#!/usr/bin/env python3
"""Scripted model server for the container tests (stdlib only).

Speaks just enough of two APIs for a real harness to run a scripted
conversation:

* OpenAI Chat Completions (``POST .../chat/completions``), streaming SSE or
  plain JSON: what Pi's ``openai-completions`` custom provider sends.
* Anthropic Messages (``POST .../messages``, ``.../messages/count_tokens``),
  streaming SSE or plain JSON: what Claude Code sends to ``ANTHROPIC_BASE_URL``.

The script is a JSON list of steps.  A step is a shell command (a string),
or ``{"tool": NAME, "input": {...}}`` for another of the harness's tools (its
in-process ``read``/``Read``, say); NAME matches the request's tool list
without regard to case.  The server is stateless: it counts the tool results
already present in the conversation it receives and answers with a tool call
running the next step (Pi: tool ``bash``; Claude Code: tool ``Bash``), or
with a final text once every step has run.

Every request is appended to ``--log`` as one JSON line:
``{"path", "auth", "x_api_key", "tool_results", "step", "body"}`` where
``tool_results`` is the text of every tool result in the conversation, in
order.  The tests decide pass or fail from that log.

Usage: mock_llm.py --port 0 --script cmds.json --log log.jsonl [--port-file F]
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def text_of(content):
    """Flatten a message content (string, list of blocks, dict) to text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(text_of(c) for c in content)
    if isinstance(content, dict):
        if "text" in content and isinstance(content["text"], str):
            return content["text"]
        if "content" in content:
            return text_of(content["content"])
        return json.dumps(content)
    return str(content)


def openai_tool_results(body):
    return [text_of(m.get("content")) for m in body.get("messages", []) if m.get("role") == "tool"]


def anthropic_tool_results(body):
    out = []
    for m in body.get("messages", []):
        c = m.get("content")
        if m.get("role") == "user" and isinstance(c, list):
            for block in c:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    out.append(text_of(block.get("content")))
    return out


def offered_tools(body):
    """The tool names a request offers (OpenAI ``function.name`` or Anthropic ``name``)."""
    names = []
    for t in body.get("tools", []) or []:
        if isinstance(t, dict):
            n = t.get("name") or (t.get("function") or {}).get("name")
            if isinstance(n, str):
                names.append(n)
    return names


def scripted_call(step, offered, shell_tool, describe=False):
    """(tool name, input) for a script step: a string is a shell command for
    `shell_tool`; a dict names its tool, spelled as the request offers it."""
    if isinstance(step, dict):
        want = step["tool"]
        name = next((n for n in offered if n.lower() == want.lower()), want)
        return name, dict(step.get("input", {}))
    name = next((n for n in offered if n.lower() == shell_tool.lower()), shell_tool)
    args = {"command": step}
    if describe:
        args["description"] = "scripted step"
    return name, args


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one response per connection, body ends at close
    server_version = "agent-vault-mock/1"

    def log_message(self, fmt, *args):  # quiet
        if self.server.verbose:
            sys.stderr.write("mock_llm: " + (fmt % args) + "\n")

    # -- helpers -------------------------------------------------------------
    def record(self, entry):
        with LOCK:
            with open(self.server.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def send_json(self, obj, status=200):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def sse(self, data, event=None):
        out = ""
        if event:
            out += "event: %s\n" % event
        out += "data: %s\n\n" % (data if isinstance(data, str) else json.dumps(data))
        self.wfile.write(out.encode())
        self.wfile.flush()

    # -- routing -------------------------------------------------------------
    def do_GET(self):
        self.record({"method": "GET", "path": self.path, "auth": self.headers.get("Authorization"),
                     "x_api_key": self.headers.get("x-api-key")})
        if self.path.rstrip("/").endswith("/models"):
            self.send_json({"object": "list", "data": [{"id": "mock-model", "object": "model"}]})
        else:
            self.send_json({"error": "not found"}, 404)

    def do_HEAD(self):
        self.send_response(200)
        self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_unparsed": raw.decode("utf-8", "replace")}
        path = self.path.split("?")[0]
        entry = {
            "time": time.time(),
            "method": "POST",
            "path": self.path,
            "auth": self.headers.get("Authorization"),
            "x_api_key": self.headers.get("x-api-key"),
            "body": raw.decode("utf-8", "replace"),
        }
        if path.endswith("/chat/completions"):
            results = openai_tool_results(body)
            entry.update(api="openai", tool_results=results, step=len(results))
            self.record(entry)
            self.openai(body, len(results))
        elif path.endswith("/messages/count_tokens"):
            entry.update(api="anthropic-count")
            self.record(entry)
            self.send_json({"input_tokens": 42})
        elif path.endswith("/messages"):
            # the main loop offers the shell tool (Claude Code: Bash; Pi: bash,
            # or Bash when it speaks as Claude Code with an OAuth login)
            main = any(n.lower() == "bash" for n in offered_tools(body))
            results = anthropic_tool_results(body) if main else []
            entry.update(api="anthropic", main_loop=main, tool_results=results, step=len(results))
            self.record(entry)
            self.anthropic(body, len(results), main)
        else:
            entry.update(api="unknown")
            self.record(entry)
            self.send_json({"error": "not found"}, 404)

    # -- OpenAI chat completions ---------------------------------------------
    def openai(self, body, step):
        model = body.get("model", "mock-model")
        script = self.server.script
        cid = "chatcmpl-%d" % step
        created = int(time.time())
        if step < len(script):
            name, args = scripted_call(script[step], offered_tools(body), "bash")
            call = {"index": 0, "id": "call_%d" % step, "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)}}
            delta, finish, message = ({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls",
                                      {"role": "assistant", "content": None, "tool_calls": [call]})
        else:
            text = self.server.final_text
            delta, finish, message = ({"role": "assistant", "content": text}, "stop",
                                      {"role": "assistant", "content": text})
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        if not body.get("stream"):
            self.send_json({"id": cid, "object": "chat.completion", "created": created, "model": model,
                            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                            "usage": usage})
            return
        self.start_sse()
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
        self.sse(dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": None}]))
        self.sse(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": finish}]))
        self.sse(dict(base, choices=[], usage=usage))
        self.sse("[DONE]")

    # -- Anthropic messages --------------------------------------------------
    def anthropic(self, body, step, main):
        model = body.get("model", "claude-mock")
        script = self.server.script
        mid = "msg_mock_%d_%d" % (step, int(time.time() * 1000) % 100000)
        if main and step < len(script):
            name, args = scripted_call(script[step], offered_tools(body), "Bash", describe=True)
            block = {"type": "tool_use", "id": "toolu_mock_%d" % step, "name": name, "input": args}
            stop = "tool_use"
        else:
            block = {"type": "text", "text": self.server.final_text if main else "ok"}
            stop = "end_turn"
        usage = {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0}
        if not body.get("stream"):
            self.send_json({"id": mid, "type": "message", "role": "assistant", "model": model,
                            "content": [block], "stop_reason": stop, "stop_sequence": None, "usage": usage})
            return
        self.start_sse()
        self.sse({"type": "message_start",
                  "message": {"id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
                              "stop_reason": None, "stop_sequence": None,
                              "usage": dict(usage, output_tokens=1)}}, "message_start")
        if block["type"] == "tool_use":
            start = dict(block, input={})
            self.sse({"type": "content_block_start", "index": 0, "content_block": start}, "content_block_start")
            self.sse({"type": "content_block_delta", "index": 0,
                      "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}},
                     "content_block_delta")
        else:
            self.sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                     "content_block_start")
            self.sse({"type": "content_block_delta", "index": 0,
                      "delta": {"type": "text_delta", "text": block["text"]}}, "content_block_delta")
        self.sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        self.sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                  "usage": {"output_tokens": 5}}, "message_delta")
        self.sse({"type": "message_stop"}, "message_stop")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--script", required=True, help="JSON list of steps (shell commands or tool calls)")
    ap.add_argument("--log", required=True)
    ap.add_argument("--final-text", default="All scripted steps done.")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    with open(args.script) as f:
        srv.script = json.load(f)
    srv.log_path = args.log
    srv.final_text = args.final_text
    srv.verbose = args.verbose
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(srv.server_address[1]))
        import os
        os.replace(args.port_file + ".tmp", args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
