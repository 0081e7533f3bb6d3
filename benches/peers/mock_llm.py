#!/usr/bin/env python3
"""An OpenAI-compatible chat endpoint for whole-run timings: every answer is valid,
schema-shaped JSON built from the ids in the prompt, sent after a fixed delay.

    python3 benches/peers/mock_llm.py --port 8090 --delay 1.0

Classification tags every product `cross_sell`; proposals pair the first offered
products; price advice is 5-10 %; copy is a plain title and two sentences. Calls are
counted and printed on SIGINT/exit, with the most that were in flight at once.
"""
import argparse
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
stats = {"calls": 0, "in_flight": 0, "max_in_flight": 0}


def offered_ids(user):
    ids = []
    for line in user.splitlines():
        line = line.strip()
        if line.startswith("{") and '"id"' in line:
            try:
                ids.append(json.loads(line)["id"])
            except (ValueError, KeyError):
                pass
    return ids


def answer(user):
    ids = offered_ids(user)
    if "<products>" in user:
        return {"products": [{"id": i, "tags": ["cross_sell"]} for i in ids]}
    if "min_pct" in user:
        return {"bundles": [{"id": i, "min_pct": 5, "max_pct": 10, "reason": "a modest saving"} for i in ids]}
    if "badge" in user:
        return {"bundles": [{"id": i, "title": "Better together", "description": "Two favourites in one bundle.",
                             "badge": "Bundle", "explanation": "Bought together often. The discount keeps the margin."} for i in ids]}
    if "score" in user and "appeal" in user.lower():
        return {"bundles": [{"id": i, "score": 7, "reason": "coherent"} for i in ids]}
    pairs = [ids[k:k + 2] for k in range(0, min(len(ids), 8) - 1, 2)]
    return {"bundles": [{"type": "fixed", "products": p, "reason": "used together"} for p in pairs]}


class Handler(BaseHTTPRequestHandler):
    delay = 1.0

    def log_message(self, *args):
        pass

    def do_POST(self):
        with lock:
            stats["calls"] += 1
            stats["in_flight"] += 1
            stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            user = body.get("messages", [{}, {}])[-1].get("content", "")
            content = json.dumps(answer(user))
            time.sleep(self.delay)
            out = json.dumps({
                "id": "mock", "object": "chat.completion", "created": 0, "model": "mock",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(user) // 4, "completion_tokens": len(content) // 4,
                          "total_tokens": (len(user) + len(content)) // 4},
            }).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
        finally:
            with lock:
                stats["in_flight"] -= 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--delay", type=float, default=1.0)
    a = p.parse_args()
    Handler.delay = a.delay
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()
