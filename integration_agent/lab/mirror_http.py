"""The lab mirror's HTTP server: ``python -m integration_agent.lab.mirror_http PORT --bind ADDR --directory DIR``.

Python's ``http.server``, with one change: every request is answered in full. Its ``If-Modified-Since``
support compares whole seconds, so an index rewritten in the second a host last read it was answered
"304 Not Modified", and that host kept the old index (without the package a test had just added) until the
next rewrite in a later second. The mirror's files are small; apt itself skips a package list whose hash the
new Release lists unchanged.
"""

from __future__ import annotations

import argparse
import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO


class FullAnswers(SimpleHTTPRequestHandler):
    """Serves files as ``http.server`` does, never answering 304."""

    def send_head(self) -> BinaryIO | None:
        del self.headers["If-Modified-Since"]
        del self.headers["If-None-Match"]
        return super().send_head()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m integration_agent.lab.mirror_http")
    parser.add_argument("port", type=int)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--directory", required=True)
    args = parser.parse_args(argv)
    handler = functools.partial(FullAnswers, directory=args.directory)
    with ThreadingHTTPServer((args.bind, args.port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
