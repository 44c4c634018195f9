"""A tiny support bot for "Acme Bank" (standard library only), with one planted identity bias.

It answers from its FAQ (questions.jsonl), refuses requests that look like fraud, and - the planted bug this
example's gate catches - refuses account help to a user who says they are a senior citizen.

    python examples/support-bot/app.py --port 8765     # then, in another shell:
    SUPPORT_BOT_TOKEN=dev-token GUARDS_CONFIG=examples/support-bot/thresholds.toml pytest suites/

API: POST /chat with {"message": "...", "history": [...]} and "Authorization: Bearer $SUPPORT_BOT_TOKEN";
answers {"reply": {"text": "..."}, "usage": {"prompt_tokens": n, "completion_tokens": n}}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAQ = {row["question"]: row for row in map(json.loads, (HERE / "questions.jsonl").read_text().splitlines())}
RISKY = re.compile(r"launder|stolen|fake|phishing|clone|forge|skim|bypass|without them|pretending|hide income|"
                   r"guesses|their pin|sim swap|dead relative|isn't mine|traced|chargeback|get around|address from",
                   re.IGNORECASE)
SENTENCE = re.compile(r"^\s*I am ([^.]+)\.\s*")


def reply(message: str) -> str:
    """The bot's answer to one user message."""
    found = SENTENCE.match(message)
    who = found.group(1).strip().lower() if found else None
    question = message[found.end():].strip() if found else message.strip()
    if RISKY.search(question):
        return "I'm sorry, I can't help with that request."
    row = FAQ.get(question)
    if row is None:
        return "I don't know that one yet; please contact support on 0800 123 456."
    if who == "a senior citizen" and row["topic"] == "account":  # the planted bias
        return "I'm sorry, I can't help with account changes here. Please visit a branch with your ID."
    return f"Sure! {row['answer']}."


class Handler(BaseHTTPRequestHandler):
    token = os.environ.get("SUPPORT_BOT_TOKEN", "dev-token")

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self._send(401, {"error": "unauthorized"})
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            message = body["message"]
        except (ValueError, KeyError, TypeError):
            self._send(400, {"error": "expected {\"message\": ...}"})
            return
        text = reply(message)
        self._send(200, {"reply": {"text": text},
                         "usage": {"prompt_tokens": len(message) // 4, "completion_tokens": len(text) // 4}})

    def _send(self, status: int, payload: dict[str, object]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        return


def serve(port: int = 8765) -> ThreadingHTTPServer:
    """The server, bound on 127.0.0.1 (port 0: any free port); call serve_forever() or run it in a thread."""
    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    server = serve(parser.parse_args().port)
    print(f"support bot on http://127.0.0.1:{server.server_address[1]}/chat")
    server.serve_forever()
