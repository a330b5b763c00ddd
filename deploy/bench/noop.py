"""The no-op FastAPI endpoint (L_http): reads the body, answers 202, on intake's server settings.

    python -m deploy.bench.noop --port P

uvicorn runs exactly as `fangpin serve` runs it (one process, default loop and HTTP
implementations, which pick uvloop and httptools when installed, no access log).
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.post("/v1/declarations")
async def declarations(request: Request) -> Response:
    """Read the body and accept it."""
    await request.body()
    return Response(b'{"status":"accepted"}', status_code=202, media_type="application/json")


@app.get("/v1/declarations/{receipt_no}")
async def declaration(receipt_no: str) -> Response:
    """Answer a status look-up."""
    del receipt_no
    return Response(b'{"stage":"received"}', media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    """Alive."""
    return Response(b"{}", media_type="application/json")


def main() -> None:
    """Serve on the given port."""
    parser = argparse.ArgumentParser(prog="noop")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
